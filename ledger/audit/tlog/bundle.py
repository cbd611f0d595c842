"""Offline check of a proof bundle: one person's events, each proven in a signed checkpoint.

Standard library and `cryptography` only: an auditor can run this without our database, our
store code or our trust. The bundle is JSON::

    {"format": "consent-ledger-proof-bundle/1", "checkpoint": "<signed note>",
     "verifier_key": "<C2SP verifier key>",
     "entries": [{"index": n, "entry": "<base64>", "inclusion_proof": ["<base64>", ...],
                  "event": {...}}]}
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ledger.audit.tlog.entry import EntryFormatError, decode_entry
from ledger.audit.tlog.note import NoteVerifier, open_note, parse_checkpoint
from ledger.audit.tlog.verify import AuditError, leaf_hash, verify_inclusion

BUNDLE_FORMAT = "consent-ledger-proof-bundle/1"


class BundleError(AuditError):
    """The bundle does not prove what it claims; ``entry`` is the offending position in it."""

    def __init__(self, reason: str, *, entry: int | None = None) -> None:
        super().__init__(reason if entry is None else f"entry {entry}: {reason}")
        self.entry = entry


@dataclass(frozen=True, slots=True)
class BundleReport:
    origin: str
    tree_size: int
    entries: int
    trusted_key_from_bundle: bool


def _b64(value: Any, *, entry: int | None, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} is not a base64 string", entry=entry)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{what} is not valid base64", entry=entry) from None


def verify_bundle(document: dict[str, Any], *, verifier_key: str | None = None) -> BundleReport:
    """Check every entry of a bundle against its checkpoint, signed by ``verifier_key``.

    Without ``verifier_key`` the bundle's own key is used, which proves integrity but not who
    signed: the report says so.
    """
    if document.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a {BUNDLE_FORMAT} document")
    key = verifier_key or document.get("verifier_key")
    if not isinstance(key, str):
        raise BundleError("no verifier key")
    note = document.get("checkpoint")
    if not isinstance(note, str):
        raise BundleError("no checkpoint")
    checkpoint = parse_checkpoint(open_note(note, NoteVerifier.from_key(key)))
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise BundleError("no entries")
    for number, item in enumerate(entries):
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            raise BundleError("malformed entry", entry=number)
        raw = _b64(item.get("entry"), entry=number, what="entry")
        proof_items = item.get("inclusion_proof")
        if not isinstance(proof_items, list):
            raise BundleError("no inclusion proof", entry=number)
        proof = [_b64(h, entry=number, what="proof hash") for h in proof_items]
        try:
            decoded = decode_entry(raw)
            event = decoded.event()
        except (EntryFormatError, ValueError):
            raise BundleError("entry bytes are not a canonical entry", entry=number) from None
        if event != item.get("event"):
            raise BundleError("the readable event is not what the entry bytes hold", entry=number)
        verify_inclusion(
            index=item["index"],
            size=checkpoint.size,
            leaf=leaf_hash(raw),
            proof=proof,
            root=checkpoint.root_hash,
        )
    return BundleReport(
        origin=checkpoint.origin,
        tree_size=checkpoint.size,
        entries=len(entries),
        trusted_key_from_bundle=verifier_key is None,
    )


def load_bundle(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BundleError(f"not JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise BundleError("not a JSON object")
    return document
