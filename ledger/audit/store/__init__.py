"""Where the sealed Merkle tree lives: one interface, a SQLite and a PostgreSQL adapter."""

from ledger.audit.store.base import Leaf, StoredCheckpoint, TreeStore, now_utc
from ledger.audit.store.postgres import PostgresTreeStore
from ledger.audit.store.sqlite import SQLiteTreeStore

__all__ = [
    "Leaf",
    "PostgresTreeStore",
    "SQLiteTreeStore",
    "StoredCheckpoint",
    "TreeStore",
    "now_utc",
]
