"""What an event store adapter provides: the library's settings and the queries it lacks.

The eventsourcing library hides each database behind its recorder; the few queries the ledger
runs besides the library's (rebuilding many people at once, streaming the log, positions of
versions) are written once per database, in the adapter modules beside this one.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

__all__ = ["STREAM_BATCH", "EventQueries", "EventRow", "StoreConfig", "StoredRow"]

STREAM_BATCH = 20_000
"""Rows read from the server per round trip while streaming the log."""

StoredRow = tuple[Any, int, str, bytes]
"""(originator id as the database returns it, version, topic, state)."""
EventRow = tuple[int, UUID, int, str, bytes]
"""(position, originator id, version, topic, state)."""


class EventQueries(ABC):
    """The ledger's own queries on one recorder's tables: every read of the ledger goes through
    them, each bounded in time by its adapter (a down database fails it, it does not hold it)."""

    @abstractmethod
    def rows_of(self, subject_ids: Sequence[UUID]) -> list[StoredRow]:
        """Every stored event of these aggregates, by aggregate then version."""

    def sql_location(self) -> tuple[str, str] | None:
        """(schema, table) of the rows in PostgreSQL, for an adapter on the same database to
        join with them where they are; None for a database without that (SQLite)."""
        return None

    @abstractmethod
    def stream_rows(self, *, after: int | None) -> Iterator[EventRow]:
        """Every stored event after position ``after`` (every row when None), in ledger order."""

    @abstractmethod
    def positions_of(self, subject_id: UUID) -> dict[int, int]:
        """The ledger position of each version of one aggregate."""

    @abstractmethod
    def positions_of_many(self, subject_ids: Sequence[UUID]) -> dict[tuple[UUID, int], int]:
        """The ledger position of each (aggregate id, version) of these aggregates."""

    @abstractmethod
    def head(self) -> int:
        """The newest position (0 when empty)."""

    @abstractmethod
    def heal(self) -> None:
        """After a database error: let the next call find working connections."""


class StoreConfig(ABC):
    """Where the events live; the adapter of that database, chosen by the bootstrap."""

    __slots__ = ()

    @abstractmethod
    def environment(self) -> dict[str, str]:
        """The eventsourcing library's settings for this database."""

    @abstractmethod
    def creating(self) -> AbstractContextManager[None]:
        """Held while the library creates its tables (processes starting together take turns)."""

    @abstractmethod
    def queries(self, recorder: Any) -> EventQueries:
        """The ledger's own queries on the tables of ``recorder``, the library's recorder."""
