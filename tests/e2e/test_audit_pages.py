"""The auditors' pages over HTTP: search, the dossier in French and English, its downloads."""

import csv
import html
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.dossier import (
    ADDRESS,
    IP,
    POLICY_SHA,
    REQUEST,
    USER_AGENT,
    WORDING_SHA,
    Audited,
    audited,
)

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"


@pytest.fixture
def dpo(tmp_path: Path) -> Iterator[Audited]:
    with audited(tmp_path / "var") as served:
        yield served


def _get(dpo: Audited, path: str, **headers: str) -> Any:
    return dpo.client.get(path, auth=("dpo", dpo.key), headers=headers, follow_redirects=False)


def _text(answer: Any) -> str:
    """The page's markup with its entities read back, as a browser shows them."""
    return html.unescape(answer.text)


def _find(dpo: Audited, **form: str) -> Any:
    return dpo.client.post("/audit/", data=form, auth=("dpo", dpo.key), follow_redirects=False)


def test_the_pages_need_an_audit_key_and_ask_the_browser_for_one(dpo: Audited) -> None:
    for path in ("/audit/", f"/audit/persons/{dpo.subject}"):
        answer = dpo.client.get(path)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Basic")
    assert dpo.client.post("/audit/", data={"address": ADDRESS}).status_code == 401


def test_an_address_is_found_by_a_post_and_never_appears_in_the_url(dpo: Audited) -> None:
    answer = _find(dpo, address=ADDRESS.upper(), lang="fr")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/audit/persons/{dpo.subject}?lang=fr"
    assert "exemple" not in answer.headers["location"]
    assert (
        _find(dpo, subject=dpo.subject)
        .headers["location"]
        .startswith(f"/audit/persons/{dpo.subject}")
    )
    by_request = _find(dpo, request_id=str(REQUEST).upper(), lang="en")
    assert by_request.headers["location"] == f"/audit/persons/{dpo.subject}?lang=en"


def test_a_search_that_finds_nobody_or_is_malformed_says_so_in_french(dpo: Audited) -> None:
    nobody = _find(dpo, address="personne@exemple.fr")
    assert nobody.status_code == 404
    assert "Aucun événement n'a jamais été enregistré pour cette personne." in _text(nobody)
    assert "personne@exemple.fr" not in nobody.text
    malformed = _find(dpo, address="chloe bernard@exemple")
    assert malformed.status_code == 422
    assert "chloe bernard" not in malformed.text
    assert _find(dpo, request_id="nope").status_code == 422
    assert _find(dpo).status_code == 422


def test_the_dossier_reads_in_french_with_status_evidence_and_checked_proofs(
    dpo: Audited,
) -> None:
    page = _get(dpo, f"/audit/persons/{dpo.subject}")
    assert page.status_code == 200
    assert page.headers["content-language"] == "fr"
    assert page.headers["cache-control"] == "no-store"
    text = _text(page)
    assert "<script" not in text
    assert (
        "Consentement demandé pour « Lettre mensuelle » (e-mail), en attente du double opt-in "
        "par le formulaire inscription v3, le 12 mars 2025 à 14:02 (heure de Paris)."
    ) in text
    assert "Double opt-in confirmé pour « Lettre mensuelle »" in text
    assert "la personne s'est désinscrite" in text
    for shown in (ADDRESS, IP, USER_AGENT, POLICY_SHA, WORDING_SHA, "2025-04", "m-1234"):
        assert shown in text
    assert "12 mars 2025 à 14:11" in text  # the second step of the double opt-in
    assert text.count("vérifiée : feuille") == 4
    assert "Signature valide : arbre de 6 événements" in text
    assert "dpo-cnil" not in text  # the actor here is the site, not the auditor's key


def test_the_dossier_speaks_english_when_asked(dpo: Audited) -> None:
    page = _get(dpo, f"/audit/persons/{dpo.subject}", **{"Accept-Language": "en-GB,en"})
    assert page.headers["content-language"] == "en"
    assert (
        "Consent asked for “Lettre mensuelle” (email), waiting for the double opt-in through "
        "the form inscription v3, on 12 March 2025 at 14:02 (Paris time)."
    ) in _text(page)
    assert "the person unsubscribed" in _text(page)
    assert "Consentement" not in _get(dpo, f"/audit/persons/{dpo.subject}?lang=en").text


def test_an_erased_person_shows_what_was_destroyed_and_that_proofs_hold(tmp_path: Path) -> None:
    with audited(tmp_path / "var", erase=True) as erased:
        text = _text(_get(erased, f"/audit/persons/{erased.subject}"))
    assert "Cette personne a été effacée" in text
    assert "détruites par l'effacement" in text
    assert ADDRESS not in text
    assert IP not in text
    assert "la personne s'est désinscrite" not in text
    assert "les données de la personne ont été effacées" in text
    assert text.count("vérifiée : feuille") == 5


def test_events_not_yet_sealed_are_said_to_be_pending(tmp_path: Path) -> None:
    with audited(tmp_path / "var", seal=False) as fresh:
        text = _text(_get(fresh, f"/audit/persons/{fresh.subject}"))
        assert "Aucun point de contrôle n'a encore été arrêté" in text
        assert text.count("pas encore dans un point de contrôle signé") == 4
        unsealed = _get(fresh, f"/audit/persons/{fresh.subject}/bundle.zip")
        assert unsealed.status_code == 404
        assert unsealed.json()["type"].endswith("/no-checkpoint")


def test_the_timeline_downloads_as_csv_in_the_page_language(dpo: Audited) -> None:
    answer = _get(dpo, f"/audit/persons/{dpo.subject}/timeline.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["position", "date (UTC)", "type d'événement"]
    assert [row[2] for row in rows[1:]] == [
        "ConsentGranted",
        "ConsentConfirmed",
        "UnsubscribeClicked",
        "RightsRequestOpened",
    ]
    assert f"Adresse IP : {IP}" in rows[1][5]


def test_the_bundle_zip_holds_a_verifier_that_accepts_it_and_refuses_a_changed_byte(
    dpo: Audited, tmp_path: Path
) -> None:
    answer = _get(dpo, f"/audit/persons/{dpo.subject}/bundle.zip")
    assert answer.status_code == 200
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert sorted(archive.namelist()) == [
            "LISEZMOI.txt",
            "bundle.json",
            "verifier.key",
            "verify.py",
        ]
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped"
    script = (folder / "verify.py").read_text(encoding="utf-8")
    assert "from ledger" not in script
    assert "import ledger" not in script
    key = (folder / "verifier.key").read_text().strip()

    def verify(bundle: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", "verify.py", bundle.name, "--key", key],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    accepted = verify(folder / "bundle.json")
    assert accepted.returncode == 0, accepted.stderr
    assert "ACCEPTÉ : 4 événement(s)" in accepted.stdout
    document = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
    document["entries"][0]["event"]["purpose"] = "partner_sharing"
    (folder / "altered.json").write_text(json.dumps(document), encoding="utf-8")
    refused = verify(folder / "altered.json")
    assert refused.returncode == 1
    assert "REFUSÉ" in refused.stderr


def test_the_pdf_dossier_has_a_cover_the_timeline_and_how_to_verify(dpo: Audited) -> None:
    answer = _get(dpo, f"/audit/persons/{dpo.subject}/dossier.pdf")
    assert answer.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(answer.content))
    cover = reader.pages[0].extract_text()
    assert "Dossier de preuve" in cover
    assert "Demandé par dpo-cnil" in cover
    assert "Empreinte de la clé de vérification" in cover
    whole = "\n".join(page.extract_text() for page in reader.pages)
    assert "Consentement demandé pour « Lettre mensuelle »" in whole
    assert "verify.py bundle.json" in whole
    assert POLICY_SHA in whole.replace("\n", "")


def test_verify_py_accepts_the_bundle_in_a_venv_holding_only_cryptography(
    dpo: Audited, tmp_path: Path
) -> None:
    answer = _get(dpo, f"/audit/persons/{dpo.subject}/bundle.zip")
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        archive.extractall(tmp_path / "offline")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-I", "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), "cryptography"],
        check=True,
        timeout=300,
        capture_output=True,
    )
    installed = subprocess.run(
        # -I: neither the working directory (the checkout, with its egg-info) nor PYTHONPATH
        # is on the path; only what the venv holds is listed.
        [python, "-I", "-m", "pip", "list", "--format=freeze"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    names = {line.split("==")[0].lower() for line in installed.splitlines()}
    assert names - {"pip", "setuptools"} == {"cryptography", "cffi", "pycparser"}
    folder = tmp_path / "offline"
    key = (folder / "verifier.key").read_text().strip()
    accepted = subprocess.run(
        [python, "-I", "verify.py", "bundle.json", "--key", key],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("ACCEPTÉ")
