"""``POST /v1/links``: a sender's mail merge in one call, NDJSON in, NDJSON out, in order.

Each input line is ``{"address"|"subject", "purpose"|"list", "campaign_id", "message_id"}``;
each output line, in the same order, is ``{"list_unsubscribe", "list_unsubscribe_post",
"unsubscribe_url", "preferences_url"}`` (the first two are the RFC 8058 header values; with
``"confirm": true`` also ``confirm_url``, the double opt-in link of the line's purpose), or
``{"line": n, "error": ..., "field": ...}`` in place of a line that is no message (an address is
never repeated back). Answers stream while the body is still arriving; lines are turned into
links a chunk at a time on a worker thread, so other requests keep being served. It needs a key
with the ``links`` scope.
"""

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from access.apikeys import ApiKey, Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.checks import NDJSON, DuplexStreamingResponse
from entrypoints.http.confirm import CONFIRM_USE
from entrypoints.http.preferences import PREFERENCES_USE
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.services import ApiServices
from ledger.domain.errors import InvalidFieldError
from ledger.domain.identity import SubjectHasher
from ledger.links.batch import LinkIssuer
from ledger.links.headers import unsubscribe_headers

__all__ = ["MAX_LINE_BYTES", "links_router"]

MAX_LINE_BYTES = 2048
"""One message's line is a few hundred bytes; a longer one is answered as an error."""
LINKS_EXAMPLE = (
    '{"list_unsubscribe":"<https://ledger.example.org/u/AQ.eyJzIjoiM2YxYyJ9.3n9Xc2Vh>",'
    '"list_unsubscribe_post":"List-Unsubscribe=One-Click",'
    '"unsubscribe_url":"https://ledger.example.org/u/AQ.eyJzIjoiM2YxYyJ9.3n9Xc2Vh",'
    '"preferences_url":"https://ledger.example.org/p/AQ.eyJzIjoiM2YxYyJ9.9c2Yx0Qa"}\n'
    '{"line":2,"error":"give exactly one of subject or address","field":"subject"}\n'
)
_FIELDS = {"address", "subject", "purpose", "list", "campaign_id", "message_id", "confirm"}
_quote = json.encoder.encode_basestring_ascii  # what json.dumps does to a str


class _Links:
    """Turns lines into answer lines; built once per request (its issuers cache shared parts)."""

    def __init__(self, services: ApiServices, *, base_url: str, mailto: str | None) -> None:
        self._unsubscribe = LinkIssuer(services.tokens)
        self._preferences = LinkIssuer(services.tokens.for_use(PREFERENCES_USE))
        self._confirm = LinkIssuer(services.tokens.for_use(CONFIRM_USE))
        self._hasher: SubjectHasher = services.hasher
        self._base = base_url.rstrip("/")
        self._mailto = mailto
        self.number = 0

    def _answer(self, line: bytes) -> str:
        if len(line) > MAX_LINE_BYTES:
            raise InvalidFieldError("line", f"longer than {MAX_LINE_BYTES} bytes")
        try:
            item = json.loads(line)
        except ValueError:
            raise InvalidFieldError("line", "not a JSON object") from None
        if not isinstance(item, dict):
            raise InvalidFieldError("line", "not a JSON object")
        unknown = sorted(set(item) - _FIELDS)
        if unknown:
            raise InvalidFieldError(unknown[0], "not a field of a link's line")
        confirm = item.pop("confirm", False)
        if not isinstance(confirm, bool) or (confirm and item.get("purpose") is None):
            raise InvalidFieldError("confirm", "true (with a purpose) or false")
        for name, value in item.items():
            if value is not None and not isinstance(value, str):
                raise InvalidFieldError(name, "must be a string")
        address, subject = item.get("address"), item.get("subject")
        if (address is None) == (subject is None):
            raise InvalidFieldError("subject", "give exactly one of subject or address")
        who = subject if subject is not None else self._hasher.subject_for(str(address))
        token = self._unsubscribe.issue(
            subject=who,
            purpose=item.get("purpose"),
            list_id=item.get("list"),
            campaign_id=item.get("campaign_id"),
            message_id=item.get("message_id"),
        )
        headers = unsubscribe_headers(token, public_url=self._base, mailto=self._mailto)
        preferences = f"{self._base}/p/{self._preferences.issue(subject=who)}"
        confirmation = ""
        if confirm:
            link = self._confirm.issue(subject=who, purpose=item.get("purpose"))
            confirmation = f',"confirm_url":{_quote(f"{self._base}/c/{link}")}'
        return (
            f'{{"list_unsubscribe":{_quote(headers.list_unsubscribe)},'
            f'"list_unsubscribe_post":{_quote(headers.list_unsubscribe_post)},'
            f'"unsubscribe_url":{_quote(f"{self._base}/u/{token}")},'
            f'"preferences_url":{_quote(preferences)}{confirmation}}}'
        )

    def answers(self, lines: list[bytes]) -> bytes:
        out = []
        for line in lines:
            self.number += 1
            if not line.strip():
                continue
            try:
                out.append(self._answer(line))
            except InvalidFieldError as error:
                out.append(
                    f'{{"line":{self.number},"error":{_quote(error.reason)},'
                    f'"field":{_quote(error.field)}}}'
                )
        return "".join(f"{answer}\n" for answer in out).encode()


async def _stream(links: _Links, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    rest = b""
    async for chunk in body:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        if len(rest) > MAX_LINE_BYTES:
            # A line this long is an error whatever follows: answer it now, keep its head only.
            lines.append(rest)
            rest = b""
        if lines:
            yield await anyio.to_thread.run_sync(links.answers, lines)
    if rest.strip():
        yield await anyio.to_thread.run_sync(links.answers, [rest])


def links_router(
    services: ApiServices, auth: Authenticator, *, base_url: Callable[[], str | None]
) -> APIRouter:
    """``base_url`` is where recipients reach the links (None: links are not served)."""
    router = APIRouter(tags=["sender"], responses=documented(401, 403, 413, 415, 503))
    needs_links = Depends(auth.require(Scope.LINKS))

    @router.post(
        "/v1/links",
        summary="The unsubscribe and preference links of many messages, streamed",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {NDJSON: {"schema": {"type": "string", "examples": [LINKS_EXAMPLE]}}},
                "description": 'One answer per input line: {"list_unsubscribe", '
                '"list_unsubscribe_post", "unsubscribe_url", "preferences_url"[, "confirm_url"]}, '
                'or {"line", "error", "field"}.',
            }
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    NDJSON: {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "string"}},
                },
                "description": 'One message per line: {"address" or "subject", "purpose" or '
                '"list", "campaign_id", "message_id"}.',
            }
        },
    )
    async def links(request: Request, key: Annotated[ApiKey, needs_links]) -> Any:
        media = request.headers.get("content-type", NDJSON).split(";")[0].strip().lower()
        if media not in {NDJSON, "application/json"}:
            raise ApiProblemError(
                415, "unsupported-media-type", "Send NDJSON lines", field="Content-Type"
            )
        base = base_url()
        if services.tokens is None or base is None:
            raise ApiProblemError(
                503,
                "links-not-configured",
                "This server issues no links",
                detail="set CONSENT_UNSUBSCRIBE_KEYS and CONSENT_PUBLIC_URL",
            )
        issuer = _Links(services, base_url=base, mailto=services.unsubscribe_mailto)
        return DuplexStreamingResponse(_stream(issuer, request.stream()), media_type=NDJSON)

    return router
