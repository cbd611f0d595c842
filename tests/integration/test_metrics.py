"""Each process scraped while events flow: the API, the relay, a consumer and the sealer.

The API, the consumer and the sealer are the real CLI processes with their metrics served; the
relay runs in this process (its CLI has no topic option, and the shared broker's default topic
is not ours to write) and serves this process's registry on a port of its own.
"""

import math
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from prometheus_client import start_http_server

from ledger.domain.commands import GrantConsent, Unsubscribe
from ledger.write.service import Ledger
from relay.metrics import RELAY
from tests.cli import CLI, api_key_headers, clean_env, production_env
from tests.conftest import free_port
from tests.helpers import sqlite_ledger
from tests.monitoring import promtool_check_metrics, scrape, total, value
from tests.topics import TOPIC_KEYS_SETTING, sqlite_relay

pytestmark = pytest.mark.integration
WAIT_S = 60.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _eventually(url: str, condition: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until ``condition`` holds; the last scrape is checked by promtool."""
    deadline = time.monotonic() + WAIT_S
    samples: Samples = {}
    while time.monotonic() < deadline:
        try:
            samples = scrape(url)
        except httpx.TransportError:
            samples = {}
        if samples and condition(samples):
            promtool_check_metrics(httpx.get(url, timeout=5).text)
            return samples
        time.sleep(0.2)
    pytest.fail(f"{what}: not seen within {WAIT_S} s at {url}; last scrape {samples}")


def _process(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CLI, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _grants(ledger: Ledger, prefix: str, count: int) -> None:
    ledger.record_many(
        [
            GrantConsent(
                address=f"{prefix}{n}@example.org",
                purpose="newsletter",
                policy_version="v1",
                occurred_at=datetime.now(UTC),
            )
            for n in range(count)
        ]
    )


def test_relay_consumer_and_sealer_metrics_follow_the_events(
    tmp_path: Path, pg_dsn: str, kafka_bootstrap: str, schema: str, unique_name: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    ledger = sqlite_ledger(data_dir / "consent-ledger.sqlite3")
    relay = sqlite_relay(
        data_dir / "consent-ledger.sqlite3", bootstrap=kafka_bootstrap, topic=unique_name
    )
    _grants(ledger, "a", 20)
    ledger.record_many(
        [Unsubscribe(address=f"a{n}@example.org", occurred_at=datetime.now(UTC)) for n in range(5)]
    )
    head = ledger.store.head()

    relay_port, consumer_port, sealer_port = free_port(), free_port(), free_port()
    server, _ = start_http_server(relay_port, addr="127.0.0.1", registry=RELAY)
    relay_url = f"http://127.0.0.1:{relay_port}/metrics"
    consumer_url = f"http://127.0.0.1:{consumer_port}/metrics"
    sealer_url = f"http://127.0.0.1:{sealer_port}/metrics"
    published_before = value(scrape(relay_url), "consent_ledger_relay_published_events_total")
    assert relay.backlog() == head
    assert value(scrape(relay_url), "consent_ledger_relay_backlog_events") == head

    consumer = _process(
        ["consume", "--group", f"g-{unique_name}", "--topic", unique_name, "--batch", "7"],
        clean_env(
            CONSENT_PG_DSN=pg_dsn,
            CONSENT_KAFKA_BOOTSTRAP=kafka_bootstrap,
            CONSENT_PG_SCHEMA=schema,
            CONSENT_TOPIC_KEYS=TOPIC_KEYS_SETTING,
            CONSENT_METRICS_PORT=str(consumer_port),
        ),
    )
    sealer = _process(
        ["audit", "seal", "--follow"],
        clean_env(
            CONSENT_DATA_DIR=str(data_dir),
            CONSENT_METRICS_PORT=str(sealer_port),
            CONSENT_AUDIT_CHECKPOINT_EVERY_EVENTS="5",
        ),
    )
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop,), kwargs={"poll_s": 0.05})
    relaying.start()
    try:
        _eventually(
            relay_url,
            lambda s: (
                value(s, "consent_ledger_relay_backlog_events") == 0
                and value(s, "consent_ledger_relay_published_events_total") - published_before
                == head
            ),
            "relay backlog back to 0 with every event published",
        )
        consumed = _eventually(
            consumer_url,
            lambda s: (
                value(s, "consent_ledger_consumer_records_total") == head
                and value(s, "consent_ledger_projection_position") == head
                and value(s, "consent_ledger_unsubscribe_enforced_seconds_count") == 5
            ),
            "consumer applied every record and the five unsubscribes",
        )
        lags = [v for (n, _), v in consumed.items() if n == "consent_ledger_consumer_lag_records"]
        assert lags, "no lag series per partition"
        assert sum(lags) == 0
        # Recorded moments ago: all five enforced within the minute, far inside 48 hours.
        assert value(consumed, "consent_ledger_unsubscribe_enforced_seconds_bucket", le="60.0") == 5
        assert value(consumed, "consent_ledger_dead_letters_total") == 0

        # Events keep flowing: more commands, and one record that is no ledger event.
        _grants(ledger, "b", 30)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        producer.send(unique_name, key=b"k", value=b"not an event")
        producer.flush()
        producer.close()
        new_head = ledger.store.head()
        _eventually(
            relay_url,
            lambda s: (
                value(s, "consent_ledger_relay_backlog_events") == 0
                and value(s, "consent_ledger_relay_position") == new_head
            ),
            "relay caught up again",
        )
        _eventually(
            consumer_url,
            lambda s: (
                value(s, "consent_ledger_dead_letters_total") == 1
                and value(s, "consent_ledger_projection_position") == new_head
                and value(s, "consent_ledger_consumer_records_total") == new_head + 1
                and total(s, "consent_ledger_consumer_lag_records") == 0
            ),
            "consumer caught up, the bad record dead-lettered",
        )
        sealed = _eventually(
            sealer_url,
            lambda s: (
                value(s, "consent_ledger_audit_tree_size") == new_head
                and value(s, "consent_ledger_audit_checkpoint_size") >= new_head - 5
            ),
            "sealer sealed every event and cut checkpoints",
        )
        age = value(sealed, "consent_ledger_audit_checkpoint_age_seconds")
        assert not math.isnan(age)
        assert 0 <= age < WAIT_S
    finally:
        stop.set()
        relaying.join(timeout=30)
        server.shutdown()
        _stop(consumer)
        _stop(sealer)
        relay.close()
        ledger.close()


def _json(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def test_the_api_counts_commands_checks_and_business_gauges(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(CONSENT_DATA_DIR=str(data), CONSENT_METRICS_CACHE_S="0.5")
    headers = api_key_headers(env, "admin", "write", "check")
    port = free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        before = _eventually(f"{url}/metrics", lambda _: True, "the API's /metrics")
        with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
            _json(
                api.post(
                    "/v1/purposes",
                    json={
                        "purpose": "newsletter",
                        "legal_basis": "consent",
                        "description": "News",
                        "direct_marketing": True,
                    },
                )
            )
            _json(
                api.post(
                    "/v1/policy-versions",
                    json={
                        "version": "v1",
                        "text_sha256": "d" * 64,
                        "effective_at": "2026-01-01T00:00:00Z",
                        "purposes": ["newsletter"],
                    },
                )
            )
            addresses = [f"p{n}@example.org" for n in range(5)]
            for address in addresses:
                _json(
                    api.post(
                        "/v1/consents/grant",
                        json={"address": address, "purpose": "newsletter", "policy_version": "v1"},
                    )
                )
            last = 0
            for address in addresses[:2]:
                last = _json(api.post("/v1/unsubscribes", json={"address": address}))["position"]
            answers = [
                _json(
                    api.get(
                        "/v1/check",
                        params={"address": a, "purpose": "newsletter", "min_position": last},
                    )
                )
                for a in addresses
            ]
        assert [a["reason"] for a in answers] == ["unsubscribed"] * 2 + [None] * 3

        def delta(samples: Samples, name: str, **labels: str) -> float:
            return value(samples, name, **labels) - value(before, name, **labels)

        after = _eventually(
            f"{url}/metrics",
            lambda s: (
                value(s, "consent_ledger_persons_opted_in", purpose="newsletter", channel="email")
                == 3
                and value(s, "consent_ledger_persons_suppressed", reason="unsubscribed") == 2
            ),
            "business gauges counted from the projection",
        )
        commands = "consent_ledger_commands_total"
        assert delta(after, commands, command="GrantConsent", outcome="recorded") == 5
        assert delta(after, commands, command="Unsubscribe", outcome="recorded") == 2
        checks = "consent_ledger_checks_total"
        assert delta(after, checks, kind="single", decision="allowed", reason="none") == 3
        assert delta(after, checks, kind="single", decision="denied", reason="unsubscribed") == 2
        assert delta(after, "consent_ledger_check_duration_seconds_count", kind="single") == 5
        assert delta(after, "consent_ledger_unsubscribe_enforced_seconds_count") == 2
        assert delta(after, "consent_ledger_group_commit_batch_size_count") >= 1
        answer = httpx.get(f"{url}/metrics", timeout=5)
        assert answer.status_code == 200
        exposition = answer.text
        assert "example.org" not in exposition
        assert "_created" not in exposition
        # Embedded serve runs a sealer and the projection's feed, and no relay nor consumer.
        assert "consent_ledger_audit_tree_size" in exposition
        assert "consent_ledger_relay_backlog_events" not in exposition
        assert "consent_ledger_projection_position" not in exposition
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_serve_in_production_exports_no_gauge_of_the_followers(
    pg_dsn: str, kafka_bootstrap: str, schema: str
) -> None:
    port = free_port()
    env = production_env(pg_dsn, kafka_bootstrap, schema, TOPIC_KEYS_SETTING)
    server = _process(["serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        samples = _eventually(url, lambda _: True, "the production API's /metrics")
        answer = httpx.get(url, timeout=5, follow_redirects=False)
    finally:
        _stop(server)
    assert answer.status_code == 200
    names = {name for name, _ in samples}
    assert "consent_ledger_persons_opted_in" in answer.text
    assert "consent_ledger_group_commit_batch_size_count" in names
    followers = (
        "consent_ledger_relay_",
        "consent_ledger_consumer_",
        "consent_ledger_projection_position",
        "consent_ledger_dead_letters",
        "consent_ledger_audit_",
        "consent_ledger_unsubscribe_enforced_",
    )
    assert not [n for n in names if n.startswith(followers)]
    assert "_created" not in answer.text
