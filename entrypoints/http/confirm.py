"""Double opt-in: ``GET /c/{token}`` asks, ``POST /c/{token}`` confirms a pending subscription.

The link is signed like an unsubscribe link, for its own use (``confirm``: an unsubscribe link
never verifies here) and names the person by subject and the purpose they subscribed to.
``GET`` changes nothing: mail scanners fetch every link, and a fetch must not confirm on the
person's behalf. The page's button posts ``confirm=subscribe``, which records
``ConsentConfirmed`` (source ``confirmation_link``) durably before the result page. Every click
of one link records once. A refused link is ``404`` (``410`` once expired) and records nothing;
a subscription that no longer waits (withdrawn, never asked) is ``409`` and records nothing.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from entrypoints.http.forms import Form
from entrypoints.http.pages import PAGE_HEADERS, Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.recipient import catalog_of, message, refused, try_again, wording
from entrypoints.http.unsubscribe import TOKEN
from ledger.domain.commands import ConfirmConsent
from ledger.domain.errors import LedgerError, MalformedTokenError, UnsubscribeTokenError
from ledger.domain.rules import ConsentStatus
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import Channel, Source

__all__ = ["CONFIRM_USE", "confirm_router"]

CONFIRM_USE = "confirm"
ACTOR = "confirmation-link"
HELP = N_("Use the confirmation link of the most recent message we sent you.")


def _verified(codec: UnsubscribeTokenCodec, token: str) -> UnsubscribeClaim:
    claim = codec.verify(token)
    if claim.purpose is None:
        raise MalformedTokenError("a confirmation link names a purpose")
    return claim


def confirm_router(
    *, codec: UnsubscribeTokenCodec, ledger: Ledger, pages: Pages | None = None
) -> APIRouter:
    """``GET`` and ``POST /c/{token}``; ``codec`` is turned to the links' ``confirm`` use."""
    router = APIRouter(tags=["recipient"], responses=documented(404, 410, 413, 422, 503))
    links = codec.for_use(CONFIRM_USE)
    pages = pages or Pages()

    async def scope(claim: UnsubscribeClaim, lang: str) -> dict[str, str]:
        words = wording(await catalog_of(ledger), str(claim.purpose), lang)
        return {"label": words.label, "description": words.description}

    @router.get(
        "/c/{token}",
        response_class=HTMLResponse,
        summary="The page of a double opt-in link; changes nothing",
    )
    async def ask(token: Annotated[str, TOKEN], request: Request) -> Response:
        try:
            claim = _verified(links, token)
        except UnsubscribeTokenError as error:
            return refused(pages, request, error, help_text=HELP)
        context = {"scope": await scope(claim, pages.language(request))}
        return pages.render(request, "recipient/confirm.html", context)

    @router.post(
        "/c/{token}",
        response_class=HTMLResponse,
        summary="Confirm a pending subscription (the page's button)",
        responses={
            400: {"description": "Not the page's form; nothing recorded"},
            409: {"description": "Nothing waits for confirmation; nothing recorded"},
        },
    )
    async def confirm(token: Annotated[str, TOKEN], request: Request, fields: Form) -> Response:
        try:
            claim = _verified(links, token)
        except UnsubscribeTokenError as error:
            return refused(pages, request, error, help_text=HELP)
        if ("confirm", "subscribe") not in fields:
            raise ApiProblemError(
                400,
                "confirm-body-required",
                "The body must be the page's form, confirm=subscribe",
                headers=PAGE_HEADERS,
            )
        command = ConfirmConsent(
            subject=claim.subject,
            purpose=str(claim.purpose),
            source=Source.CONFIRMATION_LINK,
            actor=ACTOR,
            occurred_at=ledger.clock(),
            command_id=claim.command_id_for(CONFIRM_USE),
        )
        try:
            await ledger.record(command)
        except LedgerError as error:
            if error.retryable:
                return try_again(pages, request)
            if not await _already_confirmed(ledger, claim):
                return _nothing_to_confirm(pages, request)
        context = {"scope": await scope(claim, pages.language(request))}
        return pages.render(request, "recipient/confirmed.html", context)

    return router


async def _already_confirmed(ledger: Ledger, claim: UnsubscribeClaim) -> bool:
    """A second link of one subscription, clicked after the first: confirmed all the same."""
    person = await asyncio.to_thread(ledger.person, claim.subject)
    record = None if person is None else person.consents.get((str(claim.purpose), Channel.EMAIL))
    return record is not None and record.status is ConsentStatus.GRANTED


def _nothing_to_confirm(pages: Pages, request: Request) -> HTMLResponse:
    return message(
        pages,
        request,
        N_("There is nothing to confirm"),
        N_(
            "This subscription is not waiting for confirmation: it was withdrawn, or never "
            "asked for. Nothing was changed."
        ),
        status_code=409,
    )
