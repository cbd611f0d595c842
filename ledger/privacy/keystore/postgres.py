"""Data keys in a PostgreSQL table, shared by every ledger process."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import args_row
from psycopg_pool import ConnectionPool

from ledger.domain.errors import ConfigurationError, StoreUnavailableError
from ledger.privacy.keystore.base import KeyRow, WrappedKeyStore

__all__ = ["DEFAULT_POOL_SIZE", "DEFAULT_TABLE", "PostgresDataKeyStore"]

DEFAULT_POOL_SIZE = 4
"""Connections in the pool the store opens from a DSN: key look-ups are one per batch."""

DEFAULT_WAIT_S = 30.0
"""How long a call waits for a connection of the store's own pool (psycopg_pool's default)."""

DEFAULT_TABLE = "data_keys"
"""The name of the key table when none is given."""

# One index probe per subject (the lateral LIMIT 1), whatever the table's statistics say: with
# "subject = any(...)" the planner chose sequential scans while a growing table's statistics
# lagged, which an import of a million people turns into a quadratic cost.
_LATEST = """
select k.key_id, k.subject, k.generation, k.wrapped
from unnest(%b::text[]) as s(subject)
cross join lateral (
    select key_id, subject, generation, wrapped
    from {table}
    where subject = s.subject
    order by generation desc
    limit 1
) as k
"""
_BY_KEY_ID = """
select key_id, subject, generation, wrapped
from {table}
where key_id = any(%s)
"""
# Binary parameters (%b): in text format every byte of the wrapped keys would be escaped.
_INSERT = """
insert into {table} (key_id, subject, generation, wrapped)
select * from unnest(%b::text[], %b::text[], %b::integer[], %b::bytea[])
on conflict do nothing
returning key_id, subject, generation, wrapped
"""
_DESTROY = """
update {table}
set wrapped = null, destroyed_at = now()
where subject = %s and wrapped is not null
"""


class PostgresDataKeyStore(WrappedKeyStore):
    """Data keys in ``schema.table`` (the search path's schema if none is given).

    Give either a ``dsn``, and the store keeps a pool of up to ``pool_size`` connections of its
    own until `close` (a call waits at most ``wait_s`` for one of them), or a ``pool`` it
    borrows and leaves open. A borrowed pool's connections
    must use PostgreSQL's default isolation, read committed: after an insert that lost a race,
    the next statement has to see the winner's row.
    """

    def __init__(
        self,
        *,
        master_key: bytes,
        dsn: str | None = None,
        pool: ConnectionPool[Any] | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        wait_s: float = DEFAULT_WAIT_S,
        schema: str | None = None,
        table: str = DEFAULT_TABLE,
    ) -> None:
        super().__init__(master_key=master_key)
        if dsn is not None and pool is None:
            # Autocommit spares a BEGIN and COMMIT around each statement; the one write that
            # must be atomic is a single statement.
            pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=pool_size,
                timeout=wait_s,
                kwargs={"autocommit": True},
                name="data-keys",
                open=True,
            )
            self._own_pool: ConnectionPool[Any] | None = pool
        elif pool is not None and dsn is None:
            self._own_pool = None
        else:
            raise ConfigurationError(
                "the PostgreSQL data-key store needs a dsn or a pool, not both"
            )
        self._pool = pool
        self._name = table if schema is None else f"{schema}.{table}"
        name = sql.Identifier(table) if schema is None else sql.Identifier(schema, table)
        self._latest_query = sql.SQL(_LATEST).format(table=name)
        self._by_key_id_query = sql.SQL(_BY_KEY_ID).format(table=name)
        self._insert_query = sql.SQL(_INSERT).format(table=name)
        self._destroy_query = sql.SQL(_DESTROY).format(table=name)
        ddl = (files("ledger.privacy.keystore") / "sql" / "postgres.sql").read_text(
            encoding="utf-8"
        )
        self._ddl = sql.SQL(ddl).format(table=name)

    def migrate(self) -> None:
        with self._connection() as conn, conn.transaction():
            # "create table if not exists" is not safe against a concurrent create; processes
            # starting together take turns.
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [self._name])
            conn.execute(self._ddl)

    def close(self) -> None:
        if self._own_pool is not None:
            self._own_pool.close()

    def destroy(self, subject: str) -> int:
        with self._connection() as conn:
            return conn.execute(self._destroy_query, [subject]).rowcount

    def _latest(self, subjects: Sequence[str]) -> list[KeyRow]:
        with self._connection() as conn, conn.cursor(row_factory=args_row(KeyRow)) as cursor:
            return cursor.execute(self._latest_query, [list(subjects)]).fetchall()

    def _insert_then_latest(self, rows: Sequence[KeyRow]) -> list[KeyRow]:
        key_ids, subjects, generations, wrapped = (
            list(column) for column in zip(*rows, strict=True)
        )
        with self._connection() as conn, conn.cursor(row_factory=args_row(KeyRow)) as cursor:
            inserted = cursor.execute(
                self._insert_query, [key_ids, subjects, generations, wrapped]
            ).fetchall()
            # A row inserted is its subject's latest. The insert waited for any concurrent
            # insert of the same key to commit, so the read that follows, a statement of its
            # own, sees whichever row won for the others.
            won = {row.subject for row in inserted}
            lost = [subject for subject in subjects if subject not in won]
            if lost:
                inserted.extend(cursor.execute(self._latest_query, [lost]).fetchall())
            return inserted

    def _by_key_id(self, key_ids: Sequence[str]) -> list[KeyRow]:
        with self._connection() as conn, conn.cursor(row_factory=args_row(KeyRow)) as cursor:
            return cursor.execute(self._by_key_id_query, [list(key_ids)]).fetchall()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as error:
            # A server restart ended every pooled connection: drop them all now rather than
            # meet them one failed call at a time.
            self._pool.check()
            raise StoreUnavailableError("the PostgreSQL data-key store is unavailable") from error
