"""The event store on PostgreSQL: the library's recorder with a faster insert, and our queries."""

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row

from ledger.domain.errors import StoreUnavailableError
from ledger.store.base import STREAM_BATCH, EventQueries, EventRow, StoreConfig, StoredRow
from ledger.store.pgddl import ddl_lock

__all__ = [
    "HEALTH_APPLICATION_NAME",
    "LedgerPostgresRecorder",
    "PostgresEventQueries",
    "PostgresStoreConfig",
    "postgres_probe",
]

PROBE_CONNECT_TIMEOUT_S = 2
READ_WAIT_S = 5.0
"""How long a read waits for the database by default (the bootstrap passes CONSENT_CHECK_WAIT_S)."""
READ_RETRY_PAUSE_S = 0.05
HEALTH_APPLICATION_NAME = "consent-ledger-health"
"""How the health probe's connection shows in pg_stat_activity."""


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, inserting a batch as four plain arrays.

    The library sends a batch as an array of a composite type, whose text encoding escapes every
    byte of every state; plain typed arrays go in binary. The table lock, the NOTIFY and the
    returned notification ids (in insertion order) are as the library does them.
    """

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_events_statement = sql.SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=sql.Identifier(self.datastore.schema),
            table=sql.Identifier(self.events_table_name),
        )

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )


@dataclass(frozen=True, slots=True)
class PostgresStoreConfig(StoreConfig):
    dsn: str
    pool_size: int = 10
    schema: str = "public"
    read_wait_s: float = READ_WAIT_S
    """How long a read waits for the database, retries included, before the store's error."""

    def environment(self) -> dict[str, str]:
        params = conninfo_to_dict(self.dsn)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
            "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
            "POSTGRES_PORT": str(params.get("port", "5432")),
            "POSTGRES_USER": str(params.get("user", "postgres")),
            "POSTGRES_PASSWORD": str(params.get("password", "")),
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_SCHEMA": self.schema,
            "APPLICATION_RECORDER_TOPIC": f"{__name__}:LedgerPostgresRecorder",
            # The library's insert function skips the table lock that keeps the notification
            # log gap-free for readers under concurrent writers (DESIGN.md section 6): keep it
            # off.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            # A call of the library waits at most this long for a pooled connection (its default
            # is 30 s): while the server is down, callers hear so within the read wait.
            "POSTGRES_CONNECT_TIMEOUT": str(max(1, math.ceil(self.read_wait_s))),
            # No check before each loan: after a server restart, psycopg_pool's check-and-retry
            # of its ten dead connections took 46 s (measured) before lending a good one.
            # Callers that meet a dead connection call `LedgerStore.heal` instead, which drops
            # them all at once.
        }

    def creating(self) -> AbstractContextManager[None]:
        return ddl_lock(self.dsn)

    def queries(self, recorder: Any) -> EventQueries:
        return PostgresEventQueries(recorder, wait_s=self.read_wait_s)


class PostgresEventQueries(EventQueries):
    """Our queries on the library's PostgreSQL event table, each bounded in time.

    The library's reads wait for a pooled connection ``POSTGRES_CONNECT_TIMEOUT`` at a time and
    try ten times: a read held 37 to 52 s while the server was down (measured). Ours wait for a
    connection only what is left of ``wait_s``, and try again (a connection the server ended)
    only within it: a read that loses the database, before or mid-way, fails closed in time.
    """

    def __init__(self, recorder: PostgresApplicationRecorder, *, wait_s: float) -> None:
        self._recorder = recorder
        self._table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        self._wait_s = wait_s

    @contextmanager
    def _connection(self, deadline: float) -> Iterator[psycopg.Connection[Any]]:
        pool = self._recorder.datastore.pool
        with pool.connection(timeout=max(deadline - time.monotonic(), 0.001)) as conn:
            yield conn

    def _read(self, statement: sql.Composed, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of ``statement`` (tuples), tried again on a lost connection until the wait
        is spent, then the psycopg error (an ``OperationalError``: a pool timeout included)."""
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                with (
                    self._connection(deadline) as conn,
                    conn.cursor(row_factory=tuple_row) as cursor,
                ):
                    cursor.execute(statement, params)
                    return cursor.fetchall()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                if time.monotonic() + READ_RETRY_PAUSE_S >= deadline:
                    raise
                time.sleep(READ_RETRY_PAUSE_S)

    def rows_of(self, subject_ids: Sequence[UUID]) -> list[StoredRow]:
        statement = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(table=self._table)
        rows = self._read(statement, (list(subject_ids),))
        return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def sql_location(self) -> tuple[str, str]:
        return self._recorder.datastore.schema, self._recorder.events_table_name

    def stream_rows(self, *, after: int | None) -> Iterator[EventRow]:
        # One server-side cursor rather than pages of library objects. With no ``after``, the
        # rows at positions the sequence never gives (zero, negative) are read too.
        after_clause = sql.SQL("") if after is None else sql.SQL("WHERE notification_id > %s ")
        statement = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {table} {after} ORDER BY notification_id"
        ).format(table=self._table, after=after_clause)
        # Only the wait for a connection is bounded: a stream is not tried again mid-way.
        with (
            self._connection(time.monotonic() + self._wait_s) as conn,
            conn.transaction(),
            conn.cursor(name="ledger_stream", row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.itersize = STREAM_BATCH
            cursor.execute(statement, () if after is None else (after,))
            for position, originator_id, version, topic, state in cursor:
                yield position, originator_id, version, topic, bytes(state)

    def positions_of(self, subject_id: UUID) -> dict[int, int]:
        statement = sql.SQL(
            "SELECT originator_version, notification_id FROM {table} WHERE originator_id = %s"
        ).format(table=self._table)
        return {int(r[0]): int(r[1]) for r in self._read(statement, (subject_id,))}

    def positions_of_many(self, subject_ids: Sequence[UUID]) -> dict[tuple[UUID, int], int]:
        statement = sql.SQL(
            "SELECT originator_id, originator_version, notification_id FROM {table} "
            "WHERE originator_id = ANY(%s)"
        ).format(table=self._table)
        rows = self._read(statement, (list(subject_ids),))
        return {(row[0], int(row[1])): int(row[2]) for row in rows}

    def head(self) -> int:
        statement = sql.SQL("SELECT max(notification_id) FROM {table}").format(table=self._table)
        rows = self._read(statement)
        return int(rows[0][0] or 0) if rows else 0

    def heal(self) -> None:
        # A server restart ended the pool's connections: drop them all at once and have new
        # ones made, so the next call does not meet them one by one.
        self._recorder.datastore.pool.check()


def postgres_probe(
    dsn: str, *, application_name: str = HEALTH_APPLICATION_NAME
) -> Callable[[], None]:
    """A health probe asking the server through one kept connection, opened again when it broke;
    `StoreUnavailableError` (from psycopg's) when it fails.

    A connection per probe made ``/healthz`` cost a PostgreSQL backend start, which a
    monitoring system polling often, or a load balancer, turns into real load.
    """
    held: list[psycopg.Connection[Any]] = []
    lock = threading.Lock()

    def ask() -> None:
        with lock:
            if held and not held[0].closed:
                try:
                    held[0].execute("select 1").fetchone()
                    return
                except psycopg.Error:
                    held[0].close()
            held.clear()
            held.append(
                psycopg.connect(
                    dsn,
                    connect_timeout=PROBE_CONNECT_TIMEOUT_S,
                    autocommit=True,
                    application_name=application_name,
                )
            )
            held[0].execute("select 1").fetchone()

    def probe() -> None:
        try:
            ask()
        except psycopg.Error as error:
            msg = "PostgreSQL does not answer"
            raise StoreUnavailableError(msg) from error

    return probe
