"""The sender's client (``client/``) against a real ``consent-ledger serve``, both modes."""

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from client import AsyncConsentClient, ConsentClient, ConsentUnavailableError
from tests.cli import CLI, clean_env
from tests.conftest import free_port
from tests.helpers import production_env
from tests.unit.test_layout import ROOT, _imports

STARTUP_TIMEOUT_S = 90.0
POLICY = {"version": "v1", "text_sha256": "a" * 64, "effective_at": "2026-01-01T00:00:00Z"}


class Server:
    """``consent-ledger serve`` in a process of its own, with an admin+write+check key."""

    def __init__(self, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        created = subprocess.run(
            [
                CLI,
                "keys",
                "create",
                "--name",
                "client",
                "--scope",
                "admin",
                "--scope",
                "write",
                "--scope",
                "check",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        self.key = json.loads(created.stdout)["key"]
        self.process = subprocess.Popen(
            [CLI, "serve", "--port", port],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "serve exited"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        pytest.fail("serve did not answer")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Server]:
    server = Server(clean_env(CONSENT_DATA_DIR=str(tmp_path / "data")))
    yield server
    server.stop()


def _catalog(ledger: ConsentClient) -> None:
    ledger.register_purpose(
        purpose="newsletter", legal_basis="consent", description="n", direct_marketing=True
    )
    ledger.publish_policy_version(**POLICY, purposes=["newsletter"])


def test_the_sync_client_sees_its_own_writes_and_streams_many_checks(embedded: Server) -> None:
    with ConsentClient(embedded.url, api_key=embedded.key) as ledger:
        _catalog(ledger)
        granted = ledger.grant_consent(
            address="kim@example.org", purpose="newsletter", policy_version="v1"
        )
        assert ledger.position == granted.position
        # No wait, no min_position given: the client passes its own consistency token.
        assert ledger.check(subject=granted.subject, purpose="newsletter").allowed
        ledger.unsubscribe(subject=granted.subject)
        answer = ledger.check(address="kim@example.org", purpose="newsletter")
        assert (answer.allowed, answer.reason) == (False, "unsubscribed")
        answers = list(
            ledger.check_many(
                iter(["kim@example.org", "nobody@example.org", "not an address"]),
                purpose="newsletter",
                input="addresses",
            )
        )
        assert [(a.allowed, a.reason) for a in answers[:2]] == [
            (False, "unsubscribed"),
            (False, "never_granted"),
        ]
        assert answers[2].error is not None


def test_the_async_client_records_and_checks(embedded: Server) -> None:
    async def run() -> list[tuple[bool, str | None]]:
        async with AsyncConsentClient(embedded.url, api_key=embedded.key) as ledger:
            await ledger.register_purpose(
                purpose="newsletter", legal_basis="consent", description="n"
            )
            await ledger.publish_policy_version(**POLICY)
            first = await ledger.grant_consent(
                subject="p-1", purpose="newsletter", policy_version="v1"
            )
            single = await ledger.check(subject=first.subject, purpose="newsletter")
            many = [
                answer async for answer in ledger.check_many(["p-1", "p-2"], purpose="newsletter")
            ]
            return [(single.allowed, single.reason)] + [(a.allowed, a.reason) for a in many]

    assert asyncio.run(run()) == [(True, None), (True, None), (False, "never_granted")]


def test_a_check_the_projection_cannot_answer_yet_is_retried_after_retry_after(
    embedded: Server,
) -> None:
    with ConsentClient(embedded.url, api_key=embedded.key, retries=2) as ledger:
        _catalog(ledger)
        started = time.monotonic()
        with pytest.raises(ConsentUnavailableError) as raised:
            ledger.check(subject="p-1", purpose="newsletter", min_position=10**9)
        assert raised.value.status == 503
        # Two retries, each after the server's Retry-After (1 s).
        assert time.monotonic() - started >= 2.0


def test_in_production_mode_writes_record_once_each_and_checks_fail_closed(
    tmp_path: Path, pg_dsn: str, schema: str
) -> None:
    env = clean_env(**production_env(pg_dsn, schema, CONSENT_CHECK_WAIT_S="0.2"))
    server = Server(env)
    try:
        with ConsentClient(server.url, api_key=server.key, retries=1) as ledger:
            _catalog(ledger)
            granted = ledger.grant_consent(subject="p-1", purpose="newsletter", policy_version="v1")
            again = ledger.grant_consent(subject="p-1", purpose="newsletter", policy_version="v1")
            assert not granted.duplicate
            assert not again.duplicate
            assert again.position > granted.position
            # No consumer runs here: the projection never covers the write, and the client's
            # check, which passes the write's position, is refused rather than answered stale.
            with pytest.raises(ConsentUnavailableError):
                ledger.check(subject="p-1", purpose="newsletter")
    finally:
        server.stop()


def test_the_client_imports_nothing_of_the_server() -> None:
    ours = ("schemas", "ledger", "relay", "access", "consumers", "projections", "entrypoints")
    for path in sorted((ROOT / "client").rglob("*.py")):
        assert not {m for m in _imports(path) if m.split(".")[0] in ours}, path
