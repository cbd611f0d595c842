"""`audit verify`: recompute every leaf from the event store and every checkpoint from them.

Nothing stored in the audit tables is trusted but the signatures: leaves are recomputed from
the events, roots from the recomputed leaves, and each checkpoint must carry a valid signature
by the configured key, the recomputed root, and be consistent with the previous one.
"""

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.audit.store import StoredCheckpoint, TreeStore
from ledger.audit.tlog.merkle import consistency_proof
from ledger.audit.tlog.note import NoteVerifier, SignatureError, open_note, parse_checkpoint
from ledger.audit.tlog.verify import AuditError, node_hash, verify_consistency
from ledger.metrics import AUDIT_VERIFICATION_FAILURES
from ledger.store.events import LedgerStore

READ_BATCH = 10_000
EMPTY_ROOT = hashlib.sha256(b"").digest()


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """The first place where the store, the tree and the checkpoints disagree."""

    position: int | None
    leaf: int | None
    what: str


@dataclass(slots=True)
class VerifyReport:
    events: int = 0
    leaves: int = 0
    checkpoints: int = 0
    unsealed: int = 0
    problem: Discrepancy | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


class _CompactRange:
    """The right edge of a Merkle tree fed leaf by leaf: enough to give its root at any size."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def append(self, digest: bytes) -> None:
        # Leaf n closes one perfect subtree per trailing 1 bit of n: merge that many times.
        stack = self._stack
        level = 0
        merges = self.size
        while merges & 1:
            digest = node_hash(stack.pop()[1], digest)
            level += 1
            merges >>= 1
        stack.append((level, digest))
        self.size += 1

    def root(self) -> bytes:
        # RFC 9162: the root folds the perfect subtrees right to left.
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


class _Found(Exception):  # noqa: N818 - control flow inside this module, never raised out
    def __init__(self, discrepancy: Discrepancy) -> None:
        super().__init__(discrepancy.what)
        self.discrepancy = discrepancy


def verify_ledger(
    *,
    store: LedgerStore,
    tree: TreeStore,
    verifier: NoteVerifier,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check the whole ledger; stop at the first discrepancy and say where and what."""
    report = VerifyReport()
    checkpoints = tree.checkpoints()
    try:
        _check_signatures(checkpoints, verifier)
        _walk(store, tree, checkpoints, report, progress)
        _check_consistency(checkpoints, tree)
    except _Found as found:
        report.problem = found.discrepancy
        AUDIT_VERIFICATION_FAILURES.inc()
    return report


def _walk(
    store: LedgerStore,
    tree: TreeStore,
    checkpoints: list[StoredCheckpoint],
    report: VerifyReport,
    progress: Callable[[int], None] | None,
) -> None:
    pending = iter(checkpoints)
    next_checkpoint = next(pending, None)
    while next_checkpoint is not None and next_checkpoint.size == 0:
        if next_checkpoint.root != EMPTY_ROOT:
            raise _Found(Discrepancy(None, None, "checkpoint of size 0 has a wrong root"))
        report.checkpoints += 1
        next_checkpoint = next(pending, None)
    compact = _CompactRange()
    counted = 0
    for position, index, leaf_position, same, digest in tree.sealed_pairs(store):
        if position is None:
            # More leaves than events: the event a leaf sealed is gone.
            raise _Found(
                Discrepancy(
                    leaf_position,
                    index,
                    f"position {leaf_position} was sealed as leaf {index} but is no longer "
                    "in the store: an event was deleted",
                )
            )
        report.events += 1
        if index is None or leaf_position is None or digest is None:
            report.unsealed += 1
            continue
        report.leaves += 1
        if leaf_position != position:
            raise _Found(_order_problem(index, leaf_position, position))
        if not same:
            raise _Found(
                Discrepancy(
                    position,
                    index,
                    f"the stored event at position {position} is not the one sealed as leaf "
                    f"{index}: its bytes were changed after sealing",
                )
            )
        compact.append(digest)
        while next_checkpoint is not None and next_checkpoint.size == compact.size:
            # The row's root was checked against its signed note already.
            if compact.root() != next_checkpoint.root:
                raise _Found(
                    Discrepancy(
                        position,
                        index,
                        f"checkpoint of size {next_checkpoint.size} does not match the "
                        "tree recomputed from the store",
                    )
                )
            report.checkpoints += 1
            next_checkpoint = next(pending, None)
        counted += 1
        if progress is not None and counted == READ_BATCH:
            progress(counted)
            counted = 0
    if progress is not None and counted:
        progress(counted)
    if next_checkpoint is not None:
        raise _Found(
            Discrepancy(
                None, None, f"checkpoint of size {next_checkpoint.size} is larger than the tree"
            )
        )


def _order_problem(index: int, leaf_position: int, position: int) -> Discrepancy:
    if position < leaf_position:
        what = (
            f"position {position} is in the store but was never sealed where it stands "
            f"(leaf {index} seals position {leaf_position}): an event was inserted"
        )
        return Discrepancy(position, index, what)
    what = (
        f"position {leaf_position}, sealed as leaf {index}, is missing from the store "
        f"(next stored position is {position}): an event was deleted"
    )
    return Discrepancy(leaf_position, index, what)


def _check_signatures(checkpoints: list[StoredCheckpoint], verifier: NoteVerifier) -> None:
    for checkpoint in checkpoints:
        try:
            body = open_note(checkpoint.note, verifier)
            parsed = parse_checkpoint(body)
        except AuditError as error:
            kind = "signature" if isinstance(error, SignatureError) else "format"
            raise _Found(
                Discrepancy(None, None, f"checkpoint of size {checkpoint.size}: bad {kind}")
            ) from None
        if (parsed.size, parsed.root_hash) != (checkpoint.size, checkpoint.root):
            raise _Found(
                Discrepancy(
                    None,
                    None,
                    f"checkpoint of size {checkpoint.size}: signed note differs from row",
                )
            )


def _check_consistency(checkpoints: list[StoredCheckpoint], tree: TreeStore) -> None:
    for older, newer in itertools.pairwise(checkpoints):
        if older.size == 0:
            continue
        try:
            proof = consistency_proof(first=older.size, second=newer.size, store=tree)
            verify_consistency(
                first=older.size,
                second=newer.size,
                first_root=older.root,
                second_root=newer.root,
                proof=proof,
            )
        except AuditError:
            raise _Found(
                Discrepancy(
                    None,
                    None,
                    f"checkpoints of sizes {older.size} and {newer.size} are not consistent",
                )
            ) from None
