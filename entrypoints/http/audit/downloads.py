"""The dossier's downloads besides the PDF: the timeline as CSV, the proof bundle as a ZIP."""

import csv
import io
import json
import zipfile
from collections.abc import Callable

from access.apikeys import ApiKey
from entrypoints.http.audit.dossier import Dossier
from entrypoints.http.audit.verifier_script import verifier_script
from entrypoints.http.audit.words import LABELLED
from entrypoints.http.history import person_bundle
from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.services import ApiServices

__all__ = ["README_FR", "bundle_zip", "timeline_csv"]

_COLUMNS = (
    N_("position"),
    N_("occurred at (UTC)"),
    N_("event type"),
    N_("what happened"),
    N_("proof"),
    N_("evidence"),
)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Entries carry a fixed time: the same dossier gives the same bytes."""

README_FR = """Paquet de preuves du registre des consentements
==============================================

Ce dossier contient :

- bundle.json : tous les événements de la personne, chacun avec sa preuve d'inclusion
  (RFC 9162) dans le point de contrôle signé qu'il contient (note signée C2SP, Ed25519) ;
- verify.py : le vérificateur, un seul fichier, qui n'utilise que Python et « cryptography » ;
- verifier.key : la clé de vérification de l'opérateur, telle que le registre la publie.

Vérifier hors ligne, sur une machine qui n'a jamais vu le registre :

    python3 -m venv venv
    venv/bin/pip install cryptography
    venv/bin/python verify.py bundle.json --key "$(cat verifier.key)"

« ACCEPTÉ » (code de sortie 0) : chaque événement est bien celui qui a été scellé, à sa place,
dans l'arbre signé par cette clé. Un seul octet modifié donne « REFUSÉ » (code 1). Comparez
la clé à celle que l'opérateur publie ailleurs (son site, un point de contrôle public) : c'est
elle qui dit qui a signé. Les données personnelles effacées restent chiffrées : la preuve
porte sur les octets stockés, elle tient même après un effacement.
"""


def timeline_csv(pages: Pages, lang: str, dossier: Dossier, key: ApiKey) -> bytes:
    """One row per event, in the page's language, for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([pages.gettext(lang, column) for column in _COLUMNS])
    for line in dossier.timeline:
        writer.writerow(
            [
                line.position,
                line.occurred_at.isoformat(),
                line.event_type,
                line.sentence,
                line.proof.text,
                "; ".join(
                    pages.gettext(lang, LABELLED) % {"label": label, "value": value}
                    for label, value, _href in line.evidence
                ),
            ]
        )
    # A BOM, so that a spreadsheet opens the accents as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def bundle_zip(services: ApiServices) -> Callable[[Pages, str, Dossier, ApiKey], bytes]:
    def make(pages: Pages, lang: str, dossier: Dossier, key: ApiKey) -> bytes:
        bundle = person_bundle(services, dossier.subject)
        return zip_of(
            {
                "bundle.json": json.dumps(bundle, ensure_ascii=False, indent=1),
                "verify.py": verifier_script(),
                "verifier.key": services.audit.signer.verifier_key() + "\n",
                "LISEZMOI.txt": README_FR,
            }
        )

    return make


def zip_of(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()
