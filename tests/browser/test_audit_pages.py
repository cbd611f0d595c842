"""The auditors' pages in Chromium, JavaScript off, as a DPO or the CNIL would use them."""

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from tests.dossier import ADDRESS, IP, Audited, audited
from tests.pages import axe_violations, offline_context, serving_app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Audited]]:
    with (
        audited(tmp_path_factory.mktemp("audit") / "var") as dpo,
        serving_app(dpo.client.app) as origin,  # type: ignore[arg-type]
    ):
        yield origin, dpo


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Audited]]:
    with (
        audited(tmp_path_factory.mktemp("erased") / "var", erase=True) as dpo,
        serving_app(dpo.client.app) as origin,  # type: ignore[arg-type]
    ):
        yield origin, dpo


def _credentials(dpo: Audited) -> dict[str, str]:
    return {"username": "dpo", "password": dpo.key}


def _french(dpo: Audited) -> dict[str, Any]:
    """A French auditor's browser: it asks for French, and holds the audit key."""
    return {"http_credentials": _credentials(dpo), "locale": "fr-FR"}


@contextmanager
def _dossier(browser: Browser, served: tuple[str, Audited]) -> Iterator[Page]:
    """A French auditor's browser, JavaScript off, on the person's dossier; it reached nothing
    but the server."""
    origin, dpo = served
    with offline_context(browser, origin, **_french(dpo)) as offline:
        page = offline.page()
        page.goto(f"{origin}/audit/persons/{dpo.subject}")
        yield page
        assert offline.refused == []


def test_an_auditor_finds_a_person_by_address_and_reads_the_dossier_in_french(
    browser: Browser, served: tuple[str, Audited]
) -> None:
    origin, dpo = served
    with offline_context(browser, origin, **_french(dpo)) as offline:
        page = offline.page()
        page.goto(f"{origin}/audit/")
        assert page.get_by_role("heading", level=1).inner_text() == (
            "Auditeurs : trouver le dossier d'une personne"
        )
        page.get_by_label("Adresse e-mail").fill(ADDRESS)
        page.get_by_role("button", name="Chercher par adresse").click()
        page.wait_for_load_state()
        assert page.url == f"{origin}/audit/persons/{dpo.subject}?lang=fr"
        assert "exemple" not in page.url
        assert page.get_by_role("heading", level=1).inner_text() == (
            "Dossier de preuve d'une personne"
        )
        status = page.get_by_role("table").first
        row = status.get_by_role("row", name="Lettre mensuelle")
        assert row.get_by_role("cell").nth(1).inner_text() == "refusé"
        assert "la personne s'est désinscrite" in row.inner_text()
        body = page.locator("main").inner_text()
        assert (
            "Consentement demandé pour « Lettre mensuelle » (e-mail), en attente du double "
            "opt-in par le formulaire inscription v3, le 12 mars 2025 à 14:02 (heure de Paris)."
        ) in body
        assert IP in body
        assert body.count("vérifiée : feuille") == 4
        assert offline.refused == []


def test_the_dossier_switches_to_english_with_its_language_link(
    browser: Browser, served: tuple[str, Audited]
) -> None:
    with _dossier(browser, served) as page:
        page.get_by_role("link", name="English").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "Proof dossier of a person"
        body = page.locator("main").inner_text()
        assert "Consent asked for “Lettre mensuelle” (email)" in body
        assert "on 12 March 2025 at 14:02 (Paris time)." in body
        assert "Consentement" not in body


def test_an_erased_persons_dossier_explains_what_is_gone_and_what_remains(
    browser: Browser, erased: tuple[str, Audited]
) -> None:
    with _dossier(browser, erased) as page:
        section = page.get_by_role("region", name="Cette personne a été effacée")
        text = section.inner_text()
        assert "Détruit :" in text
        assert "Conservé :" in text
        assert "Pourquoi les preuves tiennent toujours :" in text
        assert ADDRESS not in page.locator("main").inner_text()


def test_the_pdf_link_gives_a_dossier_whose_first_page_is_its_cover(
    browser: Browser, served: tuple[str, Audited]
) -> None:
    # Headless Chromium has no PDF viewer to look at: the test follows the link as a person
    # would, then reads the first page's text as a viewer shows it (pypdf).
    with _dossier(browser, served) as page:
        with page.expect_download() as download:
            page.get_by_role("link", name="Dossier de preuve (PDF)").click()
        pdf = Path(download.value.path()).read_bytes()
    cover = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert cover.startswith("Dossier de preuve")
    assert "Demandé par dpo-cnil" in cover
    assert "Point de contrôle signé" in cover


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_auditors_pages_have_no_serious_accessibility_violation(
    browser: Browser,
    served: tuple[str, Audited],
    erased: tuple[str, Audited],
    lang: str,
) -> None:
    origin, dpo = served
    options = {"http_credentials": _credentials(dpo)}
    assert axe_violations(browser, f"{origin}/audit/?lang={lang}", **options) == []
    assert (
        axe_violations(browser, f"{origin}/audit/persons/{dpo.subject}?lang={lang}", **options)
        == []
    )
    assert axe_violations(browser, f"{origin}/audit/policies/2025-03?lang={lang}", **options) == []
    erased_origin, gone = erased
    assert (
        axe_violations(
            browser,
            f"{erased_origin}/audit/persons/{gone.subject}?lang={lang}",
            http_credentials=_credentials(gone),
        )
        == []
    )
