"""Open and overdue data-subject rights requests, read from the projection's ``rights_requests``."""

import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from projections.metrics import RIGHTS_REQUESTS_OPEN, RIGHTS_REQUESTS_OVERDUE
from schemas import Right


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """A rights request still waiting for its answer."""

    request_id: str
    subject: str
    right: str
    received_at: datetime | None
    due_at: datetime
    extended: bool

    def overdue(self, now: datetime) -> bool:
        return self.due_at < now

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "subject": self.subject,
            "right": self.right,
            "received_at": None if self.received_at is None else self.received_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "extended": self.extended,
            "overdue": self.overdue(now),
        }


def open_requests_postgres(conn: psycopg.Connection[Any], *, schema: str) -> list[OpenRequest]:
    """The open requests in the PostgreSQL projection, soonest due first."""
    rows = conn.execute(
        sql.SQL(
            "select request_id, subject, right_name, received_at, due_at, extended from {}.{} "
            "where outcome is null order by due_at, request_id"
        ).format(sql.Identifier(schema), sql.Identifier("rights_requests"))
    ).fetchall()
    return [OpenRequest(str(r[0]), r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]


def open_requests_sqlite(conn: sqlite3.Connection) -> list[OpenRequest]:
    """The open requests in the embedded projection, soonest due first."""
    rows = conn.execute(
        "select request_id, subject, right_name, received_at, due_at, extended "
        "from rights_requests where outcome is null"
    ).fetchall()
    requests = [
        OpenRequest(
            str(r[0]),
            r[1],
            r[2],
            None if r[3] is None else datetime.fromisoformat(r[3]),
            datetime.fromisoformat(r[4]),
            bool(r[5]),
        )
        for r in rows
    ]
    # Sorted here: ISO text of different offsets would not sort as instants in SQL.
    return sorted(requests, key=lambda r: (r.due_at, r.request_id))


def summarise(requests: list[OpenRequest], *, now: datetime) -> dict[str, dict[str, int]]:
    """Open and overdue counts by right (every right listed), and set the metrics to them."""
    opened = Counter(r.right for r in requests)
    overdue = Counter(r.right for r in requests if r.overdue(now))
    summary = {right.value: {"open": opened[right], "overdue": overdue[right]} for right in Right}
    for right, counts in summary.items():
        RIGHTS_REQUESTS_OPEN.labels(right=right).set(counts["open"])
        RIGHTS_REQUESTS_OVERDUE.labels(right=right).set(counts["overdue"])
    return summary
