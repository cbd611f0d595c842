"""The projection store on PostgreSQL: migration, set-based batches, consumer offsets, reads.

A batch's writes are copied into per-session staging tables and applied by round (see
`projections.store.writes.schedule`): one statement per kind of write and round, reading the
round's staged rows. The few writes past the last round (one person with many events in the
batch) run the same statements on one bound row each, pipelined.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from importlib.resources import files
from typing import Any, Self
from uuid import UUID

import psycopg
from psycopg import sql

from ledger.domain.rules import Facts
from projections.errors import ProjectionUnavailableError
from projections.facts import ProjectionReader
from projections.metrics import DUE_SOON_DAYS, Rows
from projections.rights import OpenRequest
from projections.store.base import (
    OPEN_REQUESTS,
    OPTED_IN,
    REQUEST_SUBJECT,
    SUPPRESSED,
    ProjectionStore,
    Tracking,
)
from projections.store.rounds import MAX_ROUNDS, Schedule, schedule_batch
from projections.store.writes import WRITES, Op, Write
from schemas import EventBase

RIGHTS_COUNTS = (
    "select right_name, count(*), count(*) filter (where due_at < now()), "
    "count(*) filter (where due_at >= now() and due_at < now() + make_interval(days => %s)) "
    "from {rights} where outcome is null group by right_name"
)
_OFFSETS = "select partition, next_offset from {} where consumer_group = %s and topic = %s"
_SAVE_OFFSET = (
    "insert into {} (consumer_group, topic, partition, next_offset) values (%s, %s, %s, %s) "
    "on conflict (consumer_group, topic, partition) do update set next_offset = "
    "excluded.next_offset"
)


@contextmanager
def _translated() -> Iterator[None]:
    """psycopg's errors as `ProjectionUnavailableError`, for the readers outside the feed (the
    consumers handle psycopg's own errors: they reconnect and seek)."""
    try:
        yield
    except psycopg.Error as error:
        raise ProjectionUnavailableError(type(error).__name__) from error


def migrate(conn: psycopg.Connection[Any], *, schema: str) -> None:
    """Create the projection tables in ``schema`` if missing (safe to run twice, and at once).

    Holds the advisory lock every process of the ledger takes for its DDL: ``create table if
    not exists`` fails when another process creates the same table.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('consent-ledger-ddl'))")
        for resource in sorted(
            files("projections").joinpath("sql").iterdir(), key=lambda r: r.name
        ):
            # Only the numbered files are migrations; the staging tables are per session.
            if resource.name.endswith(".sql") and resource.name[0].isdigit():
                ddl = resource.read_text(encoding="utf-8")
                conn.execute(sql.SQL(ddl).format(schema=sql.Identifier(schema)))


class PostgresProjectionStore(ProjectionStore):
    """The projection tables in one schema, on the caller's connection (closed by `close`)."""

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str, max_rounds: int = MAX_ROUNDS
    ) -> None:
        self.conn = conn
        self.schema = schema
        self._max_rounds = max_rounds
        # Composing SQL costs more than sending it: each distinct statement is built once.
        self._composed: dict[tuple[Write, bool], sql.Composed] = {}
        self._reader: ProjectionReader | None = None

    @classmethod
    def connect(cls, dsn: str, *, schema: str, autocommit: bool = False) -> Self:
        with _translated():
            return cls(psycopg.connect(dsn, autocommit=autocommit), schema=schema)

    def table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def migrate(self) -> None:
        migrate(self.conn, schema=self.schema)

    def transaction(self) -> AbstractContextManager[psycopg.Transaction]:
        return self.conn.transaction()

    def _statement(self, write: Write, *, staged: bool) -> sql.Composed:
        """The statement of ``write`` on the rows of one staged round, or on one bound row."""
        composed = self._composed.get((write, staged))
        if composed is None:
            cols = sql.SQL(", ").join(map(sql.Identifier, write.columns))
            if staged:
                rows = sql.SQL("(select {} from {} where round = %(round)s) as s").format(
                    cols, _stage(write)
                )
            else:
                rows = sql.SQL("(select {}) as s").format(
                    sql.SQL(", ").join(
                        sql.SQL("{}::{} as {}").format(
                            sql.Placeholder(column), sql.SQL(kind), sql.Identifier(column)
                        )
                        for column, kind in zip(write.columns, write.types, strict=True)
                    )
                )
            composed = sql.SQL(write.statement).format(
                t=self.table(write.table), rows=rows, cols=cols
            )
            self._composed[(write, staged)] = composed
        return composed

    def apply(self, events: Sequence[tuple[EventBase, int]]) -> None:
        plan = schedule_batch(events, self._max_rounds)
        with self.conn.cursor() as cursor:
            if plan.staged:
                self._apply_rounds(cursor, plan)
            if plan.rest:
                self._apply_each(cursor, plan.rest)

    def _apply_rounds(self, cursor: psycopg.Cursor[Any], plan: Schedule) -> None:
        cursor.execute(_stage_ddl())
        for write, rows in plan.staged.items():
            with cursor.copy(
                sql.SQL("copy {} from stdin (format binary)").format(_stage(write))
            ) as copy:
                copy.set_types(["int4", *write.types])
                for row in rows:
                    copy.write_row(row)
        for number in range(1, max(plan.rounds.values()) + 1):
            for write in WRITES:
                if plan.rounds.get(write, 0) >= number:
                    cursor.execute(self._statement(write, staged=True), {"round": number})
        # Another batch may follow in the same transaction.
        cursor.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(map(_stage, plan.staged))))

    def _apply_each(self, cursor: psycopg.Cursor[Any], ops: Sequence[Op]) -> None:
        with self.conn.pipeline():
            for write, row, _, _ in ops:
                cursor.execute(
                    self._statement(write, staged=False),
                    dict(zip(write.columns, row, strict=True)),
                )

    def offsets(self, tracking: Tracking, *, lock: bool = False) -> dict[int, int]:
        query = _OFFSETS + (" for update" if lock else "")
        rows = self.conn.execute(
            sql.SQL(query).format(self.table("consumer_offsets")),
            (tracking.group, tracking.topic),
        ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def save_offsets(self, tracking: Tracking, offsets: Mapping[int, int]) -> None:
        with self.conn.cursor() as cursor:
            for partition, offset in offsets.items():
                cursor.execute(
                    sql.SQL(_SAVE_OFFSET).format(self.table("consumer_offsets")),
                    (tracking.group, tracking.topic, partition, offset),
                )

    def replace_offsets(self, tracking: Tracking, offsets: Mapping[int, int]) -> None:
        """Make these the only offsets stored for the topic, in a transaction of their own."""
        with self.conn.transaction():
            table = self.table("consumer_offsets")
            self.conn.execute(
                sql.SQL("delete from {} where topic = %s").format(table), (tracking.topic,)
            )
            self.save_offsets(tracking, dict(sorted(offsets.items())))

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        if self._reader is None:
            self._reader = ProjectionReader(self.conn, schema=self.schema)
        return self._reader.facts(subject, purpose, channel)

    def open_requests(self) -> list[OpenRequest]:
        query = sql.SQL(OPEN_REQUESTS + " order by due_at, request_id").format(
            rights=self.table("rights_requests")
        )
        with _translated():
            rows = self.conn.execute(query).fetchall()
        return [OpenRequest(str(r[0]), r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def request_subject(self, request_id: str) -> str | None:
        query = sql.SQL(REQUEST_SUBJECT).format(
            rights=self.table("rights_requests"), param=sql.Placeholder()
        )
        with _translated():
            row = self.conn.execute(query, (UUID(request_id),)).fetchone()
        return None if row is None else str(row[0])

    def counts(self) -> tuple[Rows, Rows, Rows]:
        execute = self.conn.execute
        with _translated():
            return (
                execute(sql.SQL(OPTED_IN).format(consent=self.table("consent_state"))).fetchall(),
                execute(
                    sql.SQL(SUPPRESSED).format(suppression=self.table("suppression"))
                ).fetchall(),
                execute(
                    sql.SQL(RIGHTS_COUNTS).format(rights=self.table("rights_requests")),
                    (DUE_SOON_DAYS,),
                ).fetchall(),
            )

    def close(self) -> None:
        self.conn.close()


def _stage(write: Write) -> sql.Composable:
    return sql.Identifier("pg_temp", f"projection_stage_{write.name}")


@cache
def _stage_ddl() -> str:
    return files("projections").joinpath("sql", "stage.sql").read_text(encoding="utf-8")
