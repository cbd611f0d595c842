"""The projection store in the embedded SQLite file: the same writes, one statement each.

Times are stored as ISO 8601 text, lists as JSON text (``projections/sqlite/schema.sql``). Each
write runs on its own bound row: in-process, a statement costs too little for staging to pay.
Connections are per thread (checks run on worker threads); SQLite's errors leave as
`ProjectionUnavailableError` (`ProjectionLockedError` while another writer holds the file).
"""

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.domain.rules import (
    ConsentFacts,
    ConsentStatus,
    Facts,
    PolicyFacts,
    PurposeFacts,
    SuppressionFacts,
    SuppressionReason,
)
from projections.errors import ProjectionLockedError, ProjectionUnavailableError
from projections.metrics import DUE_SOON_DAYS, Rows
from projections.rights import OpenRequest
from projections.store.base import (
    LOG_PARTITION,
    OPEN_REQUESTS,
    OPTED_IN,
    REQUEST_SUBJECT,
    SUPPRESSED,
    ProjectionStore,
    Tracking,
)
from projections.store.writes import Write, writes_of
from schemas import EventBase

SQLITE_TIMEOUT_S = 10.0
# julianday() reads the stored ISO text with its offset, so instants compare as instants.
RIGHTS_COUNTS = (
    "select right_name, count(*), sum(julianday(due_at) < julianday('now')), "
    "sum(julianday(due_at) >= julianday('now') and julianday(due_at) < julianday('now') + ?) "
    "from rights_requests where outcome is null group by right_name"
)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as error:
        if "locked" in str(error):
            raise ProjectionLockedError(type(error).__name__) from error
        raise ProjectionUnavailableError(type(error).__name__) from error
    except sqlite3.Error as error:
        raise ProjectionUnavailableError(type(error).__name__) from error


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list):
        return json.dumps(value)
    return value


_SUPPRESSION_KEY_COLUMNS = "select count(*) from pragma_table_info('suppression') where pk > 0"
"""2 in a file made before suppressions were keyed by (subject, scope, reason)."""


class SQLiteProjectionStore(ProjectionStore):
    """The projection tables in the SQLite file at ``path``."""

    def __init__(self, path: Path, *, timeout_s: float = SQLITE_TIMEOUT_S) -> None:
        self._path = path
        self._timeout_s = timeout_s
        self._local = threading.local()
        folder = files("projections") / "sqlite"
        self._ddl = (folder / "schema.sql").read_text(encoding="utf-8")
        self._rekey = (folder / "suppression_by_reason.sql").read_text(encoding="utf-8")
        self._tables = tuple(re.findall(r"create table if not exists (\w+)", self._ddl))
        self._statements: dict[Write, str] = {}

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=self._timeout_s)
            self._local.conn = conn
        return conn

    def migrate(self) -> None:
        conn = self._connection()
        with _translated():
            conn.executescript(self._ddl)
            # One transaction that holds the write lock: a second process finds it done.
            conn.execute("begin immediate")
            try:
                if conn.execute(_SUPPRESSION_KEY_COLUMNS).fetchone()[0] == 2:
                    for statement in self._rekey.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._connection()
        with _translated(), conn:
            yield

    def _statement(self, write: Write) -> str:
        statement = self._statements.get(write)
        if statement is None:
            # Table and column names are ours; every value stays a bound parameter.
            rows = "(select " + ", ".join(f":{c} as {c}" for c in write.columns) + ") as s"
            statement = write.statement.format(
                t=write.table, rows=rows, cols=", ".join(write.columns)
            )
            self._statements[write] = statement
        return statement

    def apply(self, events: Sequence[tuple[EventBase, int]]) -> None:
        conn = self._connection()
        with _translated():
            for event, position in events:
                for write, row, _, _ in writes_of(event, position):
                    params = {c: _value(v) for c, v in zip(write.columns, row, strict=True)}
                    conn.execute(self._statement(write), params)

    def offsets(self, tracking: Tracking, *, lock: bool = False) -> dict[int, int]:
        # One writer at a time is SQLite's own rule: there is no row to lock.
        del lock
        with _translated():
            row = (
                self._connection()
                .execute(
                    "select position from projection_position where name = ?", (tracking.group,)
                )
                .fetchone()
            )
        return {} if row is None else {LOG_PARTITION: int(row[0])}

    def save_offsets(self, tracking: Tracking, offsets: Mapping[int, int]) -> None:
        with _translated():
            self._connection().execute(
                "insert into projection_position (name, position) values (?, ?) "
                "on conflict (name) do update set position = excluded.position",
                (tracking.group, offsets[LOG_PARTITION]),
            )

    def replace_all(
        self,
        batches: Iterable[Sequence[tuple[EventBase, int]]],
        tracking: Tracking,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Empty every table and apply ``batches``, in one transaction; returns the count.

        Readers keep seeing the old rows until the commit, then the new ones: the swap is
        SQLite's own atomic commit. Other writers wait meanwhile.
        """
        conn = self._connection()
        applied = 0
        with _translated():
            conn.execute("begin immediate")
            try:
                for table in self._tables:
                    # Names from our own DDL, never from input.
                    conn.execute(f'delete from "{table}"')  # noqa: S608
                for batch in batches:
                    self.apply(batch)
                    self.save_offsets(tracking, {LOG_PARTITION: batch[-1][1]})
                    applied += len(batch)
                    if progress is not None:
                        progress(len(batch))
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
                ConsentStatus(consent[0]),
                consent[1],
                datetime.fromisoformat(consent[2]),
                consent[3],
            ),
            suppressions=tuple(
                SuppressionFacts(scope, SuppressionReason(reason), position)
                for scope, reason, position in suppressions
            ),
            restrictions=frozenset(row[0] for row in restrictions),
            last_interaction=_when(interaction[0]) if interaction else None,
            policies=tuple(
                PolicyFacts(v, datetime.fromisoformat(at), tuple(json.loads(ps)), bool(rc))
                for v, at, ps, rc in policies
            ),
        )

    def open_requests(self) -> list[OpenRequest]:
        with _translated():
            rows = (
                self._connection()
                .execute(OPEN_REQUESTS.format(rights="rights_requests"))
                .fetchall()
            )
        requests = [
            OpenRequest(
                str(r[0]), r[1], r[2], _when(r[3]), datetime.fromisoformat(r[4]), bool(r[5])
            )
            for r in rows
        ]
        # Sorted here: ISO text of different offsets would not sort as instants in SQL.
        return sorted(requests, key=lambda r: (r.due_at, r.request_id))

    def request_subject(self, request_id: str) -> str | None:
        query = REQUEST_SUBJECT.format(rights="rights_requests", param="?")
        with _translated():
            row = self._connection().execute(query, (str(UUID(request_id)),)).fetchone()
        return None if row is None else str(row[0])

    def counts(self) -> tuple[Rows, Rows, Rows]:
        conn = self._connection()
        with _translated():
            return (
                conn.execute(OPTED_IN.format(consent="consent_state")).fetchall(),
                conn.execute(SUPPRESSED.format(suppression="suppression")).fetchall(),
                conn.execute(RIGHTS_COUNTS, (DUE_SOON_DAYS,)).fetchall(),
            )

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
