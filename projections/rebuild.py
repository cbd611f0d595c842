"""Rebuilding the projection into fresh tables, then swapping them in atomically.

The rebuild fills a staging schema (``<schema>__rebuild``) created by the same migration as the
live tables, from the event store or from the event topic, while the live tables keep serving
checks and the consumers keep applying to them. The staging tables end with consumer offsets
for the live consumer group: where the live consumers must continue so that nothing is skipped
(records before those offsets are already in the rebuilt rows; records after them may repeat
rows, which the last-position guard makes harmless).

The swap moves, in one transaction, every live projection table out and every rebuilt table
in, so a reader sees either the old tables or the new ones, never a mix. A running consumer
notices on its next batch that the stored offsets are no longer the ones it wrote, and seeks
to them (see `consumers.runner`).
"""

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import psycopg
from psycopg import sql

from projections.store.base import Tracking
from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import EventBase, parse_event

logger = logging.getLogger(__name__)

REBUILD_BATCH = 5_000
STAGING_SUFFIX = "__rebuild"
REPLACED_SUFFIX = "__replaced"

Progress = Callable[[int], None]


class ProjectionName(StrEnum):
    """The projections a rebuild knows: today one set of tables, the consent state."""

    CONSENT = "consent"


class StoredRows(Protocol):
    """The event store as a rebuild reads it (a `ledger.store.events.LedgerStore`)."""

    def head(self) -> int: ...

    def stream_rows(
        self, *, after: int | None = None
    ) -> Iterator[tuple[int, Any, int, str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class RebuildTarget:
    """Where the live projection lives: its schema, and the consumer group and topic it follows."""

    dsn: str
    schema: str
    group: str
    topic: str

    @property
    def staging(self) -> str:
        return self.schema + STAGING_SUFFIX

    @property
    def replaced(self) -> str:
        return self.schema + REPLACED_SUFFIX


@dataclass(frozen=True, slots=True)
class RebuildResult:
    events: int
    tables: tuple[str, ...]
    offsets: Mapping[int, int]


def prepare_staging(conn: psycopg.Connection[Any], target: RebuildTarget) -> None:
    """An empty staging schema holding fresh, migrated projection tables."""
    with conn.transaction():
        conn.execute(
            sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(target.staging))
        )
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(target.staging)))
        migrate(conn, schema=target.staging)


def projection_tables(conn: psycopg.Connection[Any], schema: str) -> tuple[str, ...]:
    """The tables the projection migration created in ``schema``, in a stable order."""
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind = 'r' order by c.relname",
        (schema,),
    ).fetchall()
    return tuple(str(name) for (name,) in rows)


def apply_batches(
    conn: psycopg.Connection[Any],
    schema: str,
    batches: Iterator[list[tuple[EventBase, int]]],
    *,
    progress: Progress | None = None,
) -> int:
    """Apply each batch in its own transaction; returns how many events."""
    store = PostgresProjectionStore(conn, schema=schema)
    applied = 0
    for batch in batches:
        with store.transaction():
            store.apply(batch)
        applied += len(batch)
        if progress is not None:
            progress(len(batch))
    return applied


def store_batches(
    store: StoredRows, *, up_to: int, size: int = REBUILD_BATCH
) -> Iterator[list[tuple[EventBase, int]]]:
    """The stored events up to position ``up_to``, in ledger order, in batches."""
    batch: list[tuple[EventBase, int]] = []
    for position, _, _, _, state in store.stream_rows(after=0):
        if position > up_to:
            break
        batch.append((parse_event(state), position))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def relayed_offsets(conn: psycopg.Connection[Any], schema: str, *, up_to: int) -> dict[int, int]:
    """Per partition, the offset before which every record carries a position <= ``up_to``.

    The relay publishes in ledger order and records, per batch, the offset after the batch's
    last record in each partition it wrote to; the newest such watermark at or before
    ``up_to`` is that offset. A partition without one starts from its beginning.
    """
    rows = conn.execute(
        sql.SQL(
            "select partition, max(next_offset) from {} where position <= %s group by partition"
        ).format(sql.Identifier(schema, "relay_watermarks")),
        (up_to,),
    ).fetchall()
    return {int(partition): int(offset) for partition, offset in rows}


def rebuild_into_staging(
    conn: psycopg.Connection[Any],
    target: RebuildTarget,
    fill: Callable[[], tuple[int, Mapping[int, int]]],
) -> RebuildResult:
    """Fresh staging tables, filled by ``fill``, ending with the live group's offsets.

    ``fill`` returns how many events it applied and, per partition, where the live consumers
    must continue. Whatever group filled the staging tables, only the live group's offsets
    go live.
    """
    prepare_staging(conn, target)
    events, offsets = fill()
    staging = PostgresProjectionStore(conn, schema=target.staging)
    staging.replace_offsets(Tracking(target.group, target.topic), offsets)
    return RebuildResult(events, projection_tables(conn, target.staging), offsets)


def rebuild_from_store(
    conn: psycopg.Connection[Any],
    target: RebuildTarget,
    store: StoredRows,
    *,
    up_to: int,
    progress: Progress | None = None,
    past_dead_letters: Callable[[Mapping[int, int], Mapping[int, int]], Mapping[int, int]]
    | None = None,
) -> RebuildResult:
    """Fill the staging tables from the event store, up to position ``up_to``.

    The live consumers continue from the relay's watermarks at ``up_to``. Records after those
    that they already took and dead-lettered would be dead-lettered again: given
    ``past_dead_letters``, it is called with the watermarks and the live group's stored
    offsets, and says where to continue instead (see `consumers.topic_rebuild`).
    """

    def fill() -> tuple[int, Mapping[int, int]]:
        batches = store_batches(store, up_to=up_to)
        events = apply_batches(conn, target.staging, batches, progress=progress)
        offsets = relayed_offsets(conn, target.schema, up_to=up_to)
        if past_dead_letters is None:
            return events, offsets
        live = PostgresProjectionStore(conn, schema=target.schema)
        with live.transaction():
            taken = live.offsets(Tracking(target.group, target.topic))
        return events, past_dead_letters(offsets, taken)

    return rebuild_into_staging(conn, target, fill)


def swap(conn: psycopg.Connection[Any], target: RebuildTarget) -> tuple[str, ...]:
    """Replace the live projection tables by the rebuilt ones, in one transaction.

    Every live table is locked first, in name order, so readers and the consumers wait for the
    swap instead of seeing half of it; the replaced tables are dropped without cascade, so a
    view depending on them makes the swap fail and leaves everything as it was.
    """
    tables = projection_tables(conn, target.staging)
    if not tables:
        raise ValueError(f"nothing to swap in: schema {target.staging} holds no tables")
    live, staging, replaced = (
        sql.Identifier(name) for name in (target.schema, target.staging, target.replaced)
    )
    with conn.transaction():
        existing = set(projection_tables(conn, target.schema))
        moved_out = [table for table in tables if table in existing]
        if moved_out:
            conn.execute(
                sql.SQL("lock table {} in access exclusive mode").format(
                    sql.SQL(", ").join(sql.Identifier(target.schema, t) for t in moved_out)
                )
            )
        conn.execute(sql.SQL("create schema {}").format(replaced))
        for table in moved_out:
            conn.execute(
                sql.SQL("alter table {}.{} set schema {}").format(
                    live, sql.Identifier(table), replaced
                )
            )
        for table in tables:
            conn.execute(
                sql.SQL("alter table {}.{} set schema {}").format(
                    staging, sql.Identifier(table), live
                )
            )
        for table in moved_out:
            conn.execute(sql.SQL("drop table {}.{}").format(replaced, sql.Identifier(table)))
        conn.execute(sql.SQL("drop schema {}").format(replaced))
        conn.execute(sql.SQL("drop schema {} cascade").format(staging))
        # Objects of the migration that are not tables (functions, indexes' helpers) live on
        # in the live schema; running the migration again is safe and restores anything new.
        migrate(conn, schema=target.schema)
    logger.info("projection: %d tables swapped in for schema %s", len(tables), target.schema)
    return tables
