"""The auditors' dossier in production mode: PostgreSQL store, tree and projection."""

import html
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dossier import (
    ADDRESS,
    IP,
    REQUEST,
    Audited,
    audited,
    feed_postgres,
    production_settings,
)


@pytest.fixture
def dpo(tmp_path: Path, pg_dsn: str, schema: str) -> Iterator[Audited]:
    settings = production_settings(pg_dsn, schema)
    with audited(tmp_path, settings=settings, feed=feed_postgres) as served:
        yield served


def test_the_dossier_is_found_and_proven_on_postgresql(dpo: Audited) -> None:
    auth = ("dpo", dpo.key)
    found = dpo.client.post(
        "/audit/", data={"request_id": str(REQUEST)}, auth=auth, follow_redirects=False
    )
    assert found.headers["location"] == f"/audit/persons/{dpo.subject}?lang=fr"
    by_address = dpo.client.post(
        "/audit/", data={"address": ADDRESS}, auth=auth, follow_redirects=False
    )
    assert by_address.headers["location"] == found.headers["location"]
    page = html.unescape(dpo.client.get(found.headers["location"], auth=auth).text)
    assert "Consentement demandé pour « Lettre mensuelle »" in page
    assert IP in page
    assert page.count("vérifiée : feuille") == 4
    bundle = dpo.client.get(f"/audit/persons/{dpo.subject}/bundle.zip", auth=auth)
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        assert "verify.py" in archive.namelist()
    pdf = dpo.client.get(f"/audit/persons/{dpo.subject}/dossier.pdf", auth=auth)
    assert pdf.content.startswith(b"%PDF")
