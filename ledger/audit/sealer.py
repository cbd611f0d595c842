"""The sealer: follows the event store in ledger order and appends each event as a Merkle leaf.

Sealing is O(log n) per event: only the nodes along the tree's right edge are read, and every
perfect subtree hash is stored once. Checkpoints are cut every N events or T seconds (and on
demand), signed as C2SP signed notes, and all kept.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ledger.audit.store import Leaf, StoredCheckpoint, TreeStore, now_utc
from ledger.audit.tlog.entry import encode_entry
from ledger.audit.tlog.merkle import new_nodes, root
from ledger.audit.tlog.note import Checkpoint, NoteSigner
from ledger.audit.tlog.verify import leaf_hash
from ledger.domain.backoff import follow
from ledger.metrics import AUDIT_TREE_SIZE, checkpoint_seen
from ledger.store.events import STORE_UNAVAILABLE, LedgerStore

logger = logging.getLogger(__name__)

SEAL_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class SealerConfig:
    origin: str
    """The checkpoint's origin line: names this log, e.g. ``consent.example.org/ledger``."""
    checkpoint_every_events: int = 1_000
    checkpoint_every_seconds: float = 60.0
    backoff_max_s: float = 5.0
    """The longest pause between attempts while the database is down."""


@dataclass(kw_only=True, eq=False)
class Sealer:
    """Turns stored events into leaves and checkpoints; one sealer per ledger at a time."""

    store: LedgerStore
    tree: TreeStore
    signer: NoteSigner
    config: SealerConfig
    clock: Callable[[], datetime] = now_utc
    _last_checkpoint_at: float = field(default_factory=time.monotonic, init=False)

    def seal(self, *, limit: int = SEAL_BATCH) -> int:
        """Seal up to ``limit`` new events; returns how many."""
        size = self.tree.size()
        after = self.tree.last_position()
        notifications = self.store.notifications(after=after, limit=limit)
        if not notifications:
            AUDIT_TREE_SIZE.set(size)
            return 0
        leaves = [
            Leaf(
                index=size + offset,
                position=n.id,
                hash=leaf_hash(
                    encode_entry(
                        position=n.id,
                        originator_id=self.store.originator_uuid(n.originator_id),
                        originator_version=n.originator_version,
                        topic=n.topic,
                        state=n.state,
                    )
                ),
            )
            for offset, n in enumerate(notifications)
        ]
        nodes = new_nodes(size=size, leaf_hashes=[leaf.hash for leaf in leaves], store=self.tree)
        self.tree.append(leaves, nodes)
        AUDIT_TREE_SIZE.set(size + len(leaves))
        return len(leaves)

    def seal_all(self, *, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while sealed := self.seal():
            total += sealed
            if progress is not None:
                progress(sealed)
        return total

    def checkpoint(self) -> StoredCheckpoint:
        """Cut a checkpoint of the tree as it is now (the latest one if nothing is new)."""
        size = self.tree.size()
        latest = self.tree.latest_checkpoint()
        if latest is not None and latest.size == size:
            return latest
        digest = root(size=size, store=self.tree)
        note = self.signer.sign(Checkpoint(self.config.origin, size, digest).body())
        checkpoint = StoredCheckpoint(size=size, root=digest, note=note, created_at=self.clock())
        self.tree.add_checkpoint(checkpoint)
        self._last_checkpoint_at = time.monotonic()
        checkpoint_seen(size=size, created_at=checkpoint.created_at)
        logger.info("audit checkpoint cut at tree size %d", size)
        return checkpoint

    def checkpoint_if_due(self) -> StoredCheckpoint | None:
        latest = self.tree.latest_checkpoint()
        if latest is not None:
            checkpoint_seen(size=latest.size, created_at=latest.created_at)
        size = self.tree.size()
        since = size - (latest.size if latest else 0)
        if since <= 0:
            return None
        elapsed = time.monotonic() - self._last_checkpoint_at
        if since >= self.config.checkpoint_every_events or (
            elapsed >= self.config.checkpoint_every_seconds
        ):
            return self.checkpoint()
        return None

    def follow(self, stop: threading.Event, *, poll_s: float = 0.2) -> None:
        """Seal and checkpoint until ``stop`` is set; wait out a database that does not answer.

        Nothing is carried from one round to the next but the clock of the last checkpoint:
        each round reads the tree's size and last position from the database, so a batch whose
        transaction failed (or whose commit went unanswered) is sealed again from what was
        really committed.
        """
        follow(
            self._round,
            stop,
            transient=STORE_UNAVAILABLE,
            on_failure=self._failed,
            backoff_max_s=self.config.backoff_max_s,
            poll_s=poll_s,
        )

    def _round(self) -> int:
        sealed = self.seal()
        self.checkpoint_if_due()
        return sealed

    def _failed(self, error: Exception, pause: float) -> None:
        self.store.heal()
        logger.warning(
            "audit sealer: database unavailable (%s); retrying in %.1f s",
            type(error).__name__,
            pause,
        )
