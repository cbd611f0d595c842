"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol with bounds on request headers.

uvicorn reads a request's headers without limit of size or time: a 100 MB header was held in
memory before authentication, and a client sending its headers a byte at a time held its
connection forever. Here a request whose headers exceed ``max_header_bytes`` is answered 431
and closed, and a connection whose request headers are not all in within ``header_timeout_s``
of its start (or of the previous request's end) is closed.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    """Request line and headers of one request, in bytes, at most."""
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    """How long a request's line and headers may take to arrive."""


class BoundedHeadersProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that refuses oversize headers (431) and drops slow ones."""

    limits = HeaderLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_headers:
            super().data_received(data)
            return
        room = self.limits.max_header_bytes - self._header_bytes
        if len(data) <= room:
            self._header_bytes += len(data)
            super().data_received(data)
            return
        # The chunk may hold the end of the headers and the start of the body: the parser gets
        # what the limit allows, and the rest only if the headers ended within it.
        self._header_bytes = self.limits.max_header_bytes
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_headers:
            self._refuse_oversize_headers()
            return
        super().data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._stop_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next bytes on this connection are the next request's headers.
        if not self.transport.is_closing():
            self._start_headers()

    def _start_headers(self) -> None:
        self._in_headers = True
        self._header_bytes = 0
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_s, self._headers_too_slow
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            self.transport.close()

    def _refuse_oversize_headers(self) -> None:
        self._in_headers = False
        self._stop_header_timer()
        message = b"Request header fields too large."
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(message)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n",
                    b"\r\n",
                    message,
                ]
            )
        )
        self.transport.close()


def bounded_protocol(limits: HeaderLimits) -> type[BoundedHeadersProtocol]:
    """The protocol class uvicorn instantiates per connection, with ``limits``."""
    return type("BoundedHeadersProtocol", (BoundedHeadersProtocol,), {"limits": limits})
