"""The event store in one SQLite file (embedded mode): the library's recorder and our queries."""

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.domain.errors import StoreUnavailableError
from ledger.store.base import STREAM_BATCH, EventQueries, EventRow, StoreConfig, StoredRow

__all__ = ["SQLITE_LOCK_TIMEOUT_S", "SQLiteEventQueries", "SQLiteStoreConfig", "sqlite_probe"]

SQLITE_LOCK_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 2

# SQL text below is formatted only with the library's table name and "?" placeholders; every
# value is bound as a parameter. The position of a row is its rowid, the aggregate id hex text.


@dataclass(frozen=True, slots=True)
class SQLiteStoreConfig(StoreConfig):
    path: Path

    def environment(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.path),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
        }

    def creating(self) -> AbstractContextManager[None]:
        # One file, one process creating its tables: SQLite's own lock is enough.
        return nullcontext()

    def queries(self, recorder: Any) -> EventQueries:
        return SQLiteEventQueries(recorder)


class SQLiteEventQueries(EventQueries):
    """Our queries on the library's SQLite event table."""

    def __init__(self, recorder: SQLiteApplicationRecorder) -> None:
        self._recorder = recorder
        self._table = recorder.events_table_name

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0

    def rows_of(self, subject_ids: Sequence[UUID]) -> list[StoredRow]:
        marks = ",".join("?" * len(subject_ids))
        query = (
            "SELECT originator_id, originator_version, topic, state "  # noqa: S608 - see above
            f"FROM {self._table} WHERE originator_id IN ({marks}) "
            "ORDER BY originator_id, originator_version"
        )
        with self._recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, [subject_id.hex for subject_id in subject_ids])
            return [tuple(row) for row in cursor.fetchall()]

    def stream_rows(self, *, after: int | None) -> Iterator[EventRow]:
        # With no ``after``, the first page starts at the lowest rowid, wherever it is (zero
        # and negative rowids, which the library never gives, included).
        columns = "SELECT rowid, originator_id, originator_version, topic, state "
        first = f"{columns}FROM {self._table} ORDER BY rowid LIMIT ?"
        following = f"{columns}FROM {self._table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        while True:
            with self._recorder.datastore.transaction(commit=False) as cursor:
                if after is None:
                    cursor.execute(first, (STREAM_BATCH,))
                else:
                    cursor.execute(following, (after, STREAM_BATCH))
                rows = cursor.fetchall()
            if not rows:
                return
            for position, originator_id, version, topic, state in rows:
                yield position, UUID(originator_id), version, topic, bytes(state)
            after = rows[-1][0]

    def positions_of(self, subject_id: UUID) -> dict[int, int]:
        query = (
            "SELECT originator_version, rowid FROM "  # noqa: S608 - see above
            f"{self._table} WHERE originator_id = ?"
        )
        with self._recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, (subject_id.hex,))
            return {int(row[0]): int(row[1]) for row in cursor.fetchall()}

    def positions_of_many(self, subject_ids: Sequence[UUID]) -> dict[tuple[UUID, int], int]:
        marks = ",".join("?" * len(subject_ids))
        query = (
            "SELECT originator_id, originator_version, rowid "  # noqa: S608 - see above
            f"FROM {self._table} WHERE originator_id IN ({marks})"
        )
        with self._recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, [subject_id.hex for subject_id in subject_ids])
            return {(UUID(row[0]), int(row[1])): int(row[2]) for row in cursor.fetchall()}

    def heal(self) -> None:
        """Nothing to drop: the library's SQLite connections do not outlive a failure."""


def sqlite_probe(path: Path) -> Callable[[], None]:
    """A health probe of the file: `StoreUnavailableError` (from sqlite3's) when it fails."""

    def probe() -> None:
        try:
            with closing(sqlite3.connect(path, timeout=PROBE_TIMEOUT_S)) as connection:
                connection.execute("select 1").fetchone()
        except sqlite3.Error as error:
            msg = "the SQLite file does not answer"
            raise StoreUnavailableError(msg) from error

    return probe
