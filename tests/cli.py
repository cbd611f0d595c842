"""The `consent-ledger` command run as a user runs it: a process of its own, settings explicit."""

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

CLI = str(Path(sys.executable).parent / "consent-ledger")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without its ``CONSENT_*`` settings, then ``settings``.

    The developer's own settings (a DSN, a mode) must not leak into what a test runs.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env.update(settings)
    return env


def run_cli(data_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`consent-ledger ARGS` on the embedded ledger in ``data_dir``, its output captured."""
    return subprocess.run(
        [CLI, *args],
        env=clean_env(CONSENT_DATA_DIR=str(data_dir), **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_ok(argv: list[str], *, timeout: float = 900, **options: Any) -> str:
    """What ``argv`` prints; it must succeed (a failure shows the tail of its output)."""
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=timeout, **options
    )
    assert result.returncode == 0, f"{argv[:4]}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return str(result.stdout)


def cli_output(data_dir: Path, *args: str) -> str:
    """What `consent-ledger ARGS` prints; it must succeed (a failure shows its stderr)."""
    result = run_cli(data_dir, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def api_key_headers(env: dict[str, str], *scopes: str) -> dict[str, str]:
    """The headers of a new API key with ``scopes``, made by `consent-ledger keys create`."""
    created = subprocess.run(
        [CLI, "keys", "create", "--name", "test"]
        + [arg for scope in scopes for arg in ("--scope", scope)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}


SERVE_STARTUP_S = 60.0


@contextmanager
def serving(cli: str, env: dict[str, str], *, cwd: Path | None = None) -> Iterator[str]:
    """`CLI serve` on a free port, once its /healthz answers 200; yields its URL, stops it."""
    port = free_port()
    process = subprocess.Popen(
        [cli, "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVE_STARTUP_S
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def production_env(
    pg_dsn: str, kafka_bootstrap: str, schema: str, topic_keys: str
) -> dict[str, str]:
    """The settings of a production deployment on the test servers, with fresh secrets."""

    def secret() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    return clean_env(
        CONSENT_MODE="production",
        CONSENT_PG_DSN=pg_dsn,
        CONSENT_PG_SCHEMA=schema,
        CONSENT_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CONSENT_SUBJECT_SECRET=secret(),
        CONSENT_MASTER_KEY=secret(),
        CONSENT_AUDIT_SIGNING_KEY=secret(),
        CONSENT_UNSUBSCRIBE_KEYS=f"u1:{secret()}",
        CONSENT_TOPIC_KEYS=topic_keys,
        CONSENT_PUBLIC_URL="https://mail.example.org",
    )
