"""Single checks answered on the event loop, against the PostgreSQL projection."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from ledger.domain.rules import decide
from projections.checker import CheckerConfig, CheckResult, covered_query
from projections.facts import facts_from_row, facts_query
from projections.freshness import Freshness, covered_if_fresh
from projections.metrics import single_check_answered

LOOP_POLL_S = 0.0005


class LoopSendChecks:
    """Single checks answered on the event loop, against the PostgreSQL projection.

    Once the projection is known fresh, a check is one query; on a worker thread, handing the
    check to the thread and the answer back costs as much as the query. Checks here share the
    `SendChecker` s' freshness read: when it is older than `Freshness.ttl_s`, one check reads
    the head and the covered position again while the others of that moment wait for it. When
    the projection is not fresh enough for a check (it must wait), when every connection of
    this object is busy, or when a read fails, `check` returns None and the caller checks on a
    `SendChecker`, which reads again, waits if it must, and reports errors.
    """

    def __init__(
        self,
        dsn: str,
        *,
        head: Callable[[], int],
        config: CheckerConfig,
        freshness: Freshness,
        size: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._dsn = dsn
        self._head = head
        self.config = config
        self._freshness = freshness
        self._size = size
        self._clock = clock
        self._facts_query = facts_query(config.schema).as_bytes(None)
        self._covered_query = covered_query(config.schema).as_bytes(None)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._made = 0
        self._reading: asyncio.Future[tuple[int, int] | None] | None = None

    async def check(
        self, subject: str, purpose: str, channel: str = "email", *, min_position: int | None = None
    ) -> CheckResult | None:
        """The answer, or None: then check on a `SendChecker`."""
        started = time.monotonic()
        pair = self._freshness.cached() or await self._read_freshness()
        if pair is None:
            return None
        covered = covered_if_fresh(self._freshness, self.config, pair, min_position=min_position)
        if covered is None:
            return None
        params = {"subject": subject, "purpose": purpose, "channel": channel}
        row = await self._fetch(self._facts_query, params)
        if row is None:
            return None
        decision = decide(facts_from_row(row), purpose=purpose, channel=channel, at=self._clock())
        single_check_answered(started, decision)
        return CheckResult(decision=decision, covered=covered)

    async def _read_freshness(self) -> tuple[int, int] | None:
        """Read the head, then the covered position, once for all who ask meanwhile.

        The pair serves every check that waited for it, even once older than `Freshness.ttl_s`
        by the time they resume: it is no older than the read, and the time bound of a check is
        judged from when its read started (`Freshness.head_since`). None after ``wait_s``.
        """
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_both())
            self._reading.add_done_callback(self._read_done)
        try:
            return await asyncio.wait_for(asyncio.shield(self._reading), self.config.wait_s)
        except TimeoutError:
            return None

    def _read_done(self, _: "asyncio.Future[tuple[int, int] | None]") -> None:
        self._reading = None

    async def _read_both(self) -> tuple[int, int] | None:
        started = time.monotonic()
        try:
            head = await asyncio.to_thread(self._head)
        except Exception:  # noqa: BLE001 - the worker-thread check reads again and reports it
            return None
        row = await self._fetch(self._covered_query, (self.config.group, self.config.topic))
        if row is None:
            return None
        self._freshness.store(head, int(row[0]), read_at=started)
        return head, int(row[0])

    async def _fetch(self, query: bytes, params: Any) -> tuple[Any, ...] | None:
        """The first row of ``query`` on an idle connection; None if none or it broke."""
        conn = await self._take()
        if conn is None:
            return None
        try:
            cursor = await conn.execute(query, params)
            row = await cursor.fetchone()
        except BaseException as error:
            # Broken, or left mid-query (a cancelled request): not reused.
            self._made -= 1
            conn.pgconn.finish()
            if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                return None
            raise
        self._idle.append(conn)
        return row

    async def _take(self) -> psycopg.AsyncConnection[Any] | None:
        """An idle connection, a new one while fewer than ``size`` exist, else one freed within
        ``wait_s`` (a thread would wait for the same database)."""
        deadline = time.monotonic() + self.config.wait_s
        while not self._idle and self._made >= self._size:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(LOOP_POLL_S)
        if self._idle:
            return self._idle.pop()
        self._made += 1
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        except psycopg.OperationalError:
            self._made -= 1
            return None

    def close(self) -> None:
        """Close the idle connections (those lent finish with their checks)."""
        while self._idle:
            self._idle.pop().pgconn.finish()
