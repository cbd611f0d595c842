"""What the recipients' pages share: purposes in their words, a refused link, a retry later."""

import asyncio

from fastapi import Request
from fastapi.responses import HTMLResponse

from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from ledger.domain.aggregates import Catalog
from ledger.domain.errors import ExpiredTokenError, UnsubscribeTokenError
from ledger.write.service import Ledger
from schemas import CATALOG_SUBJECT, PurposeWording

__all__ = ["RETRY_AFTER_S", "catalog_of", "refused", "try_again", "wording"]

RETRY_AFTER_S = 1


async def catalog_of(ledger: Ledger) -> Catalog:
    """The catalog of purposes: the writer's copy when it holds one, else read from the store."""
    cached = ledger.cached(CATALOG_SUBJECT)
    if isinstance(cached, Catalog):
        return cached
    return await asyncio.to_thread(ledger.catalog)


def wording(catalog: Catalog, purpose: str, lang: str) -> PurposeWording:
    """A purpose's label and description in ``lang``, else its one description, else its id.

    A purpose the catalog does not know is still named (a link may outlive its registration).
    """
    registered = catalog.purposes.get(purpose)
    if registered is None:
        return PurposeWording(label=purpose, description=purpose)
    return registered.wording.get(lang) or PurposeWording(
        label=registered.description[:200], description=registered.description
    )


def refused(
    pages: Pages, request: Request, error: UnsubscribeTokenError, *, help_text: str
) -> HTMLResponse:
    """The page of a link we refuse (``404``, ``410`` once expired), the same for any forgery.

    ``help_text`` is a message id (marked with `N_` where it is written)."""
    if isinstance(error, ExpiredTokenError):
        status, title = 410, N_("This link has expired")
    else:
        status, title = 404, N_("This link is not valid")
    lang = pages.language(request)
    return pages.render(
        request,
        "recipient/message.html",
        {
            "title": pages.gettext(lang, title),
            "paragraphs": [
                pages.gettext(lang, N_("Nothing was changed.")),
                pages.gettext(lang, help_text),
            ],
        },
        status_code=status,
    )


def try_again(pages: Pages, request: Request) -> HTMLResponse:
    """``503``: the ledger could not record the request just now; nothing was recorded."""
    lang = pages.language(request)
    return pages.render(
        request,
        "recipient/message.html",
        {
            "title": pages.gettext(lang, N_("Please try again")),
            "paragraphs": [
                pages.gettext(
                    lang,
                    N_(
                        "We could not record your request just now. Please press the button "
                        "again in a moment."
                    ),
                )
            ],
        },
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
