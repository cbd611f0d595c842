"""Where the sealed Merkle tree lives: leaves, perfect-subtree nodes and signed checkpoints.

Three append-only tables next to the events, in SQLite or PostgreSQL:
``audit_leaves (idx, position, hash)`` maps each leaf to the ledger position it seals;
``audit_nodes (level, idx, hash)`` holds every perfect subtree of level >= 1 (level 0 is the
leaves); ``audit_checkpoints (size, root, note, created_at)`` keeps every signed checkpoint.
"""

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ledger.audit.tlog.merkle import NodeKey
from ledger.store.pgddl import ddl_transaction

SQLITE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    position: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: datetime


class TreeStore(ABC):
    """The storage of the audit tree; `get_nodes` makes it a `ledger.audit.tlog.NodeStore`."""

    @abstractmethod
    def migrate(self) -> None:
        """Create the tables if missing (safe to run twice)."""

    @abstractmethod
    def size(self) -> int:
        """How many leaves are sealed."""

    @abstractmethod
    def last_position(self) -> int:
        """The ledger position of the newest leaf (0 when none)."""

    @abstractmethod
    def get_nodes(self, keys: Sequence[NodeKey], /) -> dict[NodeKey, bytes]:
        """Stored hashes of these nodes (level 0: the leaves); missing ones are left out."""

    @abstractmethod
    def append(self, leaves: Sequence[Leaf], nodes: Mapping[NodeKey, bytes]) -> None:
        """Store new leaves and the new perfect nodes above them in one transaction."""

    @abstractmethod
    def leaves(self, *, start: int, limit: int) -> list[Leaf]:
        """Leaves ``start``, ``start + 1``, ... in order."""

    @abstractmethod
    def leaf_indices(self, positions: Sequence[int]) -> dict[int, int]:
        """The leaf index of each sealed position."""

    @abstractmethod
    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    @abstractmethod
    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint, smallest tree first."""

    @abstractmethod
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


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

    def get_nodes(self, keys: Sequence[NodeKey], /) -> dict[NodeKey, bytes]:
        found: dict[NodeKey, bytes] = {}
        leaves = [idx for level, idx in keys if level == 0]
        upper = [(level, idx) for level, idx in keys if level > 0]
        with self._cursor() as cursor:
            if leaves:
                marks = ",".join("?" * len(leaves))
                query = f"select idx, hash from audit_leaves where idx in ({marks})"  # noqa: S608
                for idx, digest in cursor.execute(query, leaves):
                    found[(0, idx)] = bytes(digest)
            if upper:
                marks = ",".join("(?,?)" for _ in upper)
                query = (
                    "select level, idx, hash from audit_nodes "  # noqa: S608 - placeholders only
                    f"where (level, idx) in (values {marks})"
                )
                flat = [value for key in upper for value in key]
                for level, idx, digest in cursor.execute(query, flat):
                    found[(level, idx)] = bytes(digest)
        return found

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


class PostgresTreeStore(TreeStore):
    """The tree in PostgreSQL, next to the event table (one connection: one sealer)."""

    def __init__(self, *, dsn: str, schema: str = "public") -> None:
        self._dsn = dsn
        self._schema = schema
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _t(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self._schema), sql.Identifier(name))

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, in a transaction; a new one if the last was closed or broken.

        A server restart or a lost network ends a connection for good: the transaction on it
        fails, uncommitted, and the next call connects again.
        """
        with self._lock:
            if self._conn is not None and self._conn.closed:
                # Broken (psycopg marks it closed too): release its libpq state now, not when
                # the object is collected.
                self._conn.close()
                self._conn = None
            if self._conn is None:
                self._conn = psycopg.connect(self._dsn)
            conn = self._conn
            with conn.transaction():
                yield conn

    def migrate(self) -> None:
        statements = [
            "create table if not exists {leaves} (idx bigint primary key, "
            "position bigint not null unique, hash bytea not null)",
            "create table if not exists {nodes} (level integer not null, idx bigint not null, "
            "hash bytea not null, primary key (level, idx))",
            "create table if not exists {checkpoints} (size bigint primary key, "
            "root bytea not null, note text not null, created_at timestamptz not null)",
        ]
        with self._connection() as conn, ddl_transaction(conn):
            for statement in statements:
                conn.execute(
                    sql.SQL(statement).format(
                        leaves=self._t("audit_leaves"),
                        nodes=self._t("audit_nodes"),
                        checkpoints=self._t("audit_checkpoints"),
                    )
                )

    def size(self) -> int:
        with self._connection() as conn:
            row = conn.execute(
                sql.SQL("select max(idx) from {}").format(self._t("audit_leaves"))
            ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def last_position(self) -> int:
        with self._connection() as conn:
            row = conn.execute(
                sql.SQL("select position from {} order by idx desc limit 1").format(
                    self._t("audit_leaves")
                )
            ).fetchone()
        return 0 if row is None else int(row[0])

    def get_nodes(self, keys: Sequence[NodeKey], /) -> dict[NodeKey, bytes]:
        found: dict[NodeKey, bytes] = {}
        leaves = [idx for level, idx in keys if level == 0]
        upper = [(level, idx) for level, idx in keys if level > 0]
        with self._connection() as conn:
            if leaves:
                rows = conn.execute(
                    sql.SQL("select idx, hash from {} where idx = any(%b)").format(
                        self._t("audit_leaves")
                    ),
                    [leaves],
                ).fetchall()
                found.update({(0, int(i)): bytes(h) for i, h in rows})
            if upper:
                rows = conn.execute(
                    sql.SQL(
                        "select n.level, n.idx, n.hash from {} n "
                        "join unnest(%b::integer[], %b::bigint[]) as k(level, idx) "
                        "on n.level = k.level and n.idx = k.idx"
                    ).format(self._t("audit_nodes")),
                    [[k[0] for k in upper], [k[1] for k in upper]],
                ).fetchall()
                found.update({(int(lv), int(i)): bytes(h) for lv, i, h in rows})
        return found

    def append(self, leaves: Sequence[Leaf], nodes: Mapping[NodeKey, bytes]) -> None:
        upper = [(level, idx, digest) for (level, idx), digest in nodes.items() if level > 0]
        with self._connection() as conn:
            conn.execute(
                sql.SQL(
                    "insert into {} (idx, position, hash) "
                    "select * from unnest(%b::bigint[], %b::bigint[], %b::bytea[])"
                ).format(self._t("audit_leaves")),
                [
                    [leaf.index for leaf in leaves],
                    [leaf.position for leaf in leaves],
                    [leaf.hash for leaf in leaves],
                ],
            )
            if upper:
                conn.execute(
                    sql.SQL(
                        "insert into {} (level, idx, hash) "
                        "select * from unnest(%b::integer[], %b::bigint[], %b::bytea[])"
                    ).format(self._t("audit_nodes")),
                    [[u[0] for u in upper], [u[1] for u in upper], [u[2] for u in upper]],
                )

    def leaves(self, *, start: int, limit: int) -> list[Leaf]:
        with self._connection() as conn:
            rows = conn.execute(
                sql.SQL(
                    "select idx, position, hash from {} where idx >= %s order by idx limit %s"
                ).format(self._t("audit_leaves")),
                [start, limit],
            ).fetchall()
        return [Leaf(int(i), int(p), bytes(h)) for i, p, h in rows]

    def leaf_indices(self, positions: Sequence[int]) -> dict[int, int]:
        if not positions:
            return {}
        with self._connection() as conn:
            rows = conn.execute(
                sql.SQL("select position, idx from {} where position = any(%b)").format(
                    self._t("audit_leaves")
                ),
                [list(positions)],
            ).fetchall()
        return {int(p): int(i) for p, i in rows}

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._connection() as conn:
            conn.execute(
                sql.SQL(
                    "insert into {} (size, root, note, created_at) values (%s, %s, %s, %s)"
                ).format(self._t("audit_checkpoints")),
                [checkpoint.size, checkpoint.root, checkpoint.note, checkpoint.created_at],
            )

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._connection() as conn:
            rows = conn.execute(
                sql.SQL("select size, root, note, created_at from {} order by size").format(
                    self._t("audit_checkpoints")
                )
            ).fetchall()
        return [StoredCheckpoint(int(s), bytes(r), str(n), c) for s, r, n, c in rows]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._connection() as conn:
            row = conn.execute(
                sql.SQL(
                    "select size, root, note, created_at from {} order by size desc limit 1"
                ).format(self._t("audit_checkpoints"))
            ).fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def now_utc() -> datetime:
    return datetime.now(UTC)
