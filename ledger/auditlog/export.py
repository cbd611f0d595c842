"""Proof bundles: every event of one person with its inclusion proof in a signed checkpoint."""

import base64
import json
from typing import Any
from uuid import UUID

from ledger.aggregates import aggregate_id
from ledger.audit.bundle import BUNDLE_FORMAT
from ledger.audit.entry import encode_entry
from ledger.audit.merkle import inclusion_proof
from ledger.audit.note import NoteVerifier
from ledger.auditlog.store import StoredCheckpoint, TreeStore
from ledger.errors import LedgerError
from ledger.store import LedgerStore


class NotSealedError(LedgerError):
    """Some of the person's events are not yet in the checkpoint; seal and checkpoint first."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_bundle(
    *,
    subject: str,
    store: LedgerStore,
    tree: TreeStore,
    checkpoint: StoredCheckpoint,
    verifier: NoteVerifier,
) -> dict[str, Any]:
    """The bundle of ``subject``'s events, proven against ``checkpoint``."""
    originator: UUID = aggregate_id(subject)
    stored = store.recorder.select_events(originator)
    positions = store.positions_of(originator)
    indices = tree.leaf_indices(list(positions.values()))
    entries: list[dict[str, Any]] = []
    for event in stored:
        position = positions[event.originator_version]
        index = indices.get(position)
        if index is None or index >= checkpoint.size:
            msg = f"position {position} is not in the checkpoint of size {checkpoint.size}"
            raise NotSealedError(msg)
        entry = encode_entry(
            position=position,
            originator_id=originator,
            originator_version=event.originator_version,
            topic=event.topic,
            state=event.state,
        )
        proof = inclusion_proof(index=index, size=checkpoint.size, store=tree)
        entries.append(
            {
                "index": index,
                "entry": _b64(entry),
                "inclusion_proof": [_b64(h) for h in proof],
                "event": json.loads(event.state),
            }
        )
    return {
        "format": BUNDLE_FORMAT,
        "checkpoint": checkpoint.note,
        "verifier_key": verifier.key(),
        "entries": entries,
    }
