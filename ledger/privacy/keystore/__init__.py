"""Per-person data keys: created on first use, wrapped under a master key, destroyed to erase."""

from ledger.privacy.keystore.base import (
    DATA_KEY_BYTES,
    MASTER_KEY_BYTES,
    DataKey,
    DataKeyStore,
    KeyRow,
    WrappedKeyStore,
)
from ledger.privacy.keystore.postgres import PostgresDataKeyStore
from ledger.privacy.keystore.sqlite import SQLiteDataKeyStore

__all__ = [
    "DATA_KEY_BYTES",
    "MASTER_KEY_BYTES",
    "DataKey",
    "DataKeyStore",
    "KeyRow",
    "PostgresDataKeyStore",
    "SQLiteDataKeyStore",
    "WrappedKeyStore",
]
