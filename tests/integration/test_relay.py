"""The relay against the real broker: every stored event on the topic, once acknowledged."""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from ledger.audit.tlog.entry import Entry
from ledger.audit.tlog.verify import leaf_hash
from ledger.domain.commands import GrantConsent, Unsubscribe
from ledger.write.service import Ledger
from relay.publisher import Relay
from relay.topics import ensure_topics
from schemas import PersonalData
from tests.helpers import sqlite_ledger
from tests.topics import sqlite_relay

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = sqlite_ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


def _relay(ledger: Ledger, bootstrap: str, topic: str, path: Path) -> Relay:
    return sqlite_relay(
        path, bootstrap=bootstrap, topic=topic, flush_timeout_s=5, create_topics=False
    )


def _consume(bootstrap: str, topic: str, count: int) -> list[object]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    records = []
    for record in consumer:
        records.append(record)
        if len(records) == count:
            break
    consumer.close()
    return records


def test_every_event_reaches_the_topic_once_with_its_headers(
    ledger: Ledger, kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite3"
    subject = ledger.execute(
        GrantConsent(
            address="eve@example.org",
            purpose="newsletter",
            policy_version="v1",
            occurred_at=T0,
            personal=PersonalData(ip="203.0.113.9"),
        )
    ).subject
    ledger.execute(Unsubscribe(subject="p-2", occurred_at=T0))
    relay = _relay(ledger, kafka_bootstrap, unique_name, path)
    ensure_topics(relay.config)
    assert relay.backlog() == 4
    assert relay.publish_once() == 4
    assert (relay.backlog(), relay.position) == (0, 4)
    relay.close()

    records = _consume(kafka_bootstrap, unique_name, 4)
    by_position = {json.loads(r.value)["position"]: r for r in records}  # type: ignore[attr-defined]
    assert sorted(by_position) == [1, 2, 3, 4]
    grant = by_position[3]
    assert grant.key == subject.encode()  # type: ignore[attr-defined]
    headers = dict(grant.headers)  # type: ignore[attr-defined]
    assert headers["event_type"] == b"ConsentGranted"
    assert headers["position"] == b"3"
    assert b"eve@example.org" not in grant.value  # type: ignore[attr-defined]
    assert b"203.0.113.9" not in grant.value  # type: ignore[attr-defined]
    stored = ledger.store.notifications(after=2, limit=1)[0]
    entry = Entry(
        3,
        stored.originator_id
        if not isinstance(stored.originator_id, str)
        else ledger.store.originator_uuid(stored.originator_id),
        stored.originator_version,
        stored.topic,
        stored.state,
    )
    assert headers["leaf_hash"] == leaf_hash(entry.encode()).hex().encode()

    again = _relay(ledger, kafka_bootstrap, unique_name, path)
    assert again.publish_once() == 0
    ledger.execute(Unsubscribe(subject="p-3", occurred_at=T0))
    assert again.publish_once() == 1
    again.close()


def test_a_broker_that_does_not_answer_loses_nothing(
    ledger: Ledger, tmp_path: Path, unique_name: str
) -> None:
    path = tmp_path / "ledger.sqlite3"
    relay = _relay(ledger, "127.0.0.1:1", unique_name, path)
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), kwargs={"poll_s": 0.05})
    worker.start()
    stop.wait(3)
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert relay.position == 0
    assert relay.backlog() == 2
    relay.close()


def test_the_relay_command_publishes_the_embedded_ledger(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env |= {"CONSENT_DATA_DIR": str(tmp_path / "var"), "CONSENT_KAFKA_BOOTSTRAP": kafka_bootstrap}
    cli = str(Path(sys.executable).parent / "consent-ledger")

    def run(*args: str) -> dict[str, object]:
        done = subprocess.run(
            [cli, *args], env=env, capture_output=True, text=True, timeout=120, check=True
        )
        answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    run("unsubscribe", "--subject", "cli-1")
    run("unsubscribe", "--subject", "cli-2")
    assert run("relay", "--once") == {"published": 2, "position": 2}
    assert run("relay", "--once") == {"published": 0, "position": 2}
