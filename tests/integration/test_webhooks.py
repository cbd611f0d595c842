"""Webhooks against a real HTTP receiver that fails 30% of calls and is killed and restarted:
every event arrives at least once, in order per person, signed; nothing is lost."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.bootstrap_sender import build_dispatcher
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.http.services import ApiServices
from entrypoints.settings import Mode, Settings
from ledger.domain import commands
from ledger.webhooks.dispatcher import Dispatcher
from tests.conftest import free_port
from tests.helpers import CATALOG_TIME, production_settings, record_catalog

ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """``tests/webhook_receiver.py`` in a process of its own, on a fixed port."""

    def __init__(self, log: Path, fail_rate: float) -> None:
        self.port = free_port()
        self.log = log
        self.fail_rate = fail_rate
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.webhook_receiver",
                str(self.port),
                str(self.log),
                str(self.fail_rate),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def received(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[Settings, ApiServices]]:
    settings = Settings(
        mode=Mode.EMBEDDED,
        data_dir=tmp_path / "var",
        webhook_retry_start_s=0.01,
        webhook_retry_max_s=0.1,
    )
    built = build_api(settings)
    record_catalog(built.ledger, purposes=("newsletter", "offers"))
    yield settings, built
    built.close()


def _register(services: ApiServices, body: dict[str, Any]) -> dict[str, Any]:
    app = create_app(health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services)
    key = services.keys.create("admin", [Scope.ADMIN])[1]
    with TestClient(app) as client:
        answer = client.post("/v1/webhooks", json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _history(services: ApiServices, people: int, rounds: int) -> None:
    """Grants, withdrawals, unsubscribes and complaints-free changes for ``people`` persons."""
    ledger = services.ledger
    for n in range(rounds):
        for person in range(people):
            base = {"subject": f"p-{person}", "occurred_at": CATALOG_TIME + timedelta(hours=n)}
            step = n % 3
            if step == 0:
                command: commands.Command = commands.GrantConsent(
                    **base, purpose="newsletter", policy_version="v1"
                )
            elif step == 1:
                command = commands.WithdrawConsent(**base, purpose="newsletter")
            else:
                command = commands.Unsubscribe(**base, purpose="offers")
            ledger.execute(command)


def _wait_until_sent(dispatcher: Dispatcher, webhook_id: str, head: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    reached = 0
    while time.monotonic() < deadline:
        endpoint = dispatcher.store.get(webhook_id)
        assert endpoint is not None
        reached = endpoint.cursor
        if reached >= head:
            return
        time.sleep(0.05)
    pytest.fail(f"the endpoint got to {reached}, not {head}")


def test_a_flaky_receiver_killed_midway_gets_every_event_in_order_signed(
    services: tuple[Settings, ApiServices], tmp_path: Path
) -> None:
    settings, api = services
    receiver = Receiver(tmp_path / "received.ndjson", fail_rate=0.3)
    receiver.start()
    hook = _register(api, {"url": receiver.url})
    dispatcher = build_dispatcher(settings, api.ledger.store)
    stop = threading.Event()
    follower = threading.Thread(target=dispatcher.follow, args=(stop,), daemon=True)
    follower.start()
    try:
        writer = threading.Thread(target=_history, args=(api, 10, 12))
        writer.start()
        time.sleep(1.0)
        receiver.kill()
        time.sleep(0.5)
        receiver.start()
        writer.join(timeout=120)
        head = api.ledger.store.head()
        _wait_until_sent(dispatcher, hook["webhook_id"], head, timeout_s=120)
    finally:
        stop.set()
        follower.join(timeout=30)
        dispatcher.close()
        dispatcher.store.close()
        receiver.kill()

    verifier = Webhook(hook["secret"])
    first_seen: dict[str, list[int]] = {}
    seen: set[int] = set()
    for line in receiver.received():
        body = verifier.verify(line["body"], line["headers"])
        data = body["data"]
        assert body["type"] == data["event_type"]
        assert "personal" not in data
        position = data["position"]
        if position not in seen:
            seen.add(position)
            first_seen.setdefault(data["subject"], []).append(position)
    person_events = {
        row.id for row in api.ledger.store.notifications(after=hook["position"], limit=10_000)
    }
    assert len(person_events) == 120
    assert seen == person_events
    for positions in first_seen.values():
        assert positions == sorted(positions)
    deliveries = dispatcher.store.deliveries(hook["webhook_id"], limit=1000)
    assert {d.status for d in deliveries} == {"delivered"}
    assert any(d.attempts > 1 for d in deliveries), "the receiver failed none: no retry shown"


def test_an_endpoint_failing_past_the_retry_period_is_disabled(
    services: tuple[Settings, ApiServices], tmp_path: Path
) -> None:
    settings, api = services
    receiver = Receiver(tmp_path / "received.ndjson", fail_rate=1.0)
    receiver.start()
    hook = _register(api, {"url": receiver.url, "purposes": ["newsletter"]})
    now = [datetime.now(UTC)]
    dispatcher = build_dispatcher(settings, api.ledger.store, clock=lambda: now[0])
    try:
        _history(api, 1, 1)
        dispatcher.step()
        # Attempts at 0, 1, 12 and 23 hours: still within the day, still active.
        for hours in (1, 11, 11):
            now[0] += timedelta(hours=hours)
            dispatcher.step()
            endpoint = dispatcher.store.get(hook["webhook_id"])
            assert endpoint is not None
            assert endpoint.status == "active"
        now[0] += timedelta(hours=2)
        dispatcher.step()
    finally:
        receiver.kill()
        dispatcher.close()
    endpoint = dispatcher.store.get(hook["webhook_id"])
    assert endpoint is not None
    assert (endpoint.status, endpoint.disabled_reason) == (
        "disabled",
        "failing_for_longer_than_the_retry_period",
    )
    (delivery,) = dispatcher.store.deliveries(hook["webhook_id"])
    assert (delivery.status, delivery.attempts) == ("failed", 5)
    dispatcher.store.close()


def test_in_production_mode_deliveries_come_from_postgresql(
    pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    settings = production_settings(pg_dsn, schema)
    api = build_api(settings)
    receiver = Receiver(tmp_path / "received.ndjson", fail_rate=0.0)
    receiver.start()
    try:
        record_catalog(api.ledger, purposes=("newsletter", "offers"))
        hook = _register(api, {"url": receiver.url, "event_types": ["ConsentGranted"]})
        _history(api, 3, 2)
        dispatcher = build_dispatcher(settings, api.ledger.store)
        try:
            assert dispatcher.step() == 3
            assert dispatcher.step() == 0
        finally:
            dispatcher.close()
            dispatcher.store.close()
    finally:
        receiver.kill()
        api.close()
    verifier = Webhook(hook["secret"])
    bodies = [verifier.verify(line["body"], line["headers"]) for line in receiver.received()]
    assert [b["data"]["subject"] for b in bodies] == ["p-0", "p-1", "p-2"]
    assert {b["type"] for b in bodies} == {"ConsentGranted"}
