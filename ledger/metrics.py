"""The ledger's Prometheus metrics (write side, audit): counts and times, no personal data.

Labels are bounded sets (command types, outcomes); never a subject, address or id.
"""

import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledger.domain.errors import ConcurrencyConflictError, LedgerError, StoreUnavailableError

WRITER = CollectorRegistry(auto_describe=True)
"""The write side's series: exported by the processes that record commands (serve)."""
AUDITOR = CollectorRegistry(auto_describe=True)
"""The sealer's series: exported by ``audit seal --follow`` and by ``serve`` in embedded mode."""

COMMANDS = Counter(
    "consent_ledger_commands",
    "Commands handled by the ledger, by command type and outcome "
    "(recorded, duplicate, refused: a rule or field said no, failed: the store did).",
    ["command", "outcome"],
    registry=WRITER,
)
COMMAND_DURATION = Histogram(
    "consent_ledger_command_duration_seconds",
    "From a command's submission to its answer (durable or refused), by command type.",
    ["command"],
    registry=WRITER,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GROUP_COMMIT_BATCH = Histogram(
    "consent_ledger_group_commit_batch_size",
    "Commands sharing one group-commit transaction.",
    registry=WRITER,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
AUDIT_TREE_SIZE = Gauge(
    "consent_ledger_audit_tree_size", "Events sealed into the audit Merkle tree.", registry=AUDITOR
)
AUDIT_CHECKPOINT_SIZE = Gauge(
    "consent_ledger_audit_checkpoint_size",
    "Tree size of the latest signed checkpoint.",
    registry=AUDITOR,
)
AUDIT_CHECKPOINT_AGE = Gauge(
    "consent_ledger_audit_checkpoint_age_seconds",
    "Seconds since the latest signed checkpoint was cut, computed at scrape "
    "(NaN before the sealer has seen one).",
    registry=AUDITOR,
)
AUDIT_VERIFICATION_FAILURES = Counter(
    "consent_ledger_audit_verification_failures",
    "Audit verifications that found a discrepancy (tampering, a bad signature or a gap).",
    registry=AUDITOR,
)


class _LatestCheckpoint:
    """When the latest checkpoint this process has seen was cut: its age is read at scrape."""

    def __init__(self) -> None:
        self.created_at: float | None = None

    def age(self) -> float:
        return float("nan") if self.created_at is None else time.time() - self.created_at


_LATEST_CHECKPOINT = _LatestCheckpoint()
AUDIT_CHECKPOINT_AGE.set_function(_LATEST_CHECKPOINT.age)


def checkpoint_seen(*, size: int, created_at: datetime) -> None:
    """Remember the latest checkpoint: its age is then computed at each scrape."""
    AUDIT_CHECKPOINT_SIZE.set(size)
    _LATEST_CHECKPOINT.created_at = created_at.timestamp()


def outcome_of(error: LedgerError | None, *, duplicate: bool = False) -> str:
    """The ``outcome`` label of a command's answer: its error, or whether it was new."""
    if error is None:
        return "duplicate" if duplicate else "recorded"
    # A conflict that outlasted every retry is the store's doing, not the caller's.
    if isinstance(error, StoreUnavailableError | ConcurrencyConflictError):
        return "failed"
    return "refused"


class CommandMeter:
    """Pre-bound label children per (command type, outcome): one dict lookup per command."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, command: object, outcome: str, started: float) -> None:
        key = (type(command).__name__, outcome)
        children = self._children.get(key)
        if children is None:
            children = (COMMANDS.labels(*key), COMMAND_DURATION.labels(key[0]))
            self._children[key] = children
        children[0].inc()
        children[1].observe(self._clock() - started)
