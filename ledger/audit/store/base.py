"""The audit tree's storage interface: leaves, perfect-subtree nodes and signed checkpoints.

Three append-only tables next to the events, in SQLite or PostgreSQL (the adapters beside):
``audit_leaves (idx, position, hash)`` maps each leaf to the ledger position it seals;
``audit_nodes (level, idx, hash)`` holds every perfect subtree of level >= 1 (level 0 is the
leaves); ``audit_checkpoints (size, root, note, created_at)`` keeps every signed checkpoint.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.audit.tlog.merkle import NodeKey


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
