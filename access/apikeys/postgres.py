"""API keys in PostgreSQL, in the ledger's schema."""

import threading
from typing import Any

import psycopg
from psycopg import sql

from access.apikeys.base import DDL, ApiKeyStore
from ledger.store.pgddl import ddl_transaction

__all__ = ["PostgresApiKeyStore"]


class PostgresApiKeyStore(ApiKeyStore):
    """Keys in ``schema.api_keys`` in PostgreSQL."""

    def __init__(self, *, dsn: str, schema: str = "public", table: str = "api_keys") -> None:
        super().__init__()
        self._dsn = dsn
        self._table = sql.Identifier(schema, table)
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_lock = threading.Lock()

    def _run(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        statement = sql.SQL(query).format(table=self._table)
        with self._conn_lock:
            for attempt in (1, 2):
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._dsn, autocommit=True)
                try:
                    cursor = self._conn.execute(statement, params)
                    return list(cursor.fetchall()) if cursor.description else []
                except psycopg.OperationalError:
                    # The kept connection died with the server (a restart): once more on a
                    # new one. Statements here are reads or keyed writes, safe to repeat.
                    if not self._conn.closed or attempt == 2:
                        raise
            raise AssertionError  # the loop returns or raises

    def migrate(self) -> None:
        with self._conn_lock:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True)
            with ddl_transaction(self._conn) as conn:
                conn.execute(sql.SQL(DDL).format(table=self._table))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
