"""The data-key store interface, and the key wrapping its SQL adapters share."""

import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.domain.errors import ConcurrencyConflictError, ConfigurationError

__all__ = [
    "DATA_KEY_BYTES",
    "MASTER_KEY_BYTES",
    "DataKey",
    "DataKeyStore",
    "KeyRow",
    "WrappedKeyStore",
]

DATA_KEY_BYTES = 32
"""A data key is an AES-256 key."""

MASTER_KEY_BYTES = 32
"""The master key that wraps the data keys is an AES-256 key too."""

_NONCE_BYTES = 12
# Creating a key only fails to give a live one when the person is erased at that very moment;
# a few fresh tries settle it.
_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class DataKey:
    """One person's AES-256 data key, in clear; ``repr`` leaves the key out."""

    key_id: str
    subject: str
    generation: int
    key: bytes = field(repr=False)


class DataKeyStore(ABC):
    """Per-person data keys, created on first use and destroyed to erase a person (art. 17).

    A person has at most one live key at a time: the highest generation, if not destroyed. Keys
    of earlier generations stay readable until the person is erased, so older personal data can
    still be opened.
    """

    @abstractmethod
    def migrate(self) -> None:
        """Create the key table if it is missing; safe to call any number of times."""

    @abstractmethod
    def keys_for_writing(self, subjects: Collection[str]) -> dict[str, DataKey]:
        """The live key of each subject, creating one for those that have none.

        A subject that never had a key gets generation 1; one whose keys were destroyed gets the
        next generation. Every process asking at the same time gets the same key.
        """

    @abstractmethod
    def keys(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        """The key behind each id: ``None`` for a destroyed or unknown key."""

    @abstractmethod
    def destroy(self, subject: str) -> int:
        """Destroy every live key of ``subject`` for good; return how many were destroyed."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release the connections the store opened itself; it is not used afterwards."""


class KeyRow(NamedTuple):
    """A row of the key table; ``wrapped`` is ``None`` once the key is destroyed."""

    key_id: str
    subject: str
    generation: int
    wrapped: bytes | None


class WrappedKeyStore(DataKeyStore):
    """A store that keeps data keys in a table, each wrapped (AES-GCM) under one master key.

    Adapters supply the three queries; the rules of creation and wrapping live here, once.
    """

    def __init__(self, *, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ConfigurationError(f"the master key must be {MASTER_KEY_BYTES} bytes long")
        self._master = AESGCM(master_key)

    @abstractmethod
    def _latest(self, subjects: Sequence[str]) -> list[KeyRow]:
        """The row of highest generation of each subject that has one, destroyed or not."""

    @abstractmethod
    def _insert_then_latest(self, rows: Sequence[KeyRow]) -> list[KeyRow]:
        """Insert ``rows``, skipping any whose key id or (subject, generation) is taken, then
        return the latest row of each of their subjects as seen after the insert.
        """

    @abstractmethod
    def _by_key_id(self, key_ids: Sequence[str]) -> list[KeyRow]:
        """The rows of ``key_ids`` that exist."""

    def keys_for_writing(self, subjects: Collection[str]) -> dict[str, DataKey]:
        # Sorted, so that concurrent batches insert overlapping subjects in the same order and
        # cannot deadlock on each other's uncommitted rows.
        pending = sorted(set(subjects))
        if not pending:
            return {}
        found: dict[str, DataKey] = {}
        made: dict[str, DataKey] = {}
        latest = _by_subject(self._latest(pending))
        for _ in range(_MAX_ATTEMPTS):
            new_rows: list[KeyRow] = []
            for subject in pending:
                row = latest.get(subject)
                key = None
                if row is not None and row.wrapped is not None:
                    # A key this call made and won needs no unwrapping: it is still in hand.
                    key = made.get(row.key_id) or self._unwrap(row)
                if key is not None:
                    found[subject] = key
                else:
                    new_row, made_key = self._new_row(
                        subject, 1 if row is None else row.generation + 1
                    )
                    new_rows.append(new_row)
                    made[new_row.key_id] = made_key
            if not new_rows:
                return found
            # Whoever inserts a generation first wins it; the others skip their insert and read
            # the winner's key, so concurrent writers agree without a lock.
            pending = [row.subject for row in new_rows]
            latest = _by_subject(self._insert_then_latest(new_rows))
        raise ConcurrencyConflictError(pending[0], _MAX_ATTEMPTS)

    def keys(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        wanted = sorted(set(key_ids))
        found: dict[str, bytes | None] = dict.fromkeys(wanted)
        if wanted:
            for row in self._by_key_id(wanted):
                key = self._unwrap(row)
                found[row.key_id] = None if key is None else key.key
        return found

    def _new_row(self, subject: str, generation: int) -> tuple[KeyRow, DataKey]:
        # A random id rather than one built from the subject: subjects may be up to 128
        # characters, the id must fit in a sealed record, and it should not name the person.
        key_id = str(uuid.uuid4())
        nonce = os.urandom(_NONCE_BYTES)
        key = os.urandom(DATA_KEY_BYTES)
        wrapped = nonce + self._master.encrypt(nonce, key, key_id.encode())
        return (
            KeyRow(key_id, subject, generation, wrapped),
            DataKey(key_id=key_id, subject=subject, generation=generation, key=key),
        )

    def _unwrap(self, row: KeyRow) -> DataKey | None:
        if row.wrapped is None:
            return None
        nonce, ciphertext = row.wrapped[:_NONCE_BYTES], row.wrapped[_NONCE_BYTES:]
        try:
            key = self._master.decrypt(nonce, ciphertext, row.key_id.encode())
        except (InvalidTag, ValueError):
            raise ConfigurationError(
                f"the master key does not open data key {row.key_id}: "
                "the master key is not the one the keys were made with, or the key table was "
                "altered"
            ) from None
        return DataKey(key_id=row.key_id, subject=row.subject, generation=row.generation, key=key)


def _by_subject(rows: Iterable[KeyRow]) -> dict[str, KeyRow]:
    return {row.subject: row for row in rows}
