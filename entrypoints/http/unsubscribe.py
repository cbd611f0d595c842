"""The recipients' path: ``GET /u/{token}`` asks, ``POST /u/{token}`` unsubscribes (RFC 8058).

No cookies, no authentication: the signed token is the only credential. ``GET`` changes
nothing, because mail security scanners fetch every link in a message. ``POST`` takes two
bodies, both forms (urlencoded or multipart):

- ``List-Unsubscribe=One-Click``: a mail client's one-click button (RFC 8058). The click is
  recorded durably before the ``200``, whose body is one line of text. It unsubscribes from
  exactly what the link names: its purpose, its list, or everything.
- ``confirm=unsubscribe``: the button of the page; the answer is a result page. A list's link
  offers a choice there: ``scope=list`` (only this list, the default) or ``scope=everything``.

The page is French unless ``?lang=`` or ``Accept-Language`` asks for another catalog's language,
and names a purpose by its label and description in that language, not by its id.

Every click of one link records one event. A link that is not ours, altered, signed with a
retired key or malformed is ``404`` (``410`` once expired) and records nothing: a page for the
page's button, problem details for one-click. Bodies over `MAX_BODY_BYTES` are ``413``. Neither
the token nor anything the person typed is ever logged.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from entrypoints.http.forms import MAX_BODY_BYTES, Form
from entrypoints.http.pages import PAGE_HEADERS, Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.problems import ApiProblemError, documented, html_page, page_or_problem
from entrypoints.http.recipient import catalog_of, refused, try_again, wording
from ledger.domain.errors import ExpiredTokenError, LedgerError, UnsubscribeTokenError
from ledger.links.clicks import record_click
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import Source, UnsubscribeMethod

__all__ = ["MAX_BODY_BYTES", "unsubscribe_router"]

TOKEN = Path(description="The signed token of the link (as the message carries it).")
PAGE_CONFIRM = ("confirm", "unsubscribe")
ONE_CLICK = ("List-Unsubscribe", "One-Click")
EVERYTHING = "everything"
"""The ``scope`` a list link's page posts to leave every list and purpose."""
HELP = N_(
    "Use the unsubscribe link of a recent message from us, or reply to it asking to be "
    "unsubscribed."
)


def _problem(error: UnsubscribeTokenError) -> ApiProblemError:
    if isinstance(error, ExpiredTokenError):
        return ApiProblemError(
            410,
            "unsubscribe-link-expired",
            "This unsubscribe link has expired",
            headers=PAGE_HEADERS,
        )
    return ApiProblemError(
        404,
        "unsubscribe-link-invalid",
        "This is not a valid unsubscribe link",
        headers=PAGE_HEADERS,
    )


async def _scope(ledger: Ledger, claim: UnsubscribeClaim, lang: str) -> dict[str, Any]:
    """What the link covers, as the page words it."""
    if claim.purpose is not None:
        words = wording(await catalog_of(ledger), claim.purpose, lang)
        return {"kind": "purpose", "label": words.label, "description": words.description}
    if claim.list_id is not None:
        return {"kind": "list", "list_id": claim.list_id}
    return {"kind": EVERYTHING}


def unsubscribe_router(
    *, codec: UnsubscribeTokenCodec, ledger: Ledger, pages: Pages | None = None
) -> APIRouter:
    """``GET`` and ``POST /u/{token}``, recording clicks in ``ledger``."""
    router = APIRouter(tags=["recipient"], responses=documented(404, 410, 413, 422, 503))
    pages = pages or Pages()

    @router.get(
        "/u/{token}",
        response_class=HTMLResponse,
        summary="The confirmation page of an unsubscribe link; changes nothing",
        responses={
            200: html_page("The page, with its button"),
            404: html_page("Not a valid link"),
            410: html_page("Expired"),
        },
    )
    async def confirm(token: Annotated[str, TOKEN], request: Request) -> Response:
        try:
            claim = codec.verify(token)
        except UnsubscribeTokenError as error:
            return refused(pages, request, error, help_text=HELP)
        scope = await _scope(ledger, claim, pages.language(request))
        return pages.render(request, "recipient/unsubscribe.html", {"scope": scope})

    @router.post(
        "/u/{token}",
        summary="Unsubscribe: RFC 8058 one-click, or the confirmation page's button",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Recorded: the text Unsubscribed. to a one-click POST, the "
                "page that says so to the page's button",
                "content": {
                    "text/plain": {"schema": {"type": "string", "examples": ["Unsubscribed.\n"]}},
                    **html_page("The page")["content"],
                },
            },
            400: documented(400)[400]
            | {"description": "Neither List-Unsubscribe=One-Click nor the page's form"},
            404: page_or_problem(404, "Not a valid link; nothing recorded"),
            410: page_or_problem(410, "Expired; nothing recorded"),
            413: documented(413)[413] | {"description": "Body over 4 KiB"},
            503: page_or_problem(503, "Not recorded just now: press the button again"),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The RFC 8058 form List-Unsubscribe=One-Click, or the page's form",
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "string",
                            "examples": ["List-Unsubscribe=One-Click"],
                        }
                    }
                },
            }
        },
    )
    async def unsubscribe(token: Annotated[str, TOKEN], request: Request, fields: Form) -> Response:
        form = dict(fields)
        from_page = form.get(PAGE_CONFIRM[0]) == PAGE_CONFIRM[1]
        one_click = not from_page and form.get(ONE_CLICK[0]) == ONE_CLICK[1]
        try:
            claim = codec.verify(token)
        except UnsubscribeTokenError as error:
            if from_page:
                return refused(pages, request, error, help_text=HELP)
            raise _problem(error) from None
        if one_click:
            await record_click(
                ledger, claim, method=UnsubscribeMethod.ONE_CLICK_POST, source=Source.ONE_CLICK
            )
            return PlainTextResponse("Unsubscribed.\n", headers=PAGE_HEADERS)
        if not from_page:
            raise ApiProblemError(
                400,
                "one-click-body-required",
                "The body must be the form List-Unsubscribe=One-Click (RFC 8058)",
                headers=PAGE_HEADERS,
            )
        if claim.list_id is not None and form.get("scope") == EVERYTHING:
            # The person chose more than the link names: everything, from this message.
            claim = claim.model_copy(update={"list_id": None})
        try:
            await record_click(
                ledger, claim, method=UnsubscribeMethod.LINK_PAGE, source=Source.UNSUBSCRIBE_LINK
            )
        except LedgerError as error:
            if not error.retryable:
                raise
            return try_again(pages, request)
        scope = await _scope(ledger, claim, pages.language(request))
        return pages.render(request, "recipient/unsubscribed.html", {"scope": scope})

    return router
