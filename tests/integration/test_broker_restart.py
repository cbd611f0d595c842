"""The broker killed and restarted in the middle of ingest: nothing lost, nothing applied twice."""

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.runner import ConsumerRunner
from tests.broker import PrivateBroker
from tests.helpers import (
    grant_then_maybe_unsubscribe,
    projection_rows,
    wait_projected,
)
from tests.topics import consumer_config, following, ledger_and_relay, topic_positions

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, tzinfo=UTC)
COMMANDS = 600
DOWN_AFTER = 200
CATCH_UP_S = 120.0


def test_a_broker_killed_during_ingest_and_restarted_loses_nothing(
    private_broker: PrivateBroker, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic, ledger, relay = ledger_and_relay(
        tmp_path, bootstrap=private_broker.bootstrap, flush_timeout_s=5.0
    )
    consumer = ConsumerRunner(
        consumer_config(private_broker.bootstrap, pg_dsn, schema, topic, max_records=50)
    )
    with following(relay, consumer) as workers:
        for n in range(COMMANDS):
            if n == DOWN_AFTER:
                private_broker.kill()
            if n == 2 * DOWN_AFTER:
                private_broker.start()
            grant_then_maybe_unsubscribe(ledger, n, unsubscribe_every=4, at=T0)
            time.sleep(0.005)
        head = ledger.store.head()
        expected = wait_projected(
            lambda: relay.position, ledger.store, dsn=pg_dsn, schema=schema, timeout_s=CATCH_UP_S
        )
    ledger.close()

    assert not any(worker.is_alive() for worker in workers)
    assert relay.position == head
    assert set(topic_positions(private_broker.bootstrap, topic)) == set(range(1, head + 1))
    assert projection_rows(pg_dsn, schema, tuple(expected)) == expected
