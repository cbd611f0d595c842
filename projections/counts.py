"""The aggregate counts behind the business gauges, on PostgreSQL or the embedded SQLite file.

Each is one grouped count (opted-in consents, active suppressions, open rights requests): the
rows never leave the database, and `projections.metrics.BusinessMetrics` caches the answer.
"""

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from projections.metrics import DUE_SOON_DAYS, Query, Rows

OPTED_IN = (
    "select purpose, channel, count(*) from {consent} where status = 'granted' "
    "group by purpose, channel"
)
SUPPRESSED = (
    "select reason, count(distinct subject) from {suppression} where active group by reason"
)
RIGHTS_POSTGRES = (
    "select right_name, count(*), count(*) filter (where due_at < now()), "
    "count(*) filter (where due_at >= now() and due_at < now() + make_interval(days => %s)) "
    "from {rights} where outcome is null group by right_name"
)
# julianday() reads the stored ISO text with its offset, so instants compare as instants.
RIGHTS_SQLITE = (
    "select right_name, count(*), sum(julianday(due_at) < julianday('now')), "
    "sum(julianday(due_at) >= julianday('now') and julianday(due_at) < julianday('now') + ?) "
    "from rights_requests where outcome is null group by right_name"
)


def postgres_counts(dsn: str, *, schema: str) -> Query:
    """The counts from the PostgreSQL projection; one short connection per refresh."""

    def table(name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))

    opted_in = sql.SQL(OPTED_IN).format(consent=table("consent_state"))
    suppressed = sql.SQL(SUPPRESSED).format(suppression=table("suppression"))
    rights = sql.SQL(RIGHTS_POSTGRES).format(rights=table("rights_requests"))

    def query() -> tuple[Rows, Rows, Rows]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return (
                conn.execute(opted_in).fetchall(),
                conn.execute(suppressed).fetchall(),
                conn.execute(rights, (DUE_SOON_DAYS,)).fetchall(),
            )

    return query


def sqlite_counts(path: Path) -> Query:
    """The counts from the embedded projection in the SQLite file at ``path``."""

    def query() -> tuple[Rows, Rows, Rows]:
        conn = sqlite3.connect(path, timeout=5.0)
        try:
            rows: list[list[tuple[Any, ...]]] = [
                conn.execute(OPTED_IN.format(consent="consent_state")).fetchall(),
                conn.execute(SUPPRESSED.format(suppression="suppression")).fetchall(),
                conn.execute(RIGHTS_SQLITE, (DUE_SOON_DAYS,)).fetchall(),
            ]
        finally:
            conn.close()
        return rows[0], rows[1], rows[2]

    return query
