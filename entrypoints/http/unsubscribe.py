"""The recipients' path: ``GET /u/{token}`` asks, ``POST /u/{token}`` unsubscribes (RFC 8058).

No cookies, no authentication: the signed token is the only credential. ``GET`` changes
nothing, because mail security scanners fetch every link in a message. ``POST`` takes two
bodies, both forms (urlencoded or multipart):

- ``List-Unsubscribe=One-Click``: a mail client's one-click button (RFC 8058). The click is
  recorded durably before the ``200``, whose body is one line of text.
- ``confirm=unsubscribe``: the button of the confirmation page; the answer is a result page.

Every click of one link records one event. A link that is not ours, altered, signed with a
retired key or malformed is ``404`` (``410`` once expired) and records nothing: HTML for the
page's paths, problem details for one-click. Bodies over `MAX_BODY_BYTES` are ``413``. Neither
the token nor anything the person typed is ever logged.
"""

import html
from email import policy
from email.parser import BytesParser
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from entrypoints.http.problems import ApiProblemError, documented, html_page, page_or_problem
from ledger.domain.errors import ExpiredTokenError, LedgerError, UnsubscribeTokenError
from ledger.links.clicks import record_click
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import Source, UnsubscribeMethod

__all__ = ["MAX_BODY_BYTES", "unsubscribe_router"]

TOKEN = Path(description="The signed token of the link (as the message carries it).")
MAX_BODY_BYTES = 4096
"""Either body is a few dozen bytes; a few KiB leaves room for a client's multipart framing."""
MAX_FORM_FIELDS = 16
PAGE_CONFIRM = ("confirm", "unsubscribe")
ONE_CLICK = ("List-Unsubscribe", "One-Click")
RETRY_AFTER_S = 1

HEADERS = {
    # The token is in the URL: no cache, no referrer and no search engine may keep it.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_STYLE = """
body{font:1.125rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;margin:0}
main{max-width:34rem;margin:3rem auto;padding:0 1rem}
h1{font-size:1.6rem;line-height:1.25}
button{font:inherit;padding:.6rem 1.4rem;border:2px solid #0b3d91;border-radius:.3rem;
color:#fff;background:#0b3d91;cursor:pointer}
button:focus-visible{outline:3px solid #e8a200;outline-offset:3px}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{html.escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _scope(claim: UnsubscribeClaim) -> str:
    if claim.purpose is not None:
        return f"emails for <strong>{html.escape(claim.purpose)}</strong>"
    if claim.list_id is not None:
        return f"emails from the list <strong>{html.escape(claim.list_id)}</strong>"
    return "any marketing email"


def _confirm_page(claim: UnsubscribeClaim) -> str:
    name, value = PAGE_CONFIRM
    return _page(
        "Unsubscribe?",
        f"<p>Press the button to stop receiving {_scope(claim)} from us.</p>\n"
        '<form method="post">\n'
        f'<input type="hidden" name="{name}" value="{value}">\n'
        '<button type="submit">Unsubscribe</button>\n</form>',
    )


def _done_page(claim: UnsubscribeClaim) -> str:
    return _page(
        "You are unsubscribed",
        f'<p role="status">You will no longer receive {_scope(claim)} from us.</p>\n'
        "<p>There is nothing else to do; you may close this page.</p>",
    )


def _html(status: int, title: str, text: str, *, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(
        _page(title, f"<p>{html.escape(text)}</p>"),
        status_code=status,
        headers=HEADERS | (headers or {}),
    )


def _invalid(error: UnsubscribeTokenError) -> tuple[int, str, str]:
    """Status, problem kind and words for a token we refuse; the same for every forgery."""
    if isinstance(error, ExpiredTokenError):
        return 410, "unsubscribe-link-expired", "This unsubscribe link has expired"
    return 404, "unsubscribe-link-invalid", "This is not a valid unsubscribe link"


_INVALID_HELP = (
    "Nothing was changed. Use the unsubscribe link of a recent message from us, "
    "or reply to it asking to be unsubscribed."
)


def _form_fields(body: bytes, content_type: str) -> list[tuple[str, str]]:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise ValueError("multipart body without parts")
        fields = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.append((name, payload.decode().strip()))
        return fields[:MAX_FORM_FIELDS]
    # RFC 8058 names both form encodings; a client that labels the body otherwise (or not at
    # all) still sent the key/value pair, which is what the RFC requires.
    return parse_qsl(
        body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
    )


async def read_form(request: Request) -> dict[str, str]:
    """The POSTed form, at most `MAX_BODY_BYTES` of it."""
    too_large = ApiProblemError(
        413,
        "body-too-large",
        "The request body is too large",
        detail=f"at most {MAX_BODY_BYTES} bytes",
        headers=HEADERS,
    )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    try:
        return dict(_form_fields(bytes(body), request.headers.get("content-type", "")))
    except (ValueError, UnicodeError, LookupError):
        raise ApiProblemError(
            400, "unreadable-form", "The request body is not a form", headers=HEADERS
        ) from None


def unsubscribe_router(*, codec: UnsubscribeTokenCodec, ledger: Ledger) -> APIRouter:
    """``GET`` and ``POST /u/{token}``, recording clicks in ``ledger``."""
    router = APIRouter(tags=["recipient"], responses=documented(404, 410, 413, 422, 503))

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
    async def confirm(token: Annotated[str, TOKEN]) -> Response:
        try:
            claim = codec.verify(token)
        except UnsubscribeTokenError as error:
            status, _, title = _invalid(error)
            return _html(status, title, _INVALID_HELP)
        return HTMLResponse(_confirm_page(claim), headers=HEADERS)

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
    async def unsubscribe(
        token: Annotated[str, TOKEN], form: Annotated[dict[str, str], Depends(read_form)]
    ) -> Response:
        from_page = form.get(PAGE_CONFIRM[0]) == PAGE_CONFIRM[1]
        one_click = not from_page and form.get(ONE_CLICK[0]) == ONE_CLICK[1]
        try:
            claim = codec.verify(token)
        except UnsubscribeTokenError as error:
            status, kind, title = _invalid(error)
            if from_page:
                return _html(status, title, _INVALID_HELP)
            raise ApiProblemError(status, kind, title, headers=HEADERS) from None
        if one_click:
            await record_click(
                ledger, claim, method=UnsubscribeMethod.ONE_CLICK_POST, source=Source.ONE_CLICK
            )
            return PlainTextResponse("Unsubscribed.\n", headers=HEADERS)
        if not from_page:
            raise ApiProblemError(
                400,
                "one-click-body-required",
                "The body must be the form List-Unsubscribe=One-Click (RFC 8058)",
                headers=HEADERS,
            )
        try:
            await record_click(
                ledger,
                claim,
                method=UnsubscribeMethod.LINK_PAGE,
                source=Source.UNSUBSCRIBE_LINK,
            )
        except LedgerError as error:
            if not error.retryable:
                raise
            return _html(
                503,
                "Please try again",
                "We could not record your request just now. Please press the button again "
                "in a moment.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return HTMLResponse(_done_page(claim), headers=HEADERS)

    return router
