"""The event store: the eventsourcing library on PostgreSQL (psycopg) or on one SQLite file.

Each stored event row holds, besides the library's ``originator_id`` and ``originator_version``:

- ``topic``: ``"<event_type>/v<schema_version>"``, e.g. ``"ConsentGranted/v2"``;
- ``state``: the envelope as compact UTF-8 JSON with sorted keys (personal fields sealed), i.e.
  exactly what ``schemas.event_to_json`` writes and ``schemas.parse_event`` reads.

The store's notification id is the ledger position: its one total order.
"""

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    Notification,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row

from ledger.domain.aggregates import LedgerAggregate, LedgerEvent
from ledger.store.pgddl import ddl_lock
from schemas import EventBase, event_to_json, parse_event

# SQL text below is formatted only with our own table names and "?" placeholders; every value
# is bound as a parameter.

STORE_NAME = "Ledger"
"""The eventsourcing application name: PostgreSQL tables are ``ledger_events`` etc."""

SQLITE_LOCK_TIMEOUT_S = 10
STREAM_BATCH = 20_000

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)
"""What a database that does not answer raises: a restart (``AdminShutdown``), a refused or lost
connection, a pool that found no connection in time. Our own connections raise psycopg's
classes, the event store the library's, which wrap them (on SQLite, sqlite3's: chiefly a file
still locked after the timeout). Worth waiting out, unlike an error in a statement or in the
data (a ``ProgrammingError``, an ``IntegrityError``).
"""


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


def topic_of(envelope: EventBase) -> str:
    return f"{envelope.event_type}/v{envelope.schema_version}"


class EnvelopeMapper(Mapper[UUID]):
    """Stores the envelope's canonical JSON as the state, so the row is readable without us."""

    def __init__(self) -> None:
        super().__init__(transcoder=JSONTranscoder())

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not isinstance(domain_event, LedgerEvent):
            msg = f"the ledger stores LedgerEvent, not {type(domain_event).__name__}"
            raise TypeError(msg)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic_of(domain_event.envelope),
            state=event_to_json(domain_event.envelope),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> LedgerEvent:
        return self.to_ledger_event(stored_event)

    def to_ledger_event(self, stored_event: StoredEvent) -> LedgerEvent:
        originator_id = stored_event.originator_id
        return LedgerEvent(
            originator_id=originator_id if isinstance(originator_id, UUID) else UUID(originator_id),
            originator_version=stored_event.originator_version,
            envelope=parse_event(stored_event.state),
        )


@dataclass(frozen=True, slots=True)
class SQLiteStoreConfig:
    path: Path


@dataclass(frozen=True, slots=True)
class PostgresStoreConfig:
    dsn: str
    pool_size: int = 10
    schema: str = "public"


StoreConfig = SQLiteStoreConfig | PostgresStoreConfig


def _environment(config: StoreConfig) -> dict[str, str]:
    if isinstance(config, SQLiteStoreConfig):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(config.path),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
        }
    params = conninfo_to_dict(config.dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": str(config.pool_size),
        "POSTGRES_SCHEMA": config.schema,
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:LedgerPostgresRecorder",
        # The library's insert function skips the table lock that keeps the notification log
        # gap-free for readers under concurrent writers (DESIGN.md section 6): keep it off.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        # A call waits at most this long for a pooled connection (the library's default is
        # 30 s): while the server is down, callers hear so within seconds.
        "POSTGRES_CONNECT_TIMEOUT": "5",
        # No check before each loan: after a server restart, psycopg_pool's check-and-retry of
        # its ten dead connections took 46 s (measured) before lending a good one. Callers that
        # meet a dead connection call `LedgerStore.heal` instead, which drops them all at once.
    }


class LedgerStore(Application[UUID]):
    """The eventsourcing application that holds every event of the ledger."""

    name = STORE_NAME

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        if isinstance(config, PostgresStoreConfig):
            # The library creates its tables here; processes starting together take turns.
            with ddl_lock(config.dsn):
                super().__init__(env=_environment(config))
        else:
            super().__init__(env=_environment(config))

    def heal(self) -> None:
        """After a database error: drop the pool's broken connections (a server restart ended
        them) and have new ones made, so the next call does not meet them one by one."""
        if isinstance(self.config, PostgresStoreConfig):
            self.recorder.datastore.pool.check()  # type: ignore[attr-defined]

    def construct_mapper(self) -> Mapper[UUID]:
        self._envelope_mapper = EnvelopeMapper()
        return self._envelope_mapper

    def load(self, subject_id: UUID) -> LedgerAggregate | None:
        try:
            aggregate: LedgerAggregate = self.repository.get(subject_id)
        except AggregateNotFoundError:
            return None
        return aggregate

    def load_many(self, subject_ids: Sequence[UUID]) -> dict[UUID, LedgerAggregate]:
        """Rebuild many aggregates with one query; absent ones are simply missing."""
        if not subject_ids:
            return {}
        recorder = self.recorder
        rows: list[tuple[Any, int, str, bytes]]
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = sql.SQL(
                "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
                "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema),
                table=sql.Identifier(recorder.events_table_name),
            )
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(statement, (list(subject_ids),))
                rows = [
                    (r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                    for r in cursor.fetchall()
                ]
        elif isinstance(recorder, SQLiteApplicationRecorder):
            marks = ",".join("?" * len(subject_ids))
            query = (
                "SELECT originator_id, originator_version, topic, state "  # noqa: S608 - see below
                f"FROM {recorder.events_table_name} WHERE originator_id IN ({marks}) "
                "ORDER BY originator_id, originator_version"
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(query, [subject_id.hex for subject_id in subject_ids])
                rows = [tuple(row) for row in cursor.fetchall()]
        else:
            msg = f"unsupported recorder {type(recorder).__name__}"
            raise TypeError(msg)
        aggregates: dict[UUID, LedgerAggregate] = {}
        for originator_id, version, topic, state in rows:
            event = self._envelope_mapper.to_ledger_event(
                StoredEvent(originator_id, version, topic, state)
            )
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        return aggregates

    def append(self, aggregates: Sequence[LedgerAggregate]) -> dict[tuple[UUID, int], int]:
        """Store every pending event of these aggregates in one transaction.

        Returns the ledger position of each (aggregate id, version) stored. The library's
        `EventStore.put` would also build a recording and a notification per event, which no
        caller reads.
        """
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        stored = [self._envelope_mapper.to_stored_event(event) for event in events]
        positions = self.recorder.insert_events(stored) or ()
        return {
            (event.originator_id, event.originator_version): position
            for event, position in zip(events, positions, strict=True)
        }

    def head(self) -> int:
        """The position of the newest stored event (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def notifications(self, *, after: int, limit: int) -> list[Notification]:
        return list(
            self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        )

    def stream_rows(
        self, *, after: int = 0
    ) -> Generator[tuple[int, UUID, int, str, bytes], None, None]:
        """(position, originator id, version, topic, state) of every event after ``after``.

        One server-side cursor rather than pages of library objects: this is what reading a
        million events for `audit verify` costs.
        """
        recorder = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {schema}.{table} WHERE notification_id > %s ORDER BY notification_id"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema),
                table=sql.Identifier(recorder.events_table_name),
            )
            with (
                recorder.datastore.get_connection() as conn,
                conn.transaction(),
                conn.cursor(name="ledger_stream", row_factory=tuple_row, binary=True) as cursor,
            ):
                cursor.itersize = STREAM_BATCH
                cursor.execute(statement, (after,))
                for position, originator_id, version, topic, state in cursor:
                    yield position, originator_id, version, topic, bytes(state)
            return
        if isinstance(recorder, SQLiteApplicationRecorder):
            query = (
                "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                f"FROM {recorder.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            )
            while True:
                with recorder.datastore.transaction(commit=False) as cursor:
                    cursor.execute(query, (after, STREAM_BATCH))
                    rows = cursor.fetchall()
                if not rows:
                    return
                for position, originator_id, version, topic, state in rows:
                    yield position, UUID(originator_id), version, topic, bytes(state)
                after = rows[-1][0]
        msg = f"unsupported recorder {type(recorder).__name__}"
        raise TypeError(msg)

    @staticmethod
    def originator_uuid(originator_id: UUID | str) -> UUID:
        """The aggregate id of a stored row (SQLite keeps it as hex text)."""
        return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)

    def positions_of(self, subject_id: UUID) -> dict[int, int]:
        """The ledger position of each version of one aggregate."""
        recorder = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = sql.SQL(
                "SELECT originator_version, notification_id FROM {schema}.{table} "
                "WHERE originator_id = %s"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema),
                table=sql.Identifier(recorder.events_table_name),
            )
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(statement, (subject_id,))
                rows: list[Any] = cursor.fetchall()
            return {int(r["originator_version"]): int(r["notification_id"]) for r in rows}
        if isinstance(recorder, SQLiteApplicationRecorder):
            query = (
                "SELECT originator_version, rowid FROM "  # noqa: S608 - our table name
                f"{recorder.events_table_name} WHERE originator_id = ?"
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(query, (subject_id.hex,))
                return {int(row[0]): int(row[1]) for row in cursor.fetchall()}
        msg = f"unsupported recorder {type(recorder).__name__}"
        raise TypeError(msg)

    def positions_of_many(self, subject_ids: Sequence[UUID]) -> dict[tuple[UUID, int], int]:
        """The ledger position of each (aggregate id, version) of these aggregates, in one query."""
        recorder = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = sql.SQL(
                "SELECT originator_id, originator_version, notification_id FROM {schema}.{table} "
                "WHERE originator_id = ANY(%s)"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema),
                table=sql.Identifier(recorder.events_table_name),
            )
            with (
                recorder.datastore.get_connection() as conn,
                conn.cursor(row_factory=tuple_row) as cursor,
            ):
                cursor.execute(statement, (list(subject_ids),))
                return {(row[0], int(row[1])): int(row[2]) for row in cursor.fetchall()}
        if isinstance(recorder, SQLiteApplicationRecorder):
            marks = ",".join("?" * len(subject_ids))
            query = (
                "SELECT originator_id, originator_version, rowid "  # noqa: S608 - our table name
                f"FROM {recorder.events_table_name} WHERE originator_id IN ({marks})"
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(query, [subject_id.hex for subject_id in subject_ids])
                return {(UUID(row[0]), int(row[1])): int(row[2]) for row in cursor.fetchall()}
        msg = f"unsupported recorder {type(recorder).__name__}"
        raise TypeError(msg)


__all__ = [
    "STORE_UNAVAILABLE",
    "EnvelopeMapper",
    "LedgerStore",
    "PostgresStoreConfig",
    "SQLiteStoreConfig",
    "StoreConfig",
    "topic_of",
]
