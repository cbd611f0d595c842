"""Per-person data keys: created on first use, wrapped under a master key, destroyed to erase."""

from ledger.privacy.keystore import base
from ledger.privacy.keystore.base import *  # noqa: F403
from ledger.privacy.keystore.postgres import PostgresDataKeyStore
from ledger.privacy.keystore.sqlite import SQLiteDataKeyStore

__all__ = ["PostgresDataKeyStore", "SQLiteDataKeyStore"]
__all__ += base.__all__
