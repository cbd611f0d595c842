"""`consent-ledger consume` killed with SIGKILL mid-stream and restarted: every event once."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from ledger.domain.commands import Command, GrantConsent, Unsubscribe
from ledger.write.service import Ledger
from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import parse_event
from tests.helpers import projection_rows, sqlite_ledger, stored_offsets
from tests.topics import production_env, publish_all, sqlite_relay

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 1, tzinfo=UTC)
PEOPLE = 400
TABLES = ("consent_state", "suppression")
CLI = str(Path(sys.executable).parent / "consent-ledger")


def _schema(dsn: str) -> str:
    name = f"kill_{uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
    return name


def _drop(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = sqlite_ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


def _consume(env: dict[str, str], topic: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CLI, "consume", "--group", f"g-{topic}", "--topic", topic, "--batch", "50"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigkill_mid_stream_then_restart_applies_every_event_once(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}.v1"
    path = tmp_path / "ledger.sqlite3"
    relay = sqlite_relay(path, bootstrap=kafka_bootstrap, topic=topic)
    commands: list[Command] = []
    for n in range(PEOPLE):
        commands.append(
            GrantConsent(subject=f"p{n}", purpose="newsletter", policy_version="v1", occurred_at=T0)
        )
        if n % 3 == 0:
            commands.append(Unsubscribe(subject=f"p{n}", occurred_at=T0))
    ledger.record_many(commands)
    publish_all(relay)
    relay.close()
    probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    total = sum(probe.end_offsets(partitions).values())
    probe.close()

    schema = _schema(pg_dsn)
    reference = _schema(pg_dsn)
    env = production_env(pg_dsn, schema, kafka_bootstrap)
    try:
        first = _consume(env, topic)
        assert _wait(lambda: stored_offsets(pg_dsn, schema) > 0, 60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert stored_offsets(pg_dsn, schema) < total, "killed too late to prove anything"

        second = _consume(env, topic)
        caught_up = _wait(lambda: stored_offsets(pg_dsn, schema) == total, 120)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        assert caught_up

        log = [
            (parse_event(n.state), n.id) for n in ledger.store.notifications(after=0, limit=100_000)
        ]
        with psycopg.connect(pg_dsn) as conn, conn.transaction():
            migrate(conn, schema=reference)
            PostgresProjectionStore(conn, schema=reference).apply(log)
        assert projection_rows(pg_dsn, schema, TABLES) == projection_rows(pg_dsn, reference, TABLES)
    finally:
        _drop(pg_dsn, schema)
        _drop(pg_dsn, reference)
