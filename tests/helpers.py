"""Building blocks several test modules share: an embedded ledger, projection rows, processes."""

import base64
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from entrypoints.settings import Settings
from ledger.domain.commands import GrantConsent, PublishPolicyVersion, RegisterPurpose, Unsubscribe
from ledger.domain.identity import SubjectHasher
from ledger.privacy.keystore import SQLiteDataKeyStore
from ledger.store.events import LedgerStore, SQLiteStoreConfig
from ledger.write.service import Ledger
from projections.rebuild import projection_tables
from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import parse_event

CATALOG_TIME = datetime(2024, 1, 1, tzinfo=UTC)
POLICY_SHA = "d" * 64


def marketing_purpose(
    purpose: str,
    at: datetime = CATALOG_TIME,
    *,
    legal_basis: str = "consent",
    description: str | None = None,
    max_age_days: int | None = None,
    wording: dict[str, dict[str, str]] | None = None,
) -> RegisterPurpose:
    """The registration of a direct-marketing purpose (described by its name unless told)."""
    return RegisterPurpose.model_validate(
        {
            "purpose": purpose,
            "legal_basis": legal_basis,
            "description": description or purpose,
            "direct_marketing": True,
            "max_age_days": max_age_days,
            "occurred_at": at,
            "wording": wording or {},
        }
    )


def empty_sqlite_ledger(path: Path) -> Ledger:
    """A ledger on one SQLite file, nothing recorded yet (fixed test secrets)."""
    keys = SQLiteDataKeyStore(path=path, master_key=b"k" * 32)
    keys.migrate()
    return Ledger(
        store=LedgerStore(SQLiteStoreConfig(path=path)),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
    )


def sqlite_ledger(
    path: Path,
    *,
    purposes: Sequence[str] = ("newsletter",),
    policy_version: str = "v1",
    policy_sha256: str = POLICY_SHA,
    wording: dict[str, dict[str, dict[str, str]]] | None = None,
) -> Ledger:
    """A ledger on one SQLite file, with these (direct-marketing) purposes and one policy;
    ``wording`` gives some of them their words for people, by purpose then language."""
    ledger = empty_sqlite_ledger(path)
    record_catalog(
        ledger,
        purposes=purposes,
        policy_version=policy_version,
        policy_sha256=policy_sha256,
        wording=wording,
    )
    return ledger


def record_catalog(
    ledger: Ledger,
    *,
    purposes: Sequence[str] = ("newsletter",),
    policy_version: str = "v1",
    policy_sha256: str = POLICY_SHA,
    wording: dict[str, dict[str, dict[str, str]]] | None = None,
) -> None:
    """Record these (direct-marketing) purposes, with ``wording``'s words for people where it
    gives them, and one policy version covering them."""
    for purpose in purposes:
        ledger.execute(marketing_purpose(purpose, wording=(wording or {}).get(purpose)))
    ledger.execute(
        PublishPolicyVersion(
            version=policy_version,
            text_sha256=policy_sha256,
            effective_at=CATALOG_TIME,
            purposes=tuple(purposes),
            occurred_at=CATALOG_TIME,
        )
    )


def kill_session(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the session ``process`` leads (started with ``start_new_session``), as a crash
    would, and reap it; nothing if it is not running."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def projection_rows(
    dsn: str, schema: str, tables: Sequence[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of these projection tables, in a stable order (offsets left out)."""
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(
                sql.SQL("select * from {} order by 1, 2, 3").format(sql.Identifier(schema, table))
            ).fetchall()
            for table in tables
            if table != "consumer_offsets"
        }


def replayed_rows(dsn: str, schema: str, store: LedgerStore) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a projection holds after applying every stored event once, in ledger order.

    Built in a new schema ``<schema>_expected``, which the caller drops with ``schema``.
    """
    reference = f"{schema}_expected"
    events = [(parse_event(state), position) for position, *_, state in store.stream_rows()]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(reference)))
        with conn.transaction():
            migrate(conn, schema=reference)
            PostgresProjectionStore(conn, schema=reference).apply(events)
        tables = projection_tables(conn, reference)
    return projection_rows(dsn, reference, tables)


def envelope(event_type: str, subject: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """A stored event's JSON as the projection reads it, occurring and recorded at ``at``."""
    return {
        "event_id": str(uuid4()),
        "event_type": event_type,
        "subject": subject,
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "command_id": str(uuid4()),
        "source": "api",
        "actor": "test",
        **fields,
    }


def stored_offsets(dsn: str, schema: str) -> int:
    """The records the consumers applied to ``schema``: their stored offsets, summed."""
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                sql.SQL("select coalesce(sum(next_offset), 0) from {}").format(
                    sql.Identifier(schema, "consumer_offsets")
                )
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def grant_then_maybe_unsubscribe(
    ledger: Ledger, n: int, *, unsubscribe_every: int, at: datetime
) -> None:
    """Person ``p<n>`` consents to the newsletter; every ``unsubscribe_every``-th unsubscribes."""
    subject = f"p{n}"
    ledger.execute(
        GrantConsent(subject=subject, purpose="newsletter", policy_version="v1", occurred_at=at)
    )
    if n % unsubscribe_every == 0:
        ledger.execute(Unsubscribe(subject=subject, occurred_at=at))


def wait_projected(
    relayed: Callable[[], int],
    store: LedgerStore,
    *,
    dsn: str,
    schema: str,
    timeout_s: float,
) -> dict[str, list[tuple[Any, ...]]]:
    """Wait (at most ``timeout_s``) until the relay reached the store's head and ``schema``'s
    projection holds the rows of a replay of the store; returns the replay's rows."""
    head = store.head()
    expected = replayed_rows(dsn, schema, store)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if relayed() == head and projection_rows(dsn, schema, tuple(expected)) == expected:
            break
        time.sleep(1.0)
    return expected


def fixed_secret(fill: int) -> str:
    """Base64 of 32 bytes of ``fill``: a fixed secret for a test's settings."""
    return base64.b64encode(bytes([fill]) * 32).decode()


def production_env(pg_dsn: str, schema: str, **extra: str) -> dict[str, str]:
    """Production-mode ``CONSENT_*`` variables on the test's PostgreSQL schema, fixed secrets,
    no Kafka."""
    return {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": pg_dsn,
        "CONSENT_PG_SCHEMA": schema,
        "CONSENT_SUBJECT_SECRET": fixed_secret(1),
        "CONSENT_MASTER_KEY": fixed_secret(2),
        "CONSENT_AUDIT_SIGNING_KEY": fixed_secret(3),
        "CONSENT_UNSUBSCRIBE_KEYS": f"k1:{fixed_secret(4)}",
        "CONSENT_TOPIC_KEYS": f"t1:{fixed_secret(5)}",
        "CONSENT_PUBLIC_URL": "https://mail.example.org",
        **extra,
    }


def production_settings(pg_dsn: str, schema: str, **extra: Any) -> Settings:
    """The `Settings` of `production_env`, with ``extra`` fields."""
    env = production_env(pg_dsn, schema)
    values = {name.removeprefix("CONSENT_").lower(): value for name, value in env.items()}
    return Settings.model_validate(values | extra)
