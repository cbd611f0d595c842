"""One person's check: `single_check`, and the ASGI fast path that answers it without routing."""

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import Headers

from access.apikeys import Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.limits import App, Receive, Send
from entrypoints.http.limits import Scope as AsgiScope
from entrypoints.http.services import MAX_POSITION, ApiServices
from ledger.domain.deliverability import denied_by
from ledger.domain.identity import MAX_ADDRESS_CHARS
from projections.checker import Checker
from schemas import SUBJECT_PATTERN, Channel

PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
T = TypeVar("T")
_SUBJECT = re.compile(SUBJECT_PATTERN)
_PURPOSE = re.compile(PURPOSE_PATTERN)
_CHANNELS = frozenset(Channel)
_PLAIN_POSITION = re.compile(r"[0-9]{1,19}")  # longer: the route answers (and parses) it


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
        "denied_by": denied_by(None if reason is None else reason.value),
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
        response: Response
        try:
            # The key's look-up, too, meets a database that is down: a 503, not a 500.
            key = self._auth.key_of(Headers(scope=scope))
        except Exception as error:  # noqa: BLE001 - `_problem` raises it again if unhandled
            response = await self._problem(error, Request(scope, receive))
            await response(scope, receive, send)
            return
        if key is None or Scope.CHECK not in key.scopes:
            await self.app(scope, receive, send)
            return
        try:
            answer = await single_check(self._services, **params)
        except Exception as error:  # noqa: BLE001 - `_problem` raises it again if unhandled
            response = await self._problem(error, Request(scope, receive))
        else:
            response = Response(
                json.dumps(answer, separators=(",", ":")), media_type="application/json"
            )
        await response(scope, receive, send)

    async def _problem(self, error: Exception, request: Request) -> Response:
        """The application's own answer to ``error``; raised again when it has no handler."""
        handler = self._handler(error)
        if handler is None:
            raise error
        answered = handler(request, error)
        return await answered if inspect.isawaitable(answered) else answered

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
