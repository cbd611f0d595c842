"""Data keys in the embedded SQLite file, next to the events they protect."""

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from importlib.resources import files
from pathlib import Path

from ledger.domain.errors import StoreUnavailableError
from ledger.privacy.keystore.base import KeyRow, WrappedKeyStore

__all__ = ["DEFAULT_SQLITE_TIMEOUT", "SQLiteDataKeyStore"]

DEFAULT_SQLITE_TIMEOUT = 10.0
"""Seconds to wait for another connection's write lock before giving up."""

_RETRYABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

# Subjects and key ids travel as one JSON array parameter, so a batch of any size is one
# statement without building SQL text.
_LATEST = """
select key_id, subject, generation, wrapped
from data_keys as k
where subject in (select value from json_each(?))
  and generation = (select max(generation) from data_keys where subject = k.subject)
"""
_BY_KEY_ID = """
select key_id, subject, generation, wrapped
from data_keys
where key_id in (select value from json_each(?))
"""
_INSERT = """
insert into data_keys (key_id, subject, generation, wrapped)
values (?, ?, ?, ?)
on conflict do nothing
"""
_DESTROY = """
update data_keys
set wrapped = null, destroyed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
where subject = ? and wrapped is not null
"""


class SQLiteDataKeyStore(WrappedKeyStore):
    """Data keys in a table of the SQLite file at ``path``; safe to share between threads.

    Each call opens its own connection, so threads never share one; writers take the database
    lock up front (``begin immediate``) and wait up to ``timeout`` seconds for it.
    """

    def __init__(
        self, *, path: Path, master_key: bytes, timeout: float = DEFAULT_SQLITE_TIMEOUT
    ) -> None:
        super().__init__(master_key=master_key)
        self._path = path
        self._timeout = timeout

    def migrate(self) -> None:
        ddl = (files("ledger.privacy.keystore") / "sql" / "sqlite.sql").read_text(encoding="utf-8")
        with self._connection() as conn:
            # WAL lets readers go on while a batch is written; the mode is stored in the file.
            conn.execute("pragma journal_mode = wal")
            conn.executescript(ddl)

    def destroy(self, subject: str) -> int:
        with self._connection() as conn:
            # Zero the freed bytes instead of leaving the old wrapped key in a free page, and
            # fold the write-ahead log back into the file so no old page image of it remains
            # (best effort: a reader holding an older snapshot past the timeout defers that to
            # a later checkpoint).
            conn.execute("pragma secure_delete = on")
            with _write_transaction(conn):
                destroyed = conn.execute(_DESTROY, [subject]).rowcount
            conn.execute("pragma wal_checkpoint(truncate)")
        return destroyed

    def _latest(self, subjects: Sequence[str]) -> list[KeyRow]:
        with self._connection() as conn:
            return _rows(conn.execute(_LATEST, [json.dumps(list(subjects))]))

    def _insert_then_latest(self, rows: Sequence[KeyRow]) -> list[KeyRow]:
        subjects = json.dumps([row.subject for row in rows])
        with self._connection() as conn, _write_transaction(conn):
            conn.executemany(_INSERT, rows)
            return _rows(conn.execute(_LATEST, [subjects]))

    def _by_key_id(self, key_ids: Sequence[str]) -> list[KeyRow]:
        with self._connection() as conn:
            return _rows(conn.execute(_BY_KEY_ID, [json.dumps(list(key_ids))]))

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            # isolation_level=None: transactions are begun explicitly, never implicitly.
            with closing(
                sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
            ) as conn:
                yield conn
        except sqlite3.OperationalError as error:
            # Only a lock held too long is worth a retry; a missing table is a bug to see as is.
            if error.sqlite_errorcode & 0xFF not in _RETRYABLE:
                raise
            raise StoreUnavailableError("the SQLite data-key store stayed locked") from error


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # Taking the write lock at the start avoids the deadlock of two readers both upgrading to
    # writers, which SQLite resolves by failing one at once instead of waiting.
    conn.execute("begin immediate")
    try:
        yield
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


def _rows(cursor: sqlite3.Cursor) -> list[KeyRow]:
    return [KeyRow(*row) for row in cursor]
