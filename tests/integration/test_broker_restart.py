"""The broker killed and restarted in the middle of ingest: nothing lost, nothing applied twice."""

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from consumers.runner import ConsumerRunner
from ledger.domain.commands import GrantConsent, Unsubscribe
from tests.broker import PrivateBroker
from tests.helpers import projection_rows, replayed_rows, sqlite_ledger
from tests.topics import consumer_config, sqlite_relay, topic_positions

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, tzinfo=UTC)
COMMANDS = 600
DOWN_AFTER = 200
CATCH_UP_S = 120.0


def test_a_broker_killed_during_ingest_and_restarted_loses_nothing(
    private_broker: PrivateBroker, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite3"
    topic = f"events-{uuid4().hex[:8]}.v1"
    ledger = sqlite_ledger(path)
    relay = sqlite_relay(path, bootstrap=private_broker.bootstrap, topic=topic, flush_timeout_s=5.0)
    consumer = ConsumerRunner(
        consumer_config(private_broker.bootstrap, pg_dsn, schema, topic, max_records=50)
    )
    stop = threading.Event()
    workers = [
        threading.Thread(target=relay.run, args=(stop,), name="relay"),
        threading.Thread(target=consumer.run, args=(stop,), name="consumer"),
    ]
    for worker in workers:
        worker.start()
    try:
        for n in range(COMMANDS):
            if n == DOWN_AFTER:
                private_broker.kill()
            if n == 2 * DOWN_AFTER:
                private_broker.start()
            subject = f"p{n}"
            ledger.execute(
                GrantConsent(
                    subject=subject, purpose="newsletter", policy_version="v1", occurred_at=T0
                )
            )
            if n % 4 == 0:
                ledger.execute(Unsubscribe(subject=subject, occurred_at=T0))
            time.sleep(0.005)
        head = ledger.store.head()
        expected = replayed_rows(pg_dsn, schema, ledger.store)
        deadline = time.monotonic() + CATCH_UP_S
        while time.monotonic() < deadline:
            if relay.position == head and (
                projection_rows(pg_dsn, schema, tuple(expected)) == expected
            ):
                break
            time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        consumer.close()
        relay.close()
        ledger.close()

    assert not any(worker.is_alive() for worker in workers)
    assert relay.position == head
    assert set(topic_positions(private_broker.bootstrap, topic)) == set(range(1, head + 1))
    assert projection_rows(pg_dsn, schema, tuple(expected)) == expected
