"""Request size limits, enforced on the bytes received, whatever Content-Length claims."""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from entrypoints.http.problems import PROBLEM_JSON, TYPE_BASE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLargeError(Exception):
    """The body went past its route's limit."""


class BodyLimit:
    """ASGI middleware: 413 as problem details for a body over the limit of its path."""

    def __init__(self, app: App, *, default: int, larger: dict[tuple[str, str], int]) -> None:
        self.app = app
        self.default = default
        self.larger = larger

    def _limit(self, scope: Scope) -> int:
        return self.larger.get((scope.get("method", ""), scope.get("path", "")), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0
        exceeded = started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The app may turn the error into an answer of its own (FastAPI answers 400
                # for any error while reading a body): the limit's 413 goes out instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLargeError:
            if not started:
                await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": TYPE_BASE + "body-too-large",
            "title": "The request body is too large",
            "status": 413,
            "detail": f"at most {limit} bytes on this endpoint",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
