"""The event store: the eventsourcing library on PostgreSQL (psycopg) or on one SQLite file.

Each stored event row holds, besides the library's ``originator_id`` and ``originator_version``:

- ``topic``: ``"<event_type>/v<schema_version>"``, e.g. ``"ConsentGranted/v2"``;
- ``state``: the envelope as compact UTF-8 JSON with sorted keys (personal fields sealed), i.e.
  exactly what ``schemas.event_to_json`` writes and ``schemas.parse_event`` reads.

The store's notification id is the ledger position: its one total order. What differs between
the databases lives in the adapters beside this module (``postgres.py``, ``sqlite.py``); the
bootstrap chooses one by the configuration it builds.
"""

from collections.abc import Generator, Sequence
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    Notification,
    StoredEvent,
)

from ledger.domain.aggregates import LedgerAggregate, LedgerEvent
from ledger.store.base import EventRow, StoreConfig
from ledger.store.postgres import PostgresStoreConfig
from ledger.store.sqlite import SQLiteStoreConfig
from schemas import EventBase, event_to_json, parse_event

STORE_NAME = "Ledger"
"""The eventsourcing application name: PostgreSQL tables are ``ledger_events`` etc."""

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


class LedgerStore(Application[UUID]):
    """The eventsourcing application that holds every event of the ledger."""

    name = STORE_NAME

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        # The library creates its tables here; processes starting together take turns.
        with config.creating():
            super().__init__(env=config.environment())
        self._queries = config.queries(self.recorder)

    def heal(self) -> None:
        """After a database error: let the next call find working connections (a server
        restart ended the pooled ones)."""
        self._queries.heal()

    def construct_mapper(self) -> Mapper[UUID]:
        self._envelope_mapper = EnvelopeMapper()
        return self._envelope_mapper

    def load(self, subject_id: UUID) -> LedgerAggregate | None:
        # Through our queries, not the library's repository: theirs are bounded in time.
        return self.load_many([subject_id]).get(subject_id)

    def load_many(self, subject_ids: Sequence[UUID]) -> dict[UUID, LedgerAggregate]:
        """Rebuild many aggregates with one query; absent ones are simply missing."""
        if not subject_ids:
            return {}
        aggregates: dict[UUID, LedgerAggregate] = {}
        for event in self._events(subject_ids):
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        return aggregates

    def events_of(self, subject_id: UUID) -> list[LedgerEvent]:
        """Every stored event of one aggregate, in version order."""
        return self._events([subject_id])

    def stored_events_of(self, subject_id: UUID) -> list[StoredEvent]:
        """Every stored row of one aggregate, in version order, as the library reads it."""
        return [StoredEvent(*row) for row in self._queries.rows_of([subject_id])]

    def _events(self, subject_ids: Sequence[UUID]) -> list[LedgerEvent]:
        return [
            self._envelope_mapper.to_ledger_event(StoredEvent(*row))
            for row in self._queries.rows_of(subject_ids)
        ]

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
        """The position of the newest stored event (0 when empty), or the store's error once
        the adapter's wait is spent: checks fail closed within their bound."""
        return self._queries.head()

    def notifications(self, *, after: int, limit: int) -> list[Notification]:
        return list(
            self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        )

    def stream_rows(self, *, after: int | None = None) -> Generator[EventRow, None, None]:
        """(position, originator id, version, topic, state) of every event after ``after``;
        without it, of every row of the table, whatever its position (what `audit verify`
        must account for: a row inserted at position 0 or below included).

        One server-side cursor rather than pages of library objects: this is what reading a
        million events for `audit verify` costs.
        """
        yield from self._queries.stream_rows(after=after)

    def sql_location(self) -> tuple[str, str] | None:
        """(schema, table) of the event rows when they are in PostgreSQL (None on SQLite)."""
        return self._queries.sql_location()

    @staticmethod
    def originator_uuid(originator_id: UUID | str) -> UUID:
        """The aggregate id of a stored row (SQLite keeps it as hex text)."""
        return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)

    def positions_of(self, subject_id: UUID) -> dict[int, int]:
        """The ledger position of each version of one aggregate."""
        return self._queries.positions_of(subject_id)

    def positions_of_many(self, subject_ids: Sequence[UUID]) -> dict[tuple[UUID, int], int]:
        """The ledger position of each (aggregate id, version) of these aggregates, in one query."""
        return self._queries.positions_of_many(subject_ids)


__all__ = [
    "STORE_UNAVAILABLE",
    "EnvelopeMapper",
    "LedgerStore",
    "PostgresStoreConfig",
    "SQLiteStoreConfig",
    "StoreConfig",
    "topic_of",
]
