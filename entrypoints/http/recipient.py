"""What the recipients' pages share: purposes in their words, a refused link, a retry later."""

import asyncio
import hashlib
import time
import weakref
from datetime import timedelta

from fastapi import Request
from fastapi.responses import HTMLResponse

from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from ledger.domain.aggregates import Catalog
from ledger.domain.errors import ExpiredTokenError, UnsubscribeTokenError
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import CATALOG_SUBJECT, PurposeWording

__all__ = [
    "NONCE_TTL",
    "RETRY_AFTER_S",
    "FormNonces",
    "catalog_of",
    "refused",
    "stale_form",
    "try_again",
    "wording",
]

RETRY_AFTER_S = 1
NONCE_TTL = timedelta(hours=12)
"""A form left open half a day still saves; an older one asks to reload the page."""


class FormNonces:
    """The nonce of one form of a page reached by a signed link, against cross-site posts.

    A nonce is a token of the ``form`` use naming the link's person and a digest of the link
    itself, valid for `NONCE_TTL`: only a page we served for this very link holds one.
    """

    def __init__(self, codec: UnsubscribeTokenCodec) -> None:
        self._codec = codec.for_use("form")

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()[:32]

    def issue(self, *, token: str, subject: str, shown: str | None = None) -> str:
        """A nonce for a form of ``token``'s page; ``shown`` is signed in with it (the state
        the page showed, so that saving compares with it without reading it again)."""
        return self._codec.issue(
            subject=subject, campaign_id=self._digest(token), message_id=shown, expires_in=NONCE_TTL
        )

    def genuine(self, nonce: str, *, token: str, subject: str) -> UnsubscribeClaim | None:
        """The nonce's claim if a page of this very link issued it, unexpired; else None."""
        try:
            claim = self._codec.verify(nonce)
        except UnsubscribeTokenError:
            return None
        if (claim.subject, claim.campaign_id) != (subject, self._digest(token)):
            return None
        return claim

    @staticmethod
    def command_id(nonce: str, what: str) -> str:
        """The idempotency key of ``what`` posted with ``nonce``: one form posted twice is once."""
        return f"form-{hashlib.sha256(nonce.encode()).hexdigest()[:32]}.{what}"


CATALOG_TTL_S = 1.0
"""How long a catalog read from the store is reused: a new purpose shows within a second,
and pages under load do not each read the whole catalog again."""
_catalogs: "weakref.WeakKeyDictionary[Ledger, tuple[float, Catalog]]" = weakref.WeakKeyDictionary()


async def catalog_of(ledger: Ledger) -> Catalog:
    """The catalog of purposes: the writer's copy when it holds one, else read from the store
    (at most once per `CATALOG_TTL_S`)."""
    cached = ledger.cached(CATALOG_SUBJECT)
    if isinstance(cached, Catalog):
        return cached
    now = time.monotonic()
    read = _catalogs.get(ledger)
    if read is not None and now - read[0] < CATALOG_TTL_S:
        return read[1]
    catalog = await asyncio.to_thread(ledger.catalog)
    _catalogs[ledger] = (now, catalog)
    return catalog


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


def message(
    pages: Pages,
    request: Request,
    title: str,
    *paragraphs: str,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page of a title and paragraphs, each a message id (marked with `N_` where written)."""
    lang = pages.language(request)
    return pages.render(
        request,
        "recipient/message.html",
        {
            "title": pages.gettext(lang, title),
            "paragraphs": [pages.gettext(lang, paragraph) for paragraph in paragraphs],
        },
        status_code=status_code,
        headers=headers,
    )


def refused(
    pages: Pages, request: Request, error: UnsubscribeTokenError, *, help_text: str
) -> HTMLResponse:
    """The page of a link we refuse (``404``, ``410`` once expired), the same for any forgery."""
    if isinstance(error, ExpiredTokenError):
        status, title = 410, N_("This link has expired")
    else:
        status, title = 404, N_("This link is not valid")
    return message(pages, request, title, N_("Nothing was changed."), help_text, status_code=status)


def stale_form(pages: Pages, request: Request) -> HTMLResponse:
    """``403``: a form without a genuine nonce for its link; nothing was recorded."""
    return message(
        pages,
        request,
        N_("This form cannot be saved"),
        N_("Nothing was changed."),
        N_("The form is too old or did not come from our page. Open the link again."),
        status_code=403,
    )


def try_again(pages: Pages, request: Request) -> HTMLResponse:
    """``503``: the ledger could not record the request just now; nothing was recorded."""
    return message(
        pages,
        request,
        N_("Please try again"),
        N_("We could not record your request just now. Please press the button again in a moment."),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
