"""Rendering a page: one autoescaped Jinja2 environment per language, shared headers, one CSS."""

from collections.abc import Mapping
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from entrypoints.http.pages.i18n import N_, Catalogs, negotiate

__all__ = ["PAGE_HEADERS", "PARIS", "Pages", "assets_router", "when"]

PARIS = ZoneInfo("Europe/Paris")
"""Times on pages are the operator's and the regulator's: Paris time, said as such."""
STYLESHEET = Path(__file__).with_name("assets") / "pages.css"
WHEN_PATTERN = N_("d MMMM y 'at' HH:mm")
"""The CLDR pattern of a moment on a page; a message, so that each catalog words it."""

PAGE_HEADERS = {
    # A page may show a person's data or carry a token in its URL: no cache, no referrer, no
    # search engine keeps it, no other origin frames it, and it runs nothing, loading only our
    # own stylesheet and posting only to ourselves.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Vary": "Accept-Language",
}


class Pages:
    """Renders the templates under ``templates/`` in the language a request asks for."""

    def __init__(self, catalogs: Catalogs | None = None) -> None:
        self.catalogs = catalogs or Catalogs()
        self._environments = {lang: self._environment(lang) for lang in self.catalogs.languages}
        # Each language is named in itself on the switch: « Français », « English ».
        self._names = {
            lang: str(Locale.parse(lang).get_display_name(lang)).capitalize()
            for lang in self.catalogs.languages
        }

    def language(self, request: Request) -> str:
        return negotiate(
            self.catalogs.languages,
            request.query_params.get("lang"),
            request.headers.get("accept-language"),
        )

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        lang = self.language(request)
        body = self.render_text(lang, template, context, path=request.url.path)
        return HTMLResponse(
            body,
            status_code=status_code,
            headers={**PAGE_HEADERS, "Content-Language": lang, **(headers or {})},
        )

    def render_text(
        self,
        lang: str,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        path: str = "",
    ) -> str:
        page = self._environments[lang].get_template(template)
        others = [other for other in self.catalogs.languages if other != lang]
        return page.render(
            lang=lang,
            other_languages=others,
            language_names=self._names,
            path=path,
            **(context or {}),
        )

    def gettext(self, lang: str, message: str) -> str:
        """One message in ``lang``, for text built outside a template (a problem's title)."""
        return str(self.catalogs.translations(lang).gettext(message))

    def _environment(self, lang: str) -> Environment:
        env = Environment(
            loader=PackageLoader("entrypoints.http.pages", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(  # type: ignore[attr-defined]  # added by ext.i18n
            self.catalogs.translations(lang), newstyle=True
        )
        # The date pattern is a message too: each catalog says how its language writes a moment.
        pattern = self.gettext(lang, WHEN_PATTERN)
        env.filters["when"] = lambda moment: when(moment, lang, pattern)
        return env


def when(moment: datetime | None, lang: str, pattern: str) -> str:
    """A moment as a person reads it, in Paris time: « 12 mars 2025 à 14:02 »."""
    if moment is None:
        return ""
    # Patterns show minutes at most: one rendering serves every moment of the same minute.
    paris = moment.astimezone(PARIS).replace(second=0, microsecond=0)
    return _formatted(paris, lang, pattern)


@lru_cache(maxsize=4096)
def _formatted(paris: datetime, lang: str, pattern: str) -> str:
    return str(format_datetime(paris, pattern, locale=_locale(lang)))


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def assets_router() -> APIRouter:
    """``GET /assets/pages.css``: the one stylesheet every page loads (from the package)."""
    router = APIRouter(include_in_schema=False)
    css = STYLESHEET.read_bytes()

    @router.get("/assets/pages.css")
    def stylesheet() -> Response:
        return Response(
            css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    return router
