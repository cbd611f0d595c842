"""The embedded feed: the same projection, in the ledger's SQLite file, fed from the store itself.

In embedded mode there is no Kafka: the feed polls the store's notification log after its
position and applies each batch to the `SQLiteProjectionStore`, writing the rows and its new
position in one SQLite transaction. Being fed in ledger order from the store, the projection
covers exactly its position, which is what the checker waits for.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ledger.domain.rules import Facts
from projections.checker import Checker, CheckerConfig
from projections.errors import ProjectionLockedError
from projections.metrics import observe_unsubscribes
from projections.store.base import LOG_PARTITION, Tracking
from projections.store.sqlite import SQLiteProjectionStore
from schemas import EventBase, parse_event

logger = logging.getLogger(__name__)

FEED = Tracking("embedded")
FEED_BATCH = 2_000


class StoredRow(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def state(self) -> bytes: ...


class EventSource(Protocol):
    """The store's notification log, as the feed reads it (a `ledger.store.events.LedgerStore`)."""

    def notifications(self, *, after: int, limit: int) -> Sequence[StoredRow]: ...

    def head(self) -> int: ...


def _events(rows: Sequence[StoredRow]) -> list[tuple[EventBase, int]]:
    return [(parse_event(row.state), row.id) for row in rows]


class EmbeddedProjection:
    """The projection tables in the embedded SQLite file, and the feed that fills them."""

    def __init__(self, *, path: Path) -> None:
        self.store = SQLiteProjectionStore(path)
        self.store.migrate()

    def position(self) -> int:
        return self.store.offsets(FEED).get(LOG_PARTITION, 0)

    def feed_once(self, store: EventSource, *, limit: int = FEED_BATCH) -> int:
        """Apply the next events of the store; returns how many."""
        rows = store.notifications(after=self.position(), limit=limit)
        if not rows:
            return 0
        events = _events(rows)
        with self.store.transaction():
            self.store.apply(events)
            self.store.save_offsets(FEED, {LOG_PARTITION: rows[-1].id})
        observe_unsubscribes(event for event, _ in events)
        return len(rows)

    def follow(self, store: EventSource, stop: threading.Event, *, poll_s: float = 0.05) -> None:
        """Feed until ``stop``; a rebuild holding the file's write lock only delays it."""
        while not stop.is_set():
            try:
                fed = self.feed_once(store)
            except ProjectionLockedError:
                logger.info("embedded feed: the projection is locked (rebuild?), waiting")
                fed = 0
            if not fed:
                stop.wait(poll_s)

    def rebuild(self, store: EventSource, *, progress: Callable[[int], None] | None = None) -> int:
        """Re-apply every stored event to emptied tables, in one transaction; returns the count.

        Readers keep seeing the old rows until the commit, then the rebuilt ones. The feed
        waits meanwhile and resumes after the rebuild.
        """
        return self.store.replace_all(_log(store, up_to=store.head()), FEED, progress=progress)

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return self.store.facts(subject, purpose, channel)

    def close(self) -> None:
        self.store.close()


def _log(store: EventSource, *, up_to: int) -> Iterator[list[tuple[EventBase, int]]]:
    """The stored events up to ``up_to``, in ledger order, in batches."""
    after = 0
    while after < up_to:
        rows = [
            row for row in store.notifications(after=after, limit=FEED_BATCH) if row.id <= up_to
        ]
        if not rows:
            return
        after = rows[-1].id
        yield _events(rows)


class EmbeddedChecker(Checker):
    """Checks in embedded mode: the projection covers exactly what the feed applied."""

    def __init__(
        self, projection: EmbeddedProjection, *, store: EventSource, **kwargs: Any
    ) -> None:
        super().__init__(head=store.head, config=kwargs.pop("config", CheckerConfig()), **kwargs)
        self._projection = projection

    def covered(self) -> int:
        return self._projection.position()

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return self._projection.facts(subject, purpose, channel)
