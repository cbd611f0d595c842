"""The canonical bytes of one stored event: what a Merkle leaf commits to.

    entry = "consent-ledger-entry/1" LF
            position LF            ledger position (notification id), decimal
            originator_id LF       the aggregate's UUID, lowercase, hyphenated
            originator_version LF  decimal
            topic LF               "<event_type>/v<schema_version>"
            state                  the stored bytes, as they are (sealed personal data)

Everything an auditor needs to rebuild it is in one row of the event table. The state is taken
as stored, ciphertext included, so destroying a person's data key changes no entry.
Standard library only.
"""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

ENTRY_FORMAT = b"consent-ledger-entry/1"


class EntryFormatError(ValueError):
    """Bytes that are not a canonical entry."""


@dataclass(frozen=True, slots=True)
class Entry:
    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes

    def encode(self) -> bytes:
        return encode_entry(
            position=self.position,
            originator_id=self.originator_id,
            originator_version=self.originator_version,
            topic=self.topic,
            state=self.state,
        )

    def event(self) -> dict[str, Any]:
        """The stored envelope, decoded from its JSON state."""
        value = json.loads(self.state)
        if not isinstance(value, dict):
            msg = "the state is not a JSON object"
            raise EntryFormatError(msg)
        return value


def encode_entry(
    *, position: int, originator_id: UUID, originator_version: int, topic: str, state: bytes
) -> bytes:
    if "\n" in topic:
        msg = "a topic has no line feed"
        raise EntryFormatError(msg)
    return b"\n".join(
        (
            ENTRY_FORMAT,
            str(position).encode(),
            str(originator_id).encode(),
            str(originator_version).encode(),
            topic.encode(),
            state,
        )
    )


def decode_entry(data: bytes) -> Entry:
    parts = data.split(b"\n", 5)
    if len(parts) != 6 or parts[0] != ENTRY_FORMAT:
        msg = "not a consent-ledger-entry/1"
        raise EntryFormatError(msg)
    _, position, originator_id, version, topic, state = parts
    try:
        entry = Entry(
            position=int(position),
            originator_id=UUID(originator_id.decode()),
            originator_version=int(version),
            topic=topic.decode(),
            state=state,
        )
    except (ValueError, UnicodeDecodeError):
        msg = "malformed entry header"
        raise EntryFormatError(msg) from None
    if entry.encode() != data:
        msg = "entry is not in canonical form"
        raise EntryFormatError(msg)
    return entry
