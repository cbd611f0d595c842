"""API keys in the embedded SQLite file."""

import sqlite3
import threading
from pathlib import Path
from typing import Any

from access.apikeys.base import DDL, ApiKeyStore

__all__ = ["SQLiteApiKeyStore"]


class SQLiteApiKeyStore(ApiKeyStore):
    """Keys in the embedded SQLite file."""

    def __init__(self, *, path: Path, table: str = "api_keys") -> None:
        super().__init__()
        self._path = path
        self._table = table
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=10.0)
            self._local.conn = conn
        return conn

    def _run(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        # The table name is ours; every value stays a bound parameter.
        statement = query.replace("{table}", self._table).replace("%s", "?")
        with conn:
            return list(conn.execute(statement, params).fetchall())

    def migrate(self) -> None:
        self._run(DDL, ())

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
