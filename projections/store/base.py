"""The projection store's interface: the tables checks read, fed in batches with their offsets.

Both adapters (`projections.store.postgres`, `projections.store.sqlite`) apply the same writes
(`projections.store.writes`): every row keeps the position of the event that last wrote it and
an event applies only if newer, so a duplicated or replayed batch changes nothing. A feed writes
a batch's rows and its new offsets in one `ProjectionStore.transaction`. The reads made outside
a feed (`open_requests`, `request_subject`, `counts`) raise `ProjectionUnavailableError` when
the database fails.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ledger.domain.rules import Facts
from projections.metrics import Rows
from projections.rights import OpenRequest
from schemas import EventBase

LOG_PARTITION = 0
"""The one partition of a feed that reads a single ordered log (the event store itself)."""

OPTED_IN = (
    "select purpose, channel, count(*) from {consent} where status = 'granted' "
    "group by purpose, channel"
)
SUPPRESSED = (
    "select reason, count(distinct subject) from {suppression} where active group by reason"
)
OPEN_REQUESTS = (
    "select request_id, subject, right_name, received_at, due_at, extended "
    "from {rights} where outcome is null"
)
REQUEST_SUBJECT = "select subject from {rights} where request_id = {param}"


@dataclass(frozen=True, slots=True)
class Tracking:
    """Whose offsets: a consumer group on a topic (the embedded feed: its name, no topic)."""

    group: str
    topic: str = ""


class ProjectionStore(ABC):
    """The projection tables of one database."""

    @abstractmethod
    def migrate(self) -> None:
        """Create the tables if missing (safe to run twice, and at once)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """One transaction: everything written inside commits together, or nothing does."""

    @abstractmethod
    def apply(self, events: Sequence[tuple[EventBase, int]]) -> None:
        """Apply ``events`` (each with its ledger position) in the current transaction, with
        the tables ending as if each ran alone, in list order."""

    @abstractmethod
    def offsets(self, tracking: Tracking, *, lock: bool = False) -> dict[int, int]:
        """Per partition, the next offset stored for ``tracking`` (``lock``: held until the
        transaction ends)."""

    @abstractmethod
    def save_offsets(self, tracking: Tracking, offsets: Mapping[int, int]) -> None:
        """Store these next offsets, in the current transaction (with the rows they cover)."""

    @abstractmethod
    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        """What the projection knows for one check."""

    @abstractmethod
    def open_requests(self) -> list[OpenRequest]:
        """The rights requests still open, soonest due first."""

    @abstractmethod
    def request_subject(self, request_id: str) -> str | None:
        """The subject of a rights request, open or closed; None when none has this id."""

    @abstractmethod
    def counts(self) -> tuple[Rows, Rows, Rows]:
        """The business gauges' counts (see `projections.metrics.Query`)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connection(s)."""
