"""``GET /v1/check`` and the streaming ``POST /v1/check``: may we send, fail-closed."""

import csv
import inspect
import io
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

import anyio.from_thread
import anyio.to_thread
import psycopg
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

from access.apikeys import ApiKey, Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.limits import App, Receive, Send
from entrypoints.http.limits import Scope as AsgiScope
from entrypoints.http.problems import ApiProblemError
from entrypoints.http.services import MAX_POSITION, ApiServices
from ledger.domain.errors import InvalidFieldError
from ledger.domain.rules import Decision
from projections.checker import Checker, StaleProjectionError
from schemas import SUBJECT_PATTERN, Channel

_quote = json.encoder.encode_basestring_ascii  # what json.dumps does to a str

MAX_LINE_BYTES = 1024
OUT_CHUNK_LINES = 5_000
PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
PURPOSE = Query(pattern=PURPOSE_PATTERN, description="The message's purpose.")
MAX_ADDRESS_CHARS = 320
NDJSON = "application/x-ndjson"
T = TypeVar("T")
_SUBJECT = re.compile(SUBJECT_PATTERN)
_PURPOSE = re.compile(PURPOSE_PATTERN)
_CHANNELS = frozenset(Channel)
_PLAIN_POSITION = re.compile(r"[0-9]{1,19}")  # longer: the route answers (and parses) it
_BAD_SUBJECT = "subject: 1 to 128 of the characters A-Z a-z 0-9 . _ : @ -"


class DuplexStreamingResponse(StreamingResponse):
    """Streams its answer while the request body is still being read.

    Starlette's own response listens for a disconnect by reading the request's messages, which
    would swallow the body the answer is computed from; a vanished client shows instead as a
    failed send, which ends the stream.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.stream_response(send)
        except OSError:
            raise ClientDisconnect from None


class InputKind(StrEnum):
    SUBJECTS = "subjects"
    ADDRESSES = "addresses"


class CheckAnswer(BaseModel):
    subject: str
    allowed: bool
    reason: str | None
    covered: int
    """The ledger position this answer includes."""


def checks_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["checks"])
    needs_check = Depends(auth.require(Scope.CHECK))

    @router.get("/v1/check", response_model=CheckAnswer, summary="May we send to one person?")
    async def check_one(
        *,
        purpose: Annotated[str, PURPOSE],
        key: Annotated[ApiKey, needs_check],
        subject: Annotated[str | None, Query(pattern=SUBJECT_PATTERN)] = None,
        address: Annotated[str | None, Query(max_length=MAX_ADDRESS_CHARS)] = None,
        channel: Channel = Channel.EMAIL,
        min_position: Annotated[
            int | None,
            Query(
                ge=0, le=MAX_POSITION, description="A write's position: answer only once covered."
            ),
        ] = None,
    ) -> CheckAnswer:
        if (subject is None) == (address is None):
            raise ApiProblemError(
                422,
                "invalid-field",
                "Name the person once",
                detail="give exactly one of subject or address",
                field="subject",
            )
        return CheckAnswer(
            **await single_check(
                services,
                subject=subject,
                address=address,
                purpose=purpose,
                channel=channel,
                min_position=min_position,
            )
        )

    @router.post(
        "/v1/check",
        summary="May we send? Many people, streamed",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {NDJSON: {}, "text/csv": {}},
                "description": "One answer per input line, in input order.",
            },
            503: {"description": "The projection is stale: retry after Retry-After."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    NDJSON: {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
                "description": "One person per line: a subject or an address (see `input`); "
                'NDJSON lines may be a JSON string or {"subject": ...} / {"address": ...}; CSV '
                "takes the first column and skips a header named subject or address.",
            }
        },
    )
    async def check_many(
        request: Request,
        *,
        purpose: Annotated[str, PURPOSE],
        key: Annotated[ApiKey, needs_check],
        channel: Channel = Channel.EMAIL,
        min_position: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
        input_kind: Annotated[
            InputKind, Query(alias="input", description="What bare lines hold.")
        ] = InputKind.SUBJECTS,
    ) -> StreamingResponse:
        media = request.headers.get("content-type", NDJSON).split(";")[0].strip().lower()
        if media not in {NDJSON, "application/json", "text/csv", "text/plain"}:
            raise ApiProblemError(
                415,
                "unsupported-media-type",
                "Send NDJSON, CSV or plain text lines",
                field="Content-Type",
            )
        checker = await services.checkers.lend()
        try:
            await anyio.to_thread.run_sync(
                lambda: checker.wait_until_covered(min_position=min_position),
                limiter=services.checkers.threads,
            )
        except BaseException:
            services.checkers.release(checker)
            raise
        answers = _BulkAnswers(
            services,
            checker,
            request.stream(),
            csv_in=media == "text/csv",
            addresses=input_kind is InputKind.ADDRESSES,
        )
        return DuplexStreamingResponse(
            answers.render(purpose, channel, csv_out=media == "text/csv"),
            media_type="text/csv" if media == "text/csv" else NDJSON,
        )

    return router


async def single_check(
    services: ApiServices,
    *,
    subject: str | None,
    address: str | None,
    purpose: str,
    channel: str,
    min_position: int | None,
) -> dict[str, Any]:
    """One person's answer, as `CheckAnswer`'s fields: ``subject`` given, or ``address``."""
    who = subject if subject is not None else services.hasher.subject_for(str(address))
    on_loop = services.checkers.on_loop
    result = None
    if on_loop is not None:
        result = await on_loop.check(who, purpose, channel, min_position=min_position)
    if result is None:
        result = await _on_a_checker(
            services,
            lambda checker: checker.check(who, purpose, channel, min_position=min_position),
        )
    reason = result.decision.reason
    return {
        "subject": who,
        "allowed": result.decision.allowed,
        "reason": None if reason is None else reason.value,
        "covered": result.covered,
    }


class SingleCheckFastPath:
    """ASGI middleware: ``GET /v1/check`` answered without the framework's per-request work.

    The single check is what the sender asks most, hundreds of times a second, and routing,
    dependency solving and response validation cost more than the check itself. When the
    parameters are plainly valid (the route's own patterns, none repeated) and the key holds
    the check scope, the check is answered here, by `single_check` and in the route's JSON.
    Anything else (a missing, repeated or malformed parameter, no key, the wrong scope) goes
    on to the route, which answers it with problem details; an error while checking is
    answered by the application's own exception handlers.
    """

    def __init__(
        self, app: App, *, services: ApiServices, auth: Authenticator, owner: FastAPI
    ) -> None:
        self.app = app
        self._services = services
        self._auth = auth
        self._owner = owner

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] != "/v1/check"
            or (params := _plain_check_query(scope["query_string"])) is None
        ):
            await self.app(scope, receive, send)
            return
        key = self._auth.key_of(Headers(scope=scope))
        if key is None or Scope.CHECK not in key.scopes:
            await self.app(scope, receive, send)
            return
        response: Response
        try:
            answer = await single_check(self._services, **params)
        except Exception as error:
            handler = self._handler(error)
            if handler is None:
                raise
            answered = handler(Request(scope, receive), error)
            response = await answered if inspect.isawaitable(answered) else answered
        else:
            response = Response(
                json.dumps(answer, separators=(",", ":")), media_type="application/json"
            )
        await response(scope, receive, send)

    def _handler(self, error: Exception) -> Callable[..., Response | Awaitable[Response]] | None:
        handlers = self._owner.exception_handlers
        for kind in type(error).__mro__:
            if kind in handlers:
                return handlers[kind]
        return None


def _plain_check_query(raw: bytes) -> dict[str, Any] | None:
    """`single_check`'s arguments if the query is plainly valid for the route, else None."""
    given: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in given:
            return None
        given[name] = value
    purpose = given.get("purpose")
    subject = given.get("subject")
    address = given.get("address")
    position = given.get("min_position")
    if (
        purpose is None
        or not _PURPOSE.fullmatch(purpose)
        or (subject is None) == (address is None)
        or (subject is not None and not _SUBJECT.fullmatch(subject))
        or (address is not None and len(address) > MAX_ADDRESS_CHARS)
        or given.get("channel", Channel.EMAIL) not in _CHANNELS
        or (position is not None and not _PLAIN_POSITION.fullmatch(position))
    ):
        return None
    min_position = None if position is None else int(position)
    if min_position is not None and min_position > MAX_POSITION:
        return None
    return {
        "subject": subject,
        "address": address,
        "purpose": purpose,
        "channel": given.get("channel", Channel.EMAIL.value),
        "min_position": min_position,
    }


async def _on_a_checker(services: ApiServices, work: Callable[[Checker], T]) -> T:
    """``work`` on a lent checker, on the checks' own threads.

    A checker whose connection broke (the database restarted since it last served) is
    replaced and the work tried once more: a check only reads.
    """
    pool = services.checkers
    for attempt in (1, 2):
        checker = await pool.lend()
        try:
            return await anyio.to_thread.run_sync(work, checker, limiter=pool.threads)
        except psycopg.OperationalError:
            if checker.usable() or attempt == 2:
                raise
        finally:
            pool.release(checker)
    raise AssertionError  # the loop returns or raises


class _BulkAnswers:
    """Input lines pulled from the request body, decisions pushed out, in order, in chunks."""

    def __init__(
        self,
        services: ApiServices,
        checker: Checker,
        body: AsyncIterator[bytes],
        *,
        csv_in: bool,
        addresses: bool,
    ) -> None:
        self._services = services
        self._checker = checker
        self._body = body
        self._csv = csv_in
        self._addresses = addresses
        # Per input line, in order: the address given (or None), or the error it caused.
        self._pending: deque[tuple[str | None, str | None]] = deque()

    async def _next_chunk(self) -> bytes:
        return await anext(self._body)

    def _chunks(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = anyio.from_thread.run(self._next_chunk)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk

    def _lines(self) -> Iterator[str]:
        rest = b""
        for chunk in self._chunks():
            rest += chunk
            *lines, rest = rest.split(b"\n")
            if len(rest) > MAX_LINE_BYTES:
                lines.append(rest)
                rest = b""
            for line in lines:
                yield line.decode("utf-8", "replace").strip()
        if rest.strip():
            yield rest.decode("utf-8", "replace").strip()

    def _subjects(self) -> Iterator[str]:
        first = True
        for line in self._lines():
            if not line:
                continue
            header, first = first, False
            try:
                kind, value = self._parse(line, header=header)
            except ValueError as error:
                self._pending.append((None, str(error)))
                yield ""
                continue
            if kind == "header":
                continue
            if kind == "address":
                try:
                    subject = self._services.hasher.subject_for(value)
                except (InvalidFieldError, UnicodeError):
                    self._pending.append((None, "address: not a valid email address"))
                    yield ""
                    continue
                self._pending.append((value, None))
                yield subject
            elif _SUBJECT.match(value):
                self._pending.append((None, None))
                yield value
            else:
                self._pending.append((None, _BAD_SUBJECT))
                yield ""

    def _parse(self, line: str, *, header: bool) -> tuple[str, str]:
        if len(line.encode()) > MAX_LINE_BYTES:
            msg = f"line longer than {MAX_LINE_BYTES} bytes"
            raise ValueError(msg)
        bare = "address" if self._addresses else "subject"
        if self._csv:
            try:
                value = next(csv.reader([line]), [""])[0].strip()
            except (csv.Error, IndexError):
                msg = "not a CSV line"
                raise ValueError(msg) from None
            if header and value.lower() in {"subject", "address"}:
                return "header", value
            return bare, value
        if line[0] in '{"':
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                msg = "not JSON"
                raise ValueError(msg) from None
            if isinstance(parsed, str):
                return bare, parsed
            if isinstance(parsed, dict) and len(parsed) == 1:
                ((kind, value),) = parsed.items()
                if kind in {"subject", "address"} and isinstance(value, str):
                    return kind, value
            msg = 'expected a string, {"subject": ...} or {"address": ...}'
            raise ValueError(msg)
        return bare, line

    def render(self, purpose: str, channel: str, *, csv_out: bool) -> Iterator[bytes]:
        """The answers as NDJSON or CSV lines, a chunk at a time (iterated in a worker thread)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if csv_out:
            writer.writerow(["subject", "allowed", "reason", "error"])
        lines = 0
        tails: dict[Decision, str] = {}
        try:
            for subject, decision in self._checker.bulk_check(self._subjects(), purpose, channel):
                address, error = self._pending.popleft()
                reason = None if decision.reason is None else decision.reason.value
                if csv_out:
                    if error is None:
                        writer.writerow([subject, str(decision.allowed).lower(), reason or "", ""])
                    else:
                        writer.writerow(["", "", "", error])
                elif error is not None:
                    out.write(json.dumps({"error": error}) + "\n")
                else:
                    # The same text json.dumps gives the dict, without building the dict.
                    tail = tails.get(decision)
                    if tail is None:
                        tail = tails[decision] = (
                            f', "allowed": {json.dumps(decision.allowed)}, '
                            f'"reason": {json.dumps(reason)}'
                        )
                    out.write(
                        '{"subject": '
                        + _quote(subject)
                        + tail
                        + ("}\n" if address is None else ', "address": ' + _quote(address) + "}\n")
                    )
                lines += 1
                if lines % OUT_CHUNK_LINES == 0:
                    yield out.getvalue().encode()
                    out.seek(0)
                    out.truncate()
        except StaleProjectionError as error:
            # The answer has started: say so in the stream rather than answer stale.
            out.write(json.dumps({"error": "stale-projection", "detail": str(error)}) + "\n")
        finally:
            self._services.checkers.release(self._checker)
        yield out.getvalue().encode()
