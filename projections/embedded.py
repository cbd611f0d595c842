"""The embedded feed: the same projection, in the ledger's SQLite file, fed from the store itself.

In embedded mode there is no Kafka: the feed polls the store's notification log after its
position and applies each batch with the same `ProjectionWriter` as the consumers, writing the
rows and its new position in one SQLite transaction. Being fed in ledger order from the store,
the projection covers exactly its position, which is what the checker waits for.
"""

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

from ledger.domain.rules import ConsentFacts, Facts, PolicyFacts, PurposeFacts, SuppressionFacts
from projections.checker import Checker, CheckerConfig
from projections.metrics import observe_unsubscribes
from projections.writer import ProjectionWriter
from schemas import EventBase, parse_event

logger = logging.getLogger(__name__)

FEED_NAME = "embedded"
FEED_BATCH = 2_000
SQLITE_TIMEOUT_S = 10.0


class StoredRow(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def state(self) -> bytes: ...


class EventSource(Protocol):
    """The store's notification log, as the feed reads it (a `ledger.store.events.LedgerStore`)."""

    def notifications(self, *, after: int, limit: int) -> Sequence[StoredRow]: ...

    def head(self) -> int: ...


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class EmbeddedProjection:
    """The projection tables in the embedded SQLite file, and the feed that fills them."""

    def __init__(self, *, path: Path) -> None:
        self._path = path
        self._writer = ProjectionWriter(schema=None)
        self._local = threading.local()
        ddl = (files("projections") / "sqlite" / "schema.sql").read_text(encoding="utf-8")
        self._tables = tuple(re.findall(r"create table if not exists (\w+)", ddl))
        with self._connection() as conn:
            conn.executescript(ddl)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=SQLITE_TIMEOUT_S)
            self._local.conn = conn
        return conn

    def position(self) -> int:
        row = (
            self._connection()
            .execute("select position from projection_position where name = ?", (FEED_NAME,))
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def feed_once(self, store: EventSource, *, limit: int = FEED_BATCH) -> int:
        """Apply the next events of the store; returns how many."""
        rows = store.notifications(after=self.position(), limit=limit)
        if not rows:
            return 0
        conn = self._connection()
        with conn:
            events = self._apply(conn, rows)
        observe_unsubscribes(events)
        return len(rows)

    def _apply(self, conn: sqlite3.Connection, rows: Sequence[StoredRow]) -> list[EventBase]:
        """Apply ``rows`` and move the feed's position to the last, in the caller's transaction."""
        events = [parse_event(row.state) for row in rows]
        for row, event in zip(rows, events, strict=True):
            for query, params in self._writer.statements(event, row.id):
                conn.execute(str(query), params)
        conn.execute(
            "insert into projection_position (name, position) values (?, ?) "
            "on conflict (name) do update set position = excluded.position",
            (FEED_NAME, rows[-1].id),
        )
        return events

    def follow(self, store: EventSource, stop: threading.Event, *, poll_s: float = 0.05) -> None:
        """Feed until ``stop``; a rebuild holding the file's write lock only delays it."""
        while not stop.is_set():
            try:
                fed = self.feed_once(store)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):
                    raise
                logger.info("embedded feed: the projection is locked (rebuild?), waiting")
                fed = 0
            if not fed:
                stop.wait(poll_s)

    def rebuild(self, store: EventSource, *, progress: Callable[[int], None] | None = None) -> int:
        """Re-apply every stored event to emptied tables, in one transaction; returns the count.

        Readers keep seeing the old rows until the commit, then the rebuilt ones: the swap is
        SQLite's own atomic commit. The feed waits meanwhile and resumes after the rebuild.
        """
        conn = self._connection()
        up_to = store.head()
        applied = 0
        conn.execute("begin immediate")
        try:
            for table in self._tables:
                # Names from our own DDL, never from input.
                conn.execute(f'delete from "{table}"')  # noqa: S608
            after = 0
            while after < up_to:
                rows = [
                    row
                    for row in store.notifications(after=after, limit=FEED_BATCH)
                    if row.id <= up_to
                ]
                if not rows:
                    break
                self._apply(conn, rows)
                after = rows[-1].id
                applied += len(rows)
                if progress is not None:
                    progress(len(rows))
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return applied

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        conn = self._connection()
        purpose_row = conn.execute(
            "select legal_basis, max_age_days, direct_marketing from purposes where purpose = ?",
            (purpose,),
        ).fetchone()
        if purpose_row is None:
            return Facts(purpose=None)
        consent = conn.execute(
            "select status, policy_version, since, last_position from consent_state "
            "where subject = ? and purpose = ? and channel = ?",
            (subject, purpose, channel),
        ).fetchone()
        suppressions = conn.execute(
            "select scope, reason, last_position from suppression where subject = ? and active",
            (subject,),
        ).fetchall()
        restrictions = conn.execute(
            "select scope from restriction where subject = ? and active", (subject,)
        ).fetchall()
        interaction = conn.execute(
            "select last_at from interaction where subject = ?", (subject,)
        ).fetchone()
        policies = conn.execute(
            "select version, effective_at, purposes, requires_reconsent from policy_versions"
        ).fetchall()
        legal_basis, max_age_days, direct_marketing = purpose_row
        return Facts(
            purpose=PurposeFacts(legal_basis, max_age_days, bool(direct_marketing)),
            consent=None
            if consent is None
            else ConsentFacts(
                consent[0], consent[1], datetime.fromisoformat(consent[2]), consent[3]
            ),
            suppressions=tuple(SuppressionFacts(*row) for row in suppressions),
            restrictions=frozenset(row[0] for row in restrictions),
            last_interaction=_when(interaction[0]) if interaction else None,
            policies=tuple(
                PolicyFacts(v, datetime.fromisoformat(at), tuple(json.loads(ps)), bool(rc))
                for v, at, ps, rc in policies
            ),
        )

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class EmbeddedChecker(Checker):
    """Checks in embedded mode: the projection covers exactly what the feed applied."""

    def __init__(
        self, projection: EmbeddedProjection, *, store: EventSource, **kwargs: Any
    ) -> None:
        super().__init__(head=store.head, config=kwargs.pop("config", CheckerConfig()), **kwargs)
        self._projection = projection

    def covered(self) -> int:
        return self._projection.position()

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return self._projection.facts(subject, purpose, channel)
