"""`audit verify`'s walk on PostgreSQL: events and leaves read side by side, two cores at work.

PostgreSQL builds each leaf's input where the row is (0x00, the entry header of
ledger/audit/tlog/entry.py, the stored state); Python only hashes it. The events are fetched
by a thread on a second connection, in the same snapshot as the leaves (exported by one
transaction, imported by the other), so that the server prepares the next batch while this
process hashes the last one. PostgreSQL's own sha256() was measured slower per row than
hashlib here, so the hashing stays in Python.
"""

import hashlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.audit.store.base import SealedPair
from ledger.audit.tlog.entry import ENTRY_FORMAT
from ledger.store.base import STREAM_BATCH

__all__ = ["postgres_sealed_pairs"]

# A uuid's text is lowercase and hyphenated, as Python's str(UUID).
_LEAF_INPUTS = """
select notification_id,
    '\\x00'::bytea || convert_to(concat_ws(E'\\n', {format}::text, notification_id,
        originator_id, originator_version, topic) || E'\\n', 'UTF8') || state
from {events} order by notification_id
"""
_LEAVES = "select idx, position, hash from {leaves} order by idx"
_AHEAD = 2
"""Batches of events fetched ahead of the hashing."""
_PUT_WAIT_S = 0.5


def postgres_sealed_pairs(
    dsn: str, events: sql.Composable, leaves: sql.Composable
) -> Iterator[SealedPair]:
    """`TreeStore.sealed_pairs` for events and leaves in one PostgreSQL database."""
    inputs = sql.SQL(_LEAF_INPUTS).format(format=sql.Literal(ENTRY_FORMAT.decode()), events=events)
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        ((snapshot,),) = conn.execute("select pg_export_snapshot()").fetchall()
        fetched = _Fetcher(dsn, str(snapshot), inputs)
        try:
            with conn.cursor(name="audit_leaves", row_factory=tuple_row, binary=True) as cursor:
                cursor.itersize = STREAM_BATCH
                cursor.execute(sql.SQL(_LEAVES).format(leaves=leaves))
                yield from _paired(fetched.rows(), iter(cursor))
        finally:
            fetched.stop()


def _paired(
    events: Iterator[tuple[int, bytes]], leaves: Iterator[tuple[int, int, bytes]]
) -> Iterator[SealedPair]:
    sha256 = hashlib.sha256
    for position, leaf_input in events:
        leaf = next(leaves, None)
        if leaf is None:
            yield position, None, None, False, None
            continue
        digest = sha256(leaf_input).digest()
        yield position, leaf[0], leaf[1], digest == leaf[2], digest
    for index, leaf_position, _ in leaves:
        yield None, index, leaf_position, False, None


class _Fetcher:
    """Reads the events' leaf inputs in batches on a thread and a connection of its own."""

    def __init__(self, dsn: str, snapshot: str, query: sql.Composed) -> None:
        self._batches: queue.Queue[list[Any] | BaseException | None] = queue.Queue(_AHEAD)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(dsn, snapshot, query), name="audit-verify-fetch", daemon=True
        )
        self._thread.start()

    def rows(self) -> Iterator[tuple[int, bytes]]:
        while (batch := self._batches.get()) is not None:
            if isinstance(batch, BaseException):
                raise batch
            yield from batch

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self, dsn: str, snapshot: str, query: sql.Composed) -> None:
        try:
            with psycopg.connect(dsn) as conn, conn.transaction():
                conn.execute("set transaction isolation level repeatable read")
                conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot)))
                with conn.cursor(name="audit_events", row_factory=tuple_row, binary=True) as cur:
                    cur.execute(query)
                    while batch := cur.fetchmany(STREAM_BATCH):
                        if not self._put(batch):
                            return
            self._put(None)
        except BaseException as error:  # noqa: BLE001 - handed to the reader, which raises it
            self._put(error)

    def _put(self, item: list[Any] | BaseException | None) -> bool:
        while not self._stopping.is_set():
            try:
                self._batches.put(item, timeout=_PUT_WAIT_S)
            except queue.Full:
                continue
            return True
        return False
