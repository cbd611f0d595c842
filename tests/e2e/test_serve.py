"""`consent-ledger serve` as a user starts it: a real process answering over HTTP."""

import base64
import hashlib
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli import CLI, clean_env, cli_output
from tests.conftest import free_port

STARTUP_TIMEOUT_S = 20.0


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=clean_env(CONSENT_DATA_DIR=str(tmp_path / "data")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited before answering"
        try:
            return httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"no answer from {url}/healthz within {STARTUP_TIMEOUT_S} s")


def test_serve_answers_healthz_on_the_embedded_default(
    embedded_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, process = embedded_server
    response = _wait_healthy(url, process)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mode": "embedded", "store": "ok"}
    assert (tmp_path / "data" / "consent-ledger.sqlite3").exists()
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert f"listening on {url}" in output
    assert str((tmp_path / "data").resolve()) in output


def _refused_start(**settings: str) -> str:
    """What `serve` says on stderr when it refuses to start with ``settings`` (exit status 2)."""
    result = subprocess.run(
        [CLI, "serve"],
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    return result.stderr


def test_production_mode_without_a_database_is_a_clear_startup_error() -> None:
    assert "CONSENT_PG_DSN" in _refused_start(CONSENT_MODE="production")


def test_an_invalid_setting_names_the_variable() -> None:
    assert "CONSENT_HTTP_PORT" in _refused_start(CONSENT_HTTP_PORT="not-a-port")


def _serving(embedded_server: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> Path:
    """The data directory of the embedded server, once it answers."""
    url, process = embedded_server
    assert _wait_healthy(url, process).status_code == 200
    return tmp_path / "data"


def test_serve_feeds_the_embedded_projection(
    embedded_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    data = _serving(embedded_server, tmp_path)
    written = subprocess.run(
        [CLI, "unsubscribe", "--subject", "fed-1"],
        env=clean_env(CONSENT_DATA_DIR=str(data)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    position = json.loads(written.stdout)["position"]
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    fed = 0
    while time.monotonic() < deadline and fed < position:
        with sqlite3.connect(data / "consent-ledger.sqlite3") as conn:
            row = conn.execute(
                "select position from projection_position where name = 'embedded'"
            ).fetchone()
        fed = row[0] if row else 0
        time.sleep(0.1)
    assert fed >= position


def test_the_auditors_page_is_never_cached_and_runs_only_its_own_style(
    embedded_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, data = embedded_server[0], _serving(embedded_server, tmp_path)
    key = json.loads(cli_output(data, "keys", "create", "--name", "dpo", "--scope", "audit"))
    subject = json.loads(cli_output(data, "unsubscribe", "--subject", "audited-1"))["subject"]

    page = httpx.get(f"{url}/audit/persons/{subject}", auth=("dpo", key["key"]), timeout=10)

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert (policy["frame-ancestors"], policy["base-uri"]) == ("'none'", "'none'")
    # The one inline style is allowed by its hash; no inline script could run.
    style = page.text.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"
    assert "script-src" not in policy
