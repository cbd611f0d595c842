"""The audit tree in the embedded SQLite file, next to the events it seals."""

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.audit.store.base import Leaf, StoredCheckpoint, TreeStore
from ledger.audit.tlog.merkle import NodeKey

SQLITE_TIMEOUT_S = 10.0

_SQLITE_DDL = """
create table if not exists audit_leaves (
    idx integer primary key, position integer not null unique, hash blob not null
);
create table if not exists audit_nodes (
    level integer not null, idx integer not null, hash blob not null, primary key (level, idx)
);
create table if not exists audit_checkpoints (
    size integer primary key, root blob not null, note text not null, created_at text not null
);
"""


class SQLiteTreeStore(TreeStore):
    """The tree in the embedded SQLite file."""

    def __init__(self, *, path: Path) -> None:
        self._path = path
        self._local = threading.local()

    @contextmanager
    def _cursor(self, *, write: bool = False) -> Iterator[sqlite3.Cursor]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=SQLITE_TIMEOUT_S, isolation_level=None)
            self._local.conn = conn
        cursor = conn.cursor()
        if write:
            cursor.execute("begin immediate")
        try:
            yield cursor
        except BaseException:
            if write:
                cursor.execute("rollback")
            raise
        else:
            if write:
                cursor.execute("commit")
        finally:
            cursor.close()

    def migrate(self) -> None:
        with self._cursor() as cursor:
            cursor.executescript(_SQLITE_DDL)

    def size(self) -> int:
        with self._cursor() as cursor:
            row = cursor.execute("select max(idx) from audit_leaves").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def last_position(self) -> int:
        with self._cursor() as cursor:
            row = cursor.execute(
                "select position from audit_leaves order by idx desc limit 1"
            ).fetchone()
        return 0 if row is None else int(row[0])

    def _read_nodes(
        self, leaves: Sequence[int], upper: Sequence[NodeKey]
    ) -> Iterable[tuple[int, int, bytes]]:
        rows: list[tuple[int, int, bytes]] = []
        with self._cursor() as cursor:
            if leaves:
                marks = ",".join("?" * len(leaves))
                query = f"select 0, idx, hash from audit_leaves where idx in ({marks})"  # noqa: S608
                rows.extend(cursor.execute(query, leaves))
            if upper:
                marks = ",".join("(?,?)" for _ in upper)
                query = (
                    "select level, idx, hash from audit_nodes "  # noqa: S608 - placeholders only
                    f"where (level, idx) in (values {marks})"
                )
                rows.extend(cursor.execute(query, [value for key in upper for value in key]))
        return rows

    def append(self, leaves: Sequence[Leaf], nodes: Mapping[NodeKey, bytes]) -> None:
        with self._cursor(write=True) as cursor:
            cursor.executemany(
                "insert into audit_leaves (idx, position, hash) values (?, ?, ?)",
                [(leaf.index, leaf.position, leaf.hash) for leaf in leaves],
            )
            cursor.executemany(
                "insert into audit_nodes (level, idx, hash) values (?, ?, ?)",
                [(level, idx, digest) for (level, idx), digest in nodes.items() if level > 0],
            )

    def leaves(self, *, start: int, limit: int) -> list[Leaf]:
        with self._cursor() as cursor:
            rows = cursor.execute(
                "select idx, position, hash from audit_leaves where idx >= ? order by idx limit ?",
                (start, limit),
            ).fetchall()
        return [Leaf(int(i), int(p), bytes(h)) for i, p, h in rows]

    def leaf_indices(self, positions: Sequence[int]) -> dict[int, int]:
        if not positions:
            return {}
        marks = ",".join("?" * len(positions))
        query = f"select position, idx from audit_leaves where position in ({marks})"  # noqa: S608
        with self._cursor() as cursor:
            return {int(p): int(i) for p, i in cursor.execute(query, list(positions))}

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._cursor(write=True) as cursor:
            cursor.execute(
                "insert into audit_checkpoints (size, root, note, created_at) values (?, ?, ?, ?)",
                (
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.note,
                    checkpoint.created_at.isoformat(),
                ),
            )

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._cursor() as cursor:
            rows = cursor.execute(
                "select size, root, note, created_at from audit_checkpoints order by size"
            ).fetchall()
        return [_sqlite_checkpoint(row) for row in rows]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._cursor() as cursor:
            row = cursor.execute(
                "select size, root, note, created_at from audit_checkpoints "
                "order by size desc limit 1"
            ).fetchone()
        return None if row is None else _sqlite_checkpoint(row)

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _sqlite_checkpoint(row: Any) -> StoredCheckpoint:
    size, root, note, created_at = row
    return StoredCheckpoint(int(size), bytes(root), str(note), datetime.fromisoformat(created_at))
