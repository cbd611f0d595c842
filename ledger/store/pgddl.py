"""Schema changes that processes starting together make one at a time.

``create table if not exists`` is not safe against a concurrent create of the same table (the
loser fails on a unique index of the catalog), and a deployment starts its API, relay,
consumers and sealer together. Each creates its tables holding one advisory lock.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

DDL_LOCK = "select pg_advisory_xact_lock(hashtext('consent-ledger-ddl'))"
"""Held until the end of the transaction that takes it (projections/store.py takes it too)."""
SESSION_DDL_LOCK = "select pg_advisory_lock(hashtext('consent-ledger-ddl'))"
SESSION_DDL_UNLOCK = "select pg_advisory_unlock(hashtext('consent-ledger-ddl'))"


@contextmanager
def ddl_transaction(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A transaction on ``conn`` holding the DDL lock."""
    with conn.transaction():
        conn.execute(DDL_LOCK)
        yield conn


@contextmanager
def ddl_lock(dsn: str) -> Iterator[None]:
    """The DDL lock, held on a connection of its own, for DDL run by code that is not ours."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SESSION_DDL_LOCK)
        try:
            yield
        finally:
            conn.execute(SESSION_DDL_UNLOCK)
