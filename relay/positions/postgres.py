"""Tracked positions in PostgreSQL, in the ledger's schema."""

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from ledger.store.pgddl import ddl_transaction

__all__ = ["PostgresPositions"]


class PostgresPositions:
    """Positions in PostgreSQL, in the ledger's schema."""

    def __init__(self, *, dsn: str, schema: str = "public") -> None:
        self._dsn = dsn
        self._table = sql.Identifier(schema, "follower_positions")
        self._watermarks = sql.Identifier(schema, "relay_watermarks")
        self._conn: psycopg.Connection[Any] | None = None
        with ddl_transaction(self._connection()) as conn:
            conn.execute(
                sql.SQL(
                    "create table if not exists {} "
                    "(name text primary key, position bigint not null)"
                ).format(self._table)
            )
            conn.execute(
                sql.SQL(
                    "create table if not exists {} (position bigint not null, "
                    "partition integer not null, next_offset bigint not null, "
                    "primary key (position, partition))"
                ).format(self._watermarks)
            )

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, a new one if the last was closed or broken.

        A server restart or a lost network ends a connection for good: the statement on it
        fails (the caller retries later) and the next call connects again.
        """
        if self._conn is not None and self._conn.closed:
            # Broken (psycopg marks it closed too): release its libpq state now, not when the
            # object is collected.
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = psycopg.connect(self._dsn, autocommit=True)
        return self._conn

    def _run(self, statement: sql.Composed, params: tuple[Any, ...]) -> list[Any]:
        cursor = self._connection().execute(statement, params)
        return cursor.fetchall() if cursor.description else []

    def load(self, name: str) -> int:
        rows = self._run(
            sql.SQL("select position from {} where name = %s").format(self._table), (name,)
        )
        return int(rows[0][0]) if rows else 0

    def save(self, name: str, position: int, watermark: Mapping[int, int] | None = None) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "insert into {} (name, position) values (%s, %s) "
                    "on conflict (name) do update set position = excluded.position"
                ).format(self._table),
                (name, position),
            )
            for partition, offset in (watermark or {}).items():
                conn.execute(
                    sql.SQL(
                        "insert into {} (position, partition, next_offset) values (%s, %s, %s) "
                        "on conflict (position, partition) do update "
                        "set next_offset = excluded.next_offset"
                    ).format(self._watermarks),
                    (position, partition, offset),
                )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
