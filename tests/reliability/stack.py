"""The whole production pipeline as separate processes, each of which the soak may kill.

PostgreSQL and Kafka of the run's own (one broker, or a three-node KRaft cluster; each node
restartable in place), then `consent-ledger` `serve`, `relay`, two `consume` processes in one
group and `audit seal --follow`, all configured by environment as an operator would.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.broker import PrivateBroker, PrivateCluster
from tests.conftest import free_port
from tests.helpers import kill_session
from tests.postgres import PrivatePostgres

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "consent-ledger")
READY_TIMEOUT_S = 60.0
TOPIC = "consent.events.v1"


def _secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Service:
    """One `consent-ledger` process: started, killed with SIGKILL, started again."""

    name: str
    args: list[str]
    env: dict[str, str]
    logs: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    """Exit codes of the times it stopped by itself (not killed by the soak)."""

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            [CLI, *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def kill(self) -> None:
        kill_session(self.process)
        self.process = None

    def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.process = None

    def check_alive(self) -> None:
        """Record an exit the soak did not cause, and start it again as a supervisor would."""
        if self.process is not None and (code := self.process.poll()) is not None:
            self.exits.append(code)
            self.start()


class Stack:
    """PostgreSQL, Kafka and every ledger process of one run, under ``home``."""

    def __init__(self, home: Path, *, libs: Path, brokers: int = 1) -> None:
        self.home = home
        home.chmod(0o755)  # PostgreSQL's own user must reach its directory below
        self.logs = home / "logs"
        self.logs.mkdir(parents=True)
        self.postgres = PrivatePostgres(home=home / "postgres", port=free_port())
        self.cluster: PrivateCluster | None = None
        self.broker: PrivateBroker | None = None
        if brokers > 1:
            self.cluster = PrivateCluster(libs=libs, home=home / "kafka", nodes=brokers)
            self.bootstrap = self.cluster.bootstrap
        else:
            self.broker = PrivateBroker(
                libs=libs, home=home / "kafka", port=free_port(), controller_port=free_port()
            )
            self.bootstrap = self.broker.bootstrap
        self.http_port = free_port()
        self.api = f"http://127.0.0.1:{self.http_port}"
        self.settings = {
            "CONSENT_MODE": "production",
            "CONSENT_PG_DSN": self.postgres.dsn,
            "CONSENT_KAFKA_BOOTSTRAP": self.bootstrap,
            "CONSENT_KAFKA_TOPIC": TOPIC,
            "CONSENT_KAFKA_PARTITIONS": "3",
            "CONSENT_SUBJECT_SECRET": _secret(),
            "CONSENT_MASTER_KEY": _secret(),
            "CONSENT_AUDIT_SIGNING_KEY": _secret(),
            "CONSENT_UNSUBSCRIBE_KEYS": f"soak1:{_secret()}",
            "CONSENT_TOPIC_KEYS": f"soak1:{_secret()}",
            "CONSENT_PUBLIC_URL": "https://mail.example.org",
            "CONSENT_HTTP_PORT": str(self.http_port),
            "CONSENT_AUDIT_CHECKPOINT_EVERY_SECONDS": "5",
            "CONSENT_LOG_LEVEL": "info",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
        self.env = env | self.settings
        self.serve = Service("serve", ["serve"], self.env, self.logs)
        self.relay = Service("relay", ["relay"], self.env, self.logs)
        # At debug level a consumer logs the offsets of every batch it commits: the soak
        # holds them to applying each record once (tests/applied.py).
        self.consumers = [
            Service(
                f"consume-{n}",
                ["consume", "--batch", "500"],
                self.env | {"CONSENT_LOG_LEVEL": "debug"},
                self.logs,
            )
            for n in (1, 2)
        ]
        self.sealer = Service("sealer", ["audit", "seal", "--follow"], self.env, self.logs)
        self.keys: dict[str, str] = {}

    @property
    def services(self) -> list[Service]:
        return [self.serve, self.relay, *self.consumers, self.sealer]

    def start(self) -> None:
        self.postgres.start()
        if self.cluster is not None:
            self.cluster.start()
        elif self.broker is not None:
            self.broker.start()
        for scope in ("write", "check", "audit", "admin", "links"):
            self.keys[scope] = self.cli(
                "keys", "create", "--name", f"soak-{scope}", "--scope", scope
            )["key"]
        for service in self.services:
            service.start()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.serve.process is not None and self.serve.process.poll() is not None:
                break
            time.sleep(0.2)
        msg = f"serve did not become ready; see {self.logs / 'serve.log'}"
        raise RuntimeError(msg)

    def cli(self, *args: str, timeout: float = 300) -> Any:
        """Run a `consent-ledger` command to completion; its stdout parsed as JSON if it is."""
        done = subprocess.run(
            [CLI, *args], check=False, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            msg = f"consent-ledger {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
            raise RuntimeError(msg)
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            return done.stdout

    def supervise(self) -> None:
        for service in self.services:
            service.check_alive()

    def stop(self) -> None:
        for service in self.services:
            service.stop()
        if self.cluster is not None:
            self.cluster.kill()
        elif self.broker is not None:
            self.broker.kill()
        self.postgres.stop()

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
