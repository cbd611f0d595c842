"""Proof bundles: every event of one person with its inclusion proof in a signed checkpoint."""

import base64
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.audit.store import StoredCheckpoint, TreeStore
from ledger.audit.tlog.bundle import BUNDLE_FORMAT
from ledger.audit.tlog.entry import encode_entry
from ledger.audit.tlog.merkle import inclusion_proofs
from ledger.audit.tlog.note import NoteVerifier
from ledger.audit.tlog.verify import InclusionProofError, leaf_hash, verify_inclusion
from ledger.domain.aggregates import aggregate_id
from ledger.domain.errors import LedgerError
from ledger.store.events import LedgerStore


class NotSealedError(LedgerError):
    """Some of the person's events are not yet in the checkpoint; seal and checkpoint first."""


class TamperedEventError(LedgerError):
    """A stored event is not what was sealed at its position: no bundle can prove it."""

    def __init__(self, position: int, leaf: int) -> None:
        super().__init__(
            f"position {position}: the stored event is not the one sealed as leaf {leaf} "
            "(its bytes were changed after sealing); run `audit verify`"
        )
        self.position = position
        self.leaf = leaf


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class ProvenEntry:
    """One stored event of a person, with its proof in a checkpoint when it is sealed there."""

    position: int
    entry: bytes
    event: dict[str, Any]
    index: int | None
    """The leaf index, or None when the event is not yet in the checkpoint."""
    inclusion_proof: tuple[bytes, ...] = ()


def proven_entries(
    *, subject: str, store: LedgerStore, tree: TreeStore, checkpoint: StoredCheckpoint | None
) -> list[ProvenEntry]:
    """Every stored event of ``subject``, in order, each proven in ``checkpoint`` if it can be."""
    originator: UUID = aggregate_id(subject)
    stored = store.stored_events_of(originator)
    positions = store.positions_of(originator)
    indices = tree.leaf_indices(list(positions.values()))
    proven: list[ProvenEntry] = []
    size = 0 if checkpoint is None else checkpoint.size
    in_checkpoint = [index for index in indices.values() if index < size]
    # Every proof is against the same tree: its nodes are read once for all of them.
    proofs = inclusion_proofs(indices=in_checkpoint, size=size, store=tree) if size else {}
    for event in stored:
        position = positions[event.originator_version]
        entry = encode_entry(
            position=position,
            originator_id=originator,
            originator_version=event.originator_version,
            topic=event.topic,
            state=event.state,
        )
        index = indices.get(position)
        if index is None or index not in proofs:
            proven.append(ProvenEntry(position, entry, json.loads(event.state), None))
            continue
        proven.append(
            ProvenEntry(position, entry, json.loads(event.state), index, tuple(proofs[index]))
        )
    return proven


def export_bundle(
    *,
    subject: str,
    store: LedgerStore,
    tree: TreeStore,
    checkpoint: StoredCheckpoint,
    verifier: NoteVerifier,
) -> dict[str, Any]:
    """The bundle of ``subject``'s events, proven against ``checkpoint``.

    Each entry is checked as a verifier will check it: an event whose stored bytes no longer
    lead to the checkpoint's root raises `TamperedEventError`, naming its position.
    """
    entries: list[dict[str, Any]] = []
    for proven in proven_entries(subject=subject, store=store, tree=tree, checkpoint=checkpoint):
        if proven.index is None:
            msg = f"position {proven.position} is not in the checkpoint of size {checkpoint.size}"
            raise NotSealedError(msg)
        try:
            # What every verifier of the bundle will check: refused here rather than written.
            verify_inclusion(
                index=proven.index,
                size=checkpoint.size,
                leaf=leaf_hash(proven.entry),
                proof=proven.inclusion_proof,
                root=checkpoint.root,
            )
        except InclusionProofError:
            raise TamperedEventError(proven.position, proven.index) from None
        entries.append(
            {
                "index": proven.index,
                "entry": _b64(proven.entry),
                "inclusion_proof": [_b64(h) for h in proven.inclusion_proof],
                "event": proven.event,
            }
        )
    return {
        "format": BUNDLE_FORMAT,
        "checkpoint": checkpoint.note,
        "verifier_key": verifier.key(),
        "entries": entries,
    }
