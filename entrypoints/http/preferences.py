"""The preference centre: ``GET /p/{token}`` shows a person's choices, ``POST`` saves them.

The link is signed like an unsubscribe link, for its own use (``preferences``), and names the
person by subject only. ``GET`` changes nothing. Its form carries a nonce: a token of the
``form`` use naming the same person and a digest of this very link (`FormNonces`). A
``POST`` without a genuine nonce for this link is refused (``403``) and records nothing: a page
of another site cannot post choices for someone. What the saving records is durable before the
confirmation page is shown (`entrypoints.http.preference_choices` says which events).
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from entrypoints.http.forms import read_form
from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.preference_choices import changes, choices
from entrypoints.http.problems import documented
from entrypoints.http.recipient import FormNonces, catalog_of, refused, stale_form, try_again
from ledger.domain.errors import LedgerError, UnsubscribeTokenError
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import PersonalData

__all__ = ["PREFERENCES_USE", "preferences_router"]

PREFERENCES_USE = "preferences"
STATEMENT = N_("Emails I want to receive")
"""The legend of the boxes: part of the exact wording a grant's evidence hashes."""
HELP = N_("Use the link to your preferences in a recent message from us.")
EVERYTHING = "everything"


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


def preferences_router(
    *, codec: UnsubscribeTokenCodec, ledger: Ledger, pages: Pages | None = None
) -> APIRouter:
    """``GET`` and ``POST /p/{token}``; ``codec`` is turned to the ``preferences`` use."""
    router = APIRouter(tags=["preference centre"], responses=documented(403, 404, 410, 413, 503))
    links = codec.for_use(PREFERENCES_USE)
    nonces = FormNonces(codec)
    pages = pages or Pages()

    async def shown(claim: UnsubscribeClaim, lang: str) -> list[Any]:
        catalog = await catalog_of(ledger)
        person = await asyncio.to_thread(ledger.person, claim.subject)
        return choices(catalog, person, lang, pages.gettext(lang, STATEMENT))

    @router.get(
        "/p/{token}",
        response_class=HTMLResponse,
        summary="A person's preference centre; changes nothing",
    )
    async def page(token: str, request: Request) -> Response:
        try:
            claim = links.verify(token)
        except UnsubscribeTokenError as error:
            return refused(pages, request, error, help_text=HELP)
        lang = pages.language(request)
        nonce = nonces.issue(token=token, subject=claim.subject)
        context = {
            "choices": await shown(claim, lang),
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
    async def save(
        token: str,
        request: Request,
        fields: Annotated[list[tuple[str, str]], Depends(read_form)],
    ) -> Response:
        try:
            claim = links.verify(token)
        except UnsubscribeTokenError as error:
            return refused(pages, request, error, help_text=HELP)
        form = dict(fields)
        nonce = form.get("nonce", "")
        if not nonces.genuine(nonce, token=token, subject=claim.subject):
            return stale_form(pages, request)
        lang = pages.language(request)
        before = await shown(claim, lang)
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
