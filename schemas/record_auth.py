"""Authentication of the event topic's records: the relay MACs each one, consumers verify it.

The ``mac`` header is ``<key id>:<hex HMAC-SHA256>`` under one of the deployment's topic keys
(``CONSENT_TOPIC_KEYS``, newest first: the relay uses the newest, consumers accept any). It
covers, each prefixed by its length as 8 bytes big-endian: a format tag, the topic's name, the
record key, the headers ``event_type``, ``schema_version``, ``position`` and ``leaf_hash``, and
the value's exact bytes. Anyone who can produce to the topic without a key cannot make a record
a consumer applies: a forged or altered record is a dead letter.
"""

import hashlib
import hmac
from collections.abc import Mapping, Sequence

RECORD_MAC_FORMAT = b"consent-ledger-record/1"
MAC_HEADER = "mac"
AUTHENTICATED_HEADERS = ("event_type", "schema_version", "position", "leaf_hash")
MAX_POSITION = 2**63 - 1
"""The largest position a store can hold (a signed 64-bit integer)."""


class RecordAuthenticationError(ValueError):
    """A record that does not carry a valid MAC; the message holds no record content."""


def _message(topic: str, key: bytes, headers: Mapping[str, bytes], value: bytes) -> bytes:
    parts = [
        RECORD_MAC_FORMAT,
        topic.encode(),
        key,
        *(headers.get(name, b"") for name in AUTHENTICATED_HEADERS),
        value,
    ]
    return b"".join(len(part).to_bytes(8, "big") + part for part in parts)


class RecordKeys:
    """The topic keys of a deployment, newest first."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            msg = "at least one topic key is needed"
            raise ValueError(msg)
        self._keys = dict(keys)
        self._newest = next(iter(self._keys))

    def mac(
        self, *, topic: str, key: bytes, headers: Sequence[tuple[str, bytes]], value: bytes
    ) -> bytes:
        """The ``mac`` header value of a record, under the newest key."""
        digest = hmac.new(
            self._keys[self._newest], _message(topic, key, dict(headers), value), hashlib.sha256
        ).hexdigest()
        return f"{self._newest}:{digest}".encode()

    def verify(
        self, *, topic: str, key: bytes, headers: Sequence[tuple[str, bytes]], value: bytes
    ) -> None:
        """Raise `RecordAuthenticationError` unless the record's MAC is valid under a key."""
        named: dict[str, list[bytes]] = {}
        for name, content in headers:
            named.setdefault(name, []).append(content)
        macs = named.get(MAC_HEADER, [])
        if not macs:
            msg = "record is not authenticated (no mac header)"
            raise RecordAuthenticationError(msg)
        if len(macs) > 1 or any(len(named.get(h, ())) > 1 for h in AUTHENTICATED_HEADERS):
            msg = "record is not authenticated (a header is repeated)"
            raise RecordAuthenticationError(msg)
        key_id, _, digest = macs[0].decode("ascii", errors="replace").partition(":")
        secret = self._keys.get(key_id)
        if secret is None:
            msg = "record is not authenticated (mac under an unknown topic key)"
            raise RecordAuthenticationError(msg)
        single = {name: contents[0] for name, contents in named.items()}
        expected = hmac.new(secret, _message(topic, key, single, value), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), digest):
            msg = "record is not authenticated (mac does not verify: forged or altered)"
            raise RecordAuthenticationError(msg)


__all__ = [
    "MAC_HEADER",
    "MAX_POSITION",
    "RecordAuthenticationError",
    "RecordKeys",
]
