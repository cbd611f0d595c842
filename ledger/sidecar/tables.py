"""Running one query text on the embedded SQLite file or in the PostgreSQL schema."""

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ledger.store.pgddl import ddl_transaction

Row = tuple[Any, ...]


def as_text(at: datetime) -> str:
    """A time as the side tables keep it, text that sorts as it compares (both databases): UTC,
    microseconds, always the same width."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_NAME = re.compile(r"\{([a-z_]+)\}")


class Tables(ABC):
    """Runs statements over a set of named tables; thread-safe."""

    @abstractmethod
    def run(self, query: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement in its own transaction; the rows it returns."""

    @abstractmethod
    def run_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row, all in one transaction."""

    @abstractmethod
    def migrate(self, ddl: Sequence[str]) -> None:
        """Run each DDL statement (``create ... if not exists``), once per database at a time."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteTables(Tables):
    """Tables in the embedded SQLite file, one connection per thread."""

    def __init__(self, *, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=10.0, check_same_thread=False)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def run(self, query: str, params: Sequence[Any] = ()) -> list[Row]:
        statement = _NAME.sub(r"\1", query).replace("%s", "?")
        conn = self._conn()
        with conn:
            return list(conn.execute(statement, tuple(params)).fetchall())

    def run_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        statement = _NAME.sub(r"\1", query).replace("%s", "?")
        conn = self._conn()
        with conn:
            conn.executemany(statement, [tuple(row) for row in rows])

    def migrate(self, ddl: Sequence[str]) -> None:
        for statement in ddl:
            self.run(statement)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


class PostgresTables(Tables):
    """Tables in the ledger's PostgreSQL schema, on one connection (statements are short)."""

    def __init__(self, *, dsn: str, schema: str = "public") -> None:
        self._dsn = dsn
        self._schema = schema
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._composed: dict[str, sql.Composed] = {}

    def _statement(self, query: str) -> sql.Composed:
        composed = self._composed.get(query)
        if composed is None:
            names = {name: sql.Identifier(self._schema, name) for name in _NAME.findall(query)}
            composed = sql.SQL(query).format(**names)
            self._composed[query] = composed
        return composed

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
        return self._conn

    def run(self, query: str, params: Sequence[Any] = ()) -> list[Row]:
        statement = self._statement(query)
        with self._lock:
            try:
                cursor = self._connection().execute(statement, tuple(params))
            except psycopg.OperationalError:
                # The connection died with a server restart: statements here are keyed
                # writes or reads, safe to run once more on a new one.
                if self._conn is not None and not self._conn.closed:
                    raise
                cursor = self._connection().execute(statement, tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def run_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        statement = self._statement(query)
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, [tuple(row) for row in rows])

    def migrate(self, ddl: Sequence[str]) -> None:
        with self._lock, ddl_transaction(self._connection()) as conn:
            for statement in ddl:
                conn.execute(self._statement(statement))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


class SideStore:
    """A store over some side tables: ``DDL`` makes them, `migrate` runs it."""

    DDL: tuple[str, ...] = ()

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def migrate(self) -> None:
        self._tables.migrate(self.DDL)

    def close(self) -> None:
        self._tables.close()
