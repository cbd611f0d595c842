"""Pages: language negotiation, complete catalogs, autoescaping, Paris time."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from entrypoints.http.pages import DEFAULT_LANGUAGE, PAGE_HEADERS, Catalogs, Pages, negotiate
from entrypoints.http.pages.i18n import LOCALE_DIR
from entrypoints.http.pages.render import WHEN_PATTERN, assets_router, when

ENTRYPOINTS = LOCALE_DIR.parents[2]
LANGS = ("en", "fr")
SOURCE_LANGUAGE = "en"
"""Message ids are English; the English catalog may leave a message as its id."""


@pytest.mark.parametrize(
    ("asked", "accept", "expected"),
    [
        (None, None, "fr"),
        (None, "", "fr"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "de-DE,de;q=0.9,en;q=0.5", "en"),
        (None, "de", "fr"),
        (None, "en;q=0.4,fr;q=0.8", "fr"),
        (None, "fr-CA,en", "fr"),
        (None, "en;q=0,fr;q=0", "fr"),
        (None, "en;q=abc", "fr"),
        ("en", "fr", "en"),
        ("EN", None, "en"),
        ("xx", "en", "en"),
        ("", None, "fr"),
    ],
)
def test_negotiation_prefers_the_query_then_accept_language_then_french(
    asked: str | None, accept: str | None, expected: str
) -> None:
    assert negotiate(LANGS, asked, accept) == expected


def test_a_huge_accept_language_header_is_cut_not_an_error() -> None:
    assert negotiate(LANGS, None, "de," * 100_000 + "en") == DEFAULT_LANGUAGE


def _extracted() -> set[str]:
    """Every message the templates and the entry points' Python code mark for translation."""
    templates = "http/pages/templates/**.html"
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ENTRYPOINTS,
        method_map=[(templates, "jinja2"), ("**.py", "python")],
        options_map={templates: {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}},
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_shown_is_in_every_catalog_and_translated() -> None:
    catalogs = Catalogs()
    extracted = _extracted()
    assert "Skip to content" in extracted  # the extraction itself found the templates
    for lang in catalogs.languages:
        translations = catalogs.translations(lang)
        known = translations._catalog
        missing = sorted(m for m in extracted if not known.get(m))
        if lang == SOURCE_LANGUAGE:
            missing = [m for m in missing if m not in known]
        assert missing == [], f"{lang}: messages without a translation"


def test_a_new_language_is_a_new_folder(tmp_path: Path) -> None:
    for lang in ("fr", "de"):
        folder = tmp_path / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "common.po").write_text(
            'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
            f'msgid "Language"\nmsgstr "{"Langue" if lang == "fr" else "Sprache"}"\n',
            encoding="utf-8",
        )
    catalogs = Catalogs(tmp_path)
    assert catalogs.languages == ("de", "fr")
    assert catalogs.translations("de").gettext("Language") == "Sprache"


def test_pages_are_autoescaped_in_the_language_asked() -> None:
    pages = Pages()
    page = pages.render_text("fr", "base.html")
    assert '<html lang="fr">' in page
    assert "Aller au contenu" in page
    assert 'hreflang="en"' in page
    env = pages._environments["fr"]
    assert env.from_string("{{ x }}").render(x="<script>") == "&lt;script&gt;"


def test_moments_are_shown_in_paris_time_in_each_language() -> None:
    pages = Pages()
    moment = datetime(2025, 3, 12, 13, 2, tzinfo=UTC)
    assert when(moment, "fr", pages.gettext("fr", WHEN_PATTERN)) == "12 mars 2025 à 14:02"
    summer = datetime(2025, 7, 1, 8, 30, tzinfo=UTC)
    assert when(summer, "en", pages.gettext("en", WHEN_PATTERN)) == "1 July 2025 at 10:30"


def test_the_stylesheet_is_served_from_the_package_and_pages_carry_their_headers() -> None:
    app = FastAPI()
    app.include_router(assets_router())
    pages = Pages()

    @app.get("/page")
    def page(request: Request) -> HTMLResponse:
        return pages.render(request, "base.html")

    client = TestClient(app)
    css = client.get("/assets/pages.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert b"focus-visible" in css.content
    answer = client.get("/page", headers={"Accept-Language": "en-US,en"})
    assert answer.headers["content-language"] == "en"
    assert '<html lang="en">' in answer.text
    for name, value in PAGE_HEADERS.items():
        assert answer.headers[name] == value
