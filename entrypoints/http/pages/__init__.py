"""Pages for people: autoescaped Jinja2 templates, gettext catalogs, French first.

Every page a person reads (a recipient, an auditor) renders through `Pages`. The language is
``?lang=`` when it names a catalog, else the best of ``Accept-Language``, else French. The
catalogs are Babel ``.po`` files under ``locale/<lang>/LC_MESSAGES/``, one per domain; adding a
language adds a folder. Pages run no script and load nothing but ``/assets/pages.css``.
"""

from entrypoints.http.pages.i18n import DEFAULT_LANGUAGE, Catalogs, negotiate
from entrypoints.http.pages.render import PAGE_HEADERS, Pages, assets_router

__all__ = ["DEFAULT_LANGUAGE", "PAGE_HEADERS", "Catalogs", "Pages", "assets_router", "negotiate"]
