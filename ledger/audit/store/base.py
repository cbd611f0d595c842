"""The audit tree's storage interface: leaves, perfect-subtree nodes and signed checkpoints.

Three append-only tables next to the events, in SQLite or PostgreSQL (the adapters beside):
``audit_leaves (idx, position, hash)`` maps each leaf to the ledger position it seals;
``audit_nodes (level, idx, hash)`` holds every perfect subtree of level >= 1 (level 0 is the
leaves); ``audit_checkpoints (size, root, note, created_at)`` keeps every signed checkpoint.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger.audit.tlog.entry import encode_entry
from ledger.audit.tlog.merkle import NodeKey
from ledger.audit.tlog.verify import leaf_hash

if TYPE_CHECKING:
    from ledger.store.events import LedgerStore

READ_BATCH = 10_000
"""Leaves read per query when they are paired with events in Python."""

SealedPair = tuple[int | None, int | None, int | None, bool, bytes | None]
"""One step of `audit verify`: (event position, leaf index, leaf position, whether the leaf's
stored hash equals the one recomputed from the event, that recomputed hash). The i-th stored
event (in position order) is paired with leaf i; either side is None where the other has more.
"""


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    position: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: datetime


class TreeStore(ABC):
    """The storage of the audit tree; `get_nodes` makes it a `ledger.audit.tlog.NodeStore`."""

    @abstractmethod
    def migrate(self) -> None:
        """Create the tables if missing (safe to run twice)."""

    @abstractmethod
    def size(self) -> int:
        """How many leaves are sealed."""

    @abstractmethod
    def last_position(self) -> int:
        """The ledger position of the newest leaf (0 when none)."""

    def get_nodes(self, keys: Sequence[NodeKey], /) -> dict[NodeKey, bytes]:
        """Stored hashes of these nodes (level 0: the leaves); missing ones are left out."""
        leaves = [idx for level, idx in keys if level == 0]
        upper = [(level, idx) for level, idx in keys if level > 0]
        return {
            (int(level), int(idx)): bytes(digest)
            for level, idx, digest in self._read_nodes(leaves, upper)
        }

    @abstractmethod
    def _read_nodes(
        self, leaves: Sequence[int], upper: Sequence[NodeKey]
    ) -> Iterable[tuple[int, int, bytes]]:
        """(level, index, hash) of those of these leaves (level 0) and upper nodes stored."""

    @abstractmethod
    def append(self, leaves: Sequence[Leaf], nodes: Mapping[NodeKey, bytes]) -> None:
        """Store new leaves and the new perfect nodes above them in one transaction."""

    @abstractmethod
    def leaves(self, *, start: int, limit: int) -> list[Leaf]:
        """Leaves ``start``, ``start + 1``, ... in order."""

    def sealed_pairs(self, store: "LedgerStore") -> Iterator[SealedPair]:
        """Every stored event beside the leaf at its rank, each leaf hash recomputed from the
        event's bytes. Here in Python, reading both in order; an adapter whose database holds
        the events too may do it where the rows are."""
        leaves = self._all_leaves()
        for position, originator_id, version, topic, state in store.stream_rows():
            leaf = next(leaves, None)
            if leaf is None:
                yield position, None, None, False, None
                continue
            entry = encode_entry(
                position=position,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=state,
            )
            digest = leaf_hash(entry)
            yield position, leaf.index, leaf.position, digest == leaf.hash, digest
        for leaf in leaves:
            yield None, leaf.index, leaf.position, False, None

    def _all_leaves(self) -> Iterator[Leaf]:
        start = 0
        while page := self.leaves(start=start, limit=READ_BATCH):
            yield from page
            start = page[-1].index + 1

    @abstractmethod
    def leaf_indices(self, positions: Sequence[int]) -> dict[int, int]:
        """The leaf index of each sealed position."""

    @abstractmethod
    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    @abstractmethod
    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint, smallest tree first."""

    @abstractmethod
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


def now_utc() -> datetime:
    return datetime.now(UTC)
