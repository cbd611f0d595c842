"""The preference centre: ``GET /p/{token}`` shows a person's choices, ``POST`` saves them.

The link is signed like an unsubscribe link, for its own use (``preferences``), and names the
person by subject only. ``GET`` changes nothing. Its form carries a nonce: a token of the
``form`` use naming the same person and a digest of this very link (`FormNonces`), with the
purposes the page showed as received: saving compares the boxes ticked with what the person
saw, without reading their state again (nor racing a change made meanwhile elsewhere). A
``POST`` without a genuine nonce for this link is refused (``403``) and records nothing: a page
of another site cannot post choices for someone. What the saving records is durable before the
confirmation page is shown (`entrypoints.http.preference_choices` says which events).
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from entrypoints.http.forms import Form
from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.preference_choices import Choice, changes, choices, receives_now
from entrypoints.http.problems import documented
from entrypoints.http.recipient import FormNonces, catalog_of, refused, stale_form, try_again
from entrypoints.http.unsubscribe import TOKEN
from ledger.domain.errors import LedgerError, UnsubscribeTokenError
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import PersonalData

__all__ = ["HELP", "PREFERENCES_USE", "checked_form", "preferences_router"]

PREFERENCES_USE = "preferences"
STATEMENT = N_("Emails I want to receive")
"""The legend of the boxes: part of the exact wording a grant's evidence hashes."""
HELP = N_("Use the link to your preferences in a recent message from us.")
EVERYTHING = "everything"
_SHOWN = "shown:"
_SHOWN_SEPARATOR = ","
_MAX_SHOWN = 190
"""The purposes a page showed as received fit a nonce's free field; more are read again."""


def _personal(request: Request) -> PersonalData | None:
    """The browser's IP and user agent, kept sealed with the events as the grant's context."""
    fields = {
        "ip": request.client.host if request.client else None,
        "user_agent": (request.headers.get("user-agent") or "")[:512] or None,
    }
    try:
        return PersonalData(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError:
        return None


def checked_form(
    links: UnsubscribeTokenCodec,
    nonces: FormNonces,
    pages: Pages,
    request: Request,
    *,
    token: str,
    fields: list[tuple[str, str]],
) -> tuple[UnsubscribeClaim, dict[str, str], UnsubscribeClaim] | HTMLResponse:
    """A form posted to a preference link: (the link's claim, the form, its nonce's claim), or
    the page refusing it (a bad link: 404 or 410; no genuine nonce for this link: 403)."""
    try:
        claim = links.verify(token)
    except UnsubscribeTokenError as error:
        return refused(pages, request, error, help_text=HELP)
    form = dict(fields)
    issued = nonces.genuine(form.get("nonce", ""), token=token, subject=claim.subject)
    if issued is None:
        return stale_form(pages, request)
    return claim, form, issued


def preferences_router(
    *, codec: UnsubscribeTokenCodec, ledger: Ledger, pages: Pages | None = None
) -> APIRouter:
    """``GET`` and ``POST /p/{token}``; ``codec`` is turned to the ``preferences`` use."""
    router = APIRouter(tags=["recipient"], responses=documented(403, 404, 410, 413, 422, 503))
    links = codec.for_use(PREFERENCES_USE)
    nonces = FormNonces(codec)
    pages = pages or Pages()

    async def as_now(claim: UnsubscribeClaim, lang: str) -> list[Choice]:
        """The choices as the ledger stands (the person read from the store)."""
        catalog = await catalog_of(ledger)
        person = await asyncio.to_thread(ledger.person, claim.subject)
        statement = pages.gettext(lang, STATEMENT)
        return choices(catalog, lang, statement, lambda p, c: receives_now(person, p, consent=c))

    async def as_shown(shown: set[str], lang: str) -> list[Choice]:
        """The choices as the page showed them (signed in its nonce): no read of the person."""
        statement = pages.gettext(lang, STATEMENT)
        return choices(await catalog_of(ledger), lang, statement, lambda p, _: p in shown)

    @router.get(
        "/p/{token}",
        response_class=HTMLResponse,
        summary="A person's preference centre; changes nothing",
    )
    async def page(token: Annotated[str, TOKEN], request: Request) -> Response:
        try:
            claim = links.verify(token)
        except UnsubscribeTokenError as error:
            return refused(pages, request, error, help_text=HELP)
        lang = pages.language(request)
        now = await as_now(claim, lang)
        shown = _SHOWN_SEPARATOR.join(c.purpose for c in now if c.receives)
        nonce = nonces.issue(
            token=token,
            subject=claim.subject,
            shown=f"{_SHOWN}{shown}" if len(shown) < _MAX_SHOWN else None,
        )
        context = {
            "choices": now,
            "nonce": nonce,
            "statement": pages.gettext(lang, STATEMENT),
        }
        return pages.render(request, "recipient/preferences.html", context)

    @router.post(
        "/p/{token}",
        response_class=HTMLResponse,
        summary="Save a person's choices (the page's form)",
        responses={403: {"description": "No genuine form nonce for this link; nothing recorded"}},
    )
    async def save(token: Annotated[str, TOKEN], request: Request, fields: Form) -> Response:
        checked = checked_form(links, nonces, pages, request, token=token, fields=fields)
        if isinstance(checked, HTMLResponse):
            return checked
        claim, form, issued = checked
        nonce = form["nonce"]
        lang = pages.language(request)
        if issued.message_id is not None and issued.message_id.startswith(_SHOWN):
            shown = issued.message_id.removeprefix(_SHOWN)
            before = await as_shown(set(shown.split(_SHOWN_SEPARATOR)) - {""}, lang)
        else:
            before = await as_now(claim, lang)
        everything = form.get("action") == EVERYTHING
        wanted = None if everything else {v for k, v in fields if k == "purpose"}
        commands = changes(
            before,
            wanted,
            subject=claim.subject,
            nonce_id=FormNonces.command_id(nonce, "preferences"),
            personal=_personal(request),
            at=ledger.clock(),
        )
        try:
            await asyncio.gather(*(ledger.record(command) for command in commands))
        except LedgerError as error:
            if not error.retryable:
                raise
            return try_again(pages, request)
        after = [
            c
            for c in before
            if wanted is not None and c.purpose in wanted and (c.receives or c.policy_version)
        ]
        context = {"everything": everything, "receiving": after}
        return pages.render(request, "recipient/preferences_saved.html", context)

    return router
