"""Tracked positions of the ledger's followers (the relay), stored next to the events.

With its position the relay records a watermark per published batch: for each Kafka partition
the batch wrote to, the offset after its last record. A reader that knows how far consumers got
in each partition can then tell which ledger position the projections cover.
"""

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ledger.store.pgddl import ddl_transaction

SQLITE_TIMEOUT_S = 10.0


class SQLitePositions:
    """Positions in the embedded SQLite file."""

    def __init__(self, *, path: Path) -> None:
        self._path = path
        with self._connect() as conn:
            conn.execute(
                "create table if not exists follower_positions "
                "(name text primary key, position integer not null)"
            )
            conn.execute(
                "create table if not exists relay_watermarks (position integer not null, "
                "partition integer not null, next_offset integer not null, "
                "primary key (position, partition))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=SQLITE_TIMEOUT_S)

    def close(self) -> None:
        """Nothing to release: each call opens and closes its own connection."""

    def load(self, name: str) -> int:
        with self._connect() as conn:
            row = conn.execute(
                "select position from follower_positions where name = ?", (name,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def save(self, name: str, position: int, watermark: Mapping[int, int] | None = None) -> None:
        with self._connect() as conn:
            conn.execute(
                "insert into follower_positions (name, position) values (?, ?) "
                "on conflict (name) do update set position = excluded.position",
                (name, position),
            )
            conn.executemany(
                "insert or replace into relay_watermarks (position, partition, next_offset) "
                "values (?, ?, ?)",
                [(position, partition, offset) for partition, offset in (watermark or {}).items()],
            )


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
