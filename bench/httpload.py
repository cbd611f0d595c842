"""An open-loop HTTP/1.1 load generator: each request at its scheduled time, whatever the answers.

Requests go over keep-alive connections (a new one when all are busy, at most
``MAX_CONNECTIONS``); each latency is counted from the request's scheduled send time to the last
byte of its answer, so a server that falls behind pays for the queue it builds. Answers must
carry a Content-Length (no chunked bodies).
"""

import asyncio
import gc
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MAX_CONNECTIONS = 512
IDLE_S = 3.0
"""A keep-alive connection idle this long is not reused (uvicorn closes them after 5 s)."""
HTTP_OK = 200


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used_at = time.monotonic()

    async def exchange(self, request: bytes) -> tuple[int, bool, bytes]:
        """The answer's status and body, and whether the connection may carry another."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                keep_alive = False
        body = await self.reader.readexactly(length)
        self.used_at = time.monotonic()
        return status, keep_alive, body


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: the generator's own pauses (it keeps every request
    task alive) would otherwise be counted as the server's latency."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Tally:
    """Answers by status, error answers by problem type, and the requests answered 200."""

    statuses: dict[int, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    acknowledged: set[int] = field(default_factory=set)

    def answered(self, index: int, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == HTTP_OK:
            self.acknowledged.add(index)

    def problem(self, status: int, body: bytes) -> None:
        if status != HTTP_OK:
            kind = _problem_type(body)
            self.problems[kind] = self.problems.get(kind, 0) + 1


async def open_loop(
    host: str, port: int, requests: list[bytes], *, rate: float, warmup: int
) -> dict[str, Any]:
    idle: list[Connection] = []
    opened = 0
    latencies: list[float] = []
    tally = Tally()
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def take_connection() -> tuple[Connection, bool]:
        nonlocal opened
        while idle:
            reused = idle.pop()
            # The server closes idle keep-alive connections (uvicorn: after 5 s); a client
            # does not send on one that may be closing.
            if time.monotonic() - reused.used_at < IDLE_S:
                return reused, True
            reused.writer.close()
        opened += 1
        return Connection(*await asyncio.open_connection(host, port)), False

    async def send(index: int, scheduled: float) -> None:
        async with slots:
            status = 0
            for _ in range(2):
                try:
                    conn, reused = await take_connection()
                except OSError:
                    break
                try:
                    status, keep_alive, body = await conn.exchange(requests[index])
                except (OSError, asyncio.IncompleteReadError):
                    conn.writer.close()
                    # Only a reused connection the server had just closed is worth a retry.
                    if reused:
                        continue
                    break
                tally.problem(status, body)
                if keep_alive:
                    idle.append(conn)
                else:
                    conn.writer.close()
                break
        finished = time.perf_counter()
        tally.answered(index, status)
        if index >= warmup:
            latencies.append(finished - scheduled)

    tasks = []
    with collector_paused():
        began = time.perf_counter()
        for index in range(len(requests)):
            scheduled = began + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(index, scheduled)))
        await asyncio.gather(*tasks)
    measured = (time.perf_counter() - began) - warmup / rate
    for connection in idle:
        connection.writer.close()
    flat = sorted(latencies)
    return {
        "requests": len(flat),
        "rate_achieved": len(flat) / measured,
        "p50_ms": 1000 * flat[len(flat) // 2],
        "p99_ms": 1000 * flat[min(len(flat) - 1, int(len(flat) * 0.99))],
        "max_ms": 1000 * flat[-1],
        "statuses": tally.statuses,
        "problems": tally.problems,
        "connections": opened,
        "acknowledged": sorted(tally.acknowledged),
    }


def _problem_type(body: bytes) -> str:
    """The problem type an error answer names (RFC 9457), or its first bytes."""
    try:
        return str(json.loads(body)["type"]).rsplit("/", 1)[-1]
    except (ValueError, KeyError, TypeError):
        return body[:40].decode("latin-1")


def free_port() -> int:
    """A loopback port nothing listens on now, for a server the benchmark starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
