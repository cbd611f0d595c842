"""The audit tree in PostgreSQL, in the ledger's schema next to the event table."""

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ledger.audit.store.base import Leaf, SealedPair, StoredCheckpoint, TreeStore
from ledger.audit.store.pgwalk import postgres_sealed_pairs
from ledger.audit.tlog.merkle import NodeKey
from ledger.store.events import LedgerStore
from ledger.store.pgddl import ddl_transaction


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

    def _read_nodes(
        self, leaves: Sequence[int], upper: Sequence[NodeKey]
    ) -> Iterable[tuple[int, int, bytes]]:
        query = sql.SQL(
            "select 0, idx, hash from {leaves} where idx = any(%b) union all "
            "select n.level, n.idx, n.hash from {nodes} n "
            "join unnest(%b::integer[], %b::bigint[]) as k(level, idx) "
            "on n.level = k.level and n.idx = k.idx"
        ).format(leaves=self._t("audit_leaves"), nodes=self._t("audit_nodes"))
        with self._connection() as conn:
            return conn.execute(
                query, [list(leaves), [k[0] for k in upper], [k[1] for k in upper]]
            ).fetchall()

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

    def sealed_pairs(self, store: LedgerStore) -> Iterator[SealedPair]:
        """When the events are in this database, each leaf's input is built by PostgreSQL
        and fetched ahead on a second connection (`postgres_sealed_pairs`)."""
        location = store.sql_location()
        if location is None:
            return super().sealed_pairs(store)
        return postgres_sealed_pairs(self._dsn, sql.Identifier(*location), self._t("audit_leaves"))

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
