"""Tracked positions in the embedded SQLite file."""

import sqlite3
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SQLITE_TIMEOUT_S", "SQLitePositions"]

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
