"""Sealing personal data under each person's data key, and opening it again unless erased."""

import base64
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.domain.errors import LedgerError
from ledger.privacy.keystore import DataKeyStore
from schemas.personal import ErasedPersonalData, PersonalData, SealedPersonalData

__all__ = ["PersonalCipher", "PersonalDataTamperedError"]

_NONCE_BYTES = 12


class PersonalDataTamperedError(LedgerError):
    """Sealed personal data fails authentication: it was altered, or moved to another key.

    This is not erasure: an erased person's data reads as `ErasedPersonalData`.
    """

    def __init__(self, key_id: str) -> None:
        super().__init__(f"personal data sealed under key {key_id} fails authentication")
        self.key_id = key_id


class PersonalCipher:
    """Encrypts personal data (AES-GCM) under its person's data key, and decrypts it.

    The key id is authenticated with the ciphertext, so sealed data cannot be passed off as
    another key's. Each batch costs one call to the key store, whatever its size.
    """

    def __init__(self, *, store: DataKeyStore) -> None:
        self._store = store

    def seal_many(self, items: Sequence[tuple[str, PersonalData]]) -> list[SealedPersonalData]:
        """Seal each ``(subject, data)`` under that subject's live key, creating it if needed."""
        if not items:
            return []
        keys = self._store.keys_for_writing({subject for subject, _ in items})
        sealed = []
        for subject, data in items:
            key = keys[subject]
            nonce = os.urandom(_NONCE_BYTES)
            plaintext = data.model_dump_json(exclude_none=True).encode()
            ciphertext = AESGCM(key.key).encrypt(nonce, plaintext, key.key_id.encode())
            sealed.append(
                SealedPersonalData(
                    key_id=key.key_id,
                    nonce=base64.b64encode(nonce).decode("ascii"),
                    ciphertext=base64.b64encode(ciphertext).decode("ascii"),
                )
            )
        return sealed

    def seal(self, subject: str, data: PersonalData) -> SealedPersonalData:
        """Seal one person's data; prefer `seal_many` for a batch."""
        return self.seal_many([(subject, data)])[0]

    def open_many(
        self, items: Sequence[SealedPersonalData]
    ) -> list[PersonalData | ErasedPersonalData]:
        """Open each sealed record; one whose key was destroyed reads as `ErasedPersonalData`.

        Raises `PersonalDataTamperedError` for a record that fails authentication.
        """
        if not items:
            return []
        keys = self._store.keys({item.key_id for item in items})
        return [_open(item, keys[item.key_id]) for item in items]

    def open(self, item: SealedPersonalData) -> PersonalData | ErasedPersonalData:
        """Open one sealed record; prefer `open_many` for a batch."""
        return self.open_many([item])[0]


def _open(item: SealedPersonalData, key: bytes | None) -> PersonalData | ErasedPersonalData:
    if key is None:
        return ErasedPersonalData()
    nonce = base64.b64decode(item.nonce)
    if len(nonce) != _NONCE_BYTES:
        raise PersonalDataTamperedError(item.key_id)
    try:
        plaintext = AESGCM(key).decrypt(
            nonce, base64.b64decode(item.ciphertext), item.key_id.encode()
        )
    except InvalidTag:
        raise PersonalDataTamperedError(item.key_id) from None
    return PersonalData.model_validate_json(plaintext)
