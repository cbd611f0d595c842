"""`consent-ledger serve` as a user starts it: a real process answering over HTTP."""

import json
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from tests.cli import CLI, api_key_headers, clean_env, cli_output
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


def _answering(embedded_server: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> Path:
    """The data directory of the embedded server, once it answers."""
    url, process = embedded_server
    assert _wait_healthy(url, process).status_code == 200
    return tmp_path / "data"


def test_serve_feeds_the_embedded_projection(
    embedded_server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    data = _answering(embedded_server, tmp_path)
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
    url, data = embedded_server[0], _answering(embedded_server, tmp_path)
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
    # Its one stylesheet comes from the server itself; no script could run, inline or not.
    assert policy["style-src"] == "'self'"
    assert "<style" not in page.text
    assert '<link rel="stylesheet" href="/assets/pages.css">' in page.text
    assert "script-src" not in policy


HEADER_TIMEOUT_S = 1.0


@pytest.fixture
def bounded_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`serve` with small header limits: 8 KiB of headers, read within one second."""
    port = free_port()
    env = clean_env(
        CONSENT_DATA_DIR=str(tmp_path / "data"),
        CONSENT_HTTP_MAX_HEADER_BYTES="8192",
        CONSENT_HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
    )
    with _serving(env, port) as url:
        yield url, port


@contextmanager
def _serving(env: dict[str, str], port: int) -> Iterator[str]:
    """`serve` on ``port`` with ``env``, answering; its URL. Stopped on leaving."""
    process = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_healthy(url, process).status_code == 200
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answer(conn: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_oversize_request_headers_are_a_431_before_they_are_read(
    bounded_server: tuple[str, int],
) -> None:
    url, port = bounded_server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /v1/check HTTP/1.1\r\nHost: x\r\nX-Filler: ")
        sent = 0
        try:
            while sent < 20 * 1024 * 1024:
                conn.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(conn)
    assert sent < 20 * 1024 * 1024, "the server kept reading a 20 MB header"
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert httpx.get(f"{url}/healthz", headers={"X-Small": "a" * 4000}).status_code == 200


def test_a_connection_sending_its_headers_slowly_is_closed_after_the_header_timeout(
    bounded_server: tuple[str, int],
) -> None:
    _, port = bounded_server
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
        started = time.monotonic()
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        while time.monotonic() - started < HEADER_TIMEOUT_S + 5:
            try:
                conn.sendall(b"X")  # one byte of a header every 0.2 s, never the end
                if conn.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the slow connection was still open"
    assert HEADER_TIMEOUT_S * 0.9 <= closed_after < HEADER_TIMEOUT_S + 1.5


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`serve` on the embedded default with a key of every scope, and a purpose and policy."""
    env = clean_env(CONSENT_DATA_DIR=str(tmp_path / "data"))
    headers = api_key_headers(env, "admin", "write", "check")
    with _serving(env, free_port()) as url:
        catalog = [
            (
                "/v1/purposes",
                {"purpose": "newsletter", "legal_basis": "consent", "description": "News"},
            ),
            (
                "/v1/policy-versions",
                {
                    "version": "v1",
                    "text_sha256": "a" * 64,
                    "effective_at": "2026-01-01T00:00:00Z",
                    "purposes": ["newsletter"],
                },
            ),
        ]
        for path, body in catalog:
            assert httpx.post(url + path, json=body, headers=headers).status_code == 201
        yield url, headers


def test_a_bulk_line_longer_than_a_read_chunk_is_one_error_answer(
    keyed_server: tuple[str, dict[str, str]],
) -> None:
    url, headers = keyed_server
    body = b"first-1\n" + b"x" * 300_000 + b"\nlast-1\n" + b"y" * 5_000
    chunks = (body[n : n + 4096] for n in range(0, len(body), 4096))
    answer = httpx.post(
        f"{url}/v1/check",
        params={"purpose": "newsletter"},
        content=chunks,
        headers=headers | {"Content-Type": "text/plain"},
        timeout=30,
    )
    assert answer.status_code == 200
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines == [
        {"subject": "first-1", "allowed": False, "reason": "never_granted"},
        {"error": "line longer than 1024 bytes"},
        {"subject": "last-1", "allowed": False, "reason": "never_granted"},
        {"error": "line longer than 1024 bytes"},
    ]


def test_a_command_on_the_catalog_key_is_a_422_and_its_batch_neighbours_are_recorded(
    keyed_server: tuple[str, dict[str, str]],
) -> None:
    url, headers = keyed_server
    grant = {"purpose": "newsletter", "policy_version": "v1"}
    bad = [
        ("/v1/consents/confirm", {"subject": "@catalog", "purpose": "newsletter"}),
        ("/v1/rights-requests", {"subject": "@catalog", "right": "access"}),
        (
            "/v1/rights-requests/close",
            {"subject": "@catalog", "request_id": str(uuid4()), "outcome": "fulfilled"},
        ),
    ]
    calls = [("/v1/consents/grant", grant | {"subject": f"g-{n}"}) for n in range(24)]
    for n, call in enumerate(bad):
        calls.insert(8 * n + 4, call)
    with (
        httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        ThreadPoolExecutor(max_workers=len(calls)) as pool,
    ):
        answers = list(pool.map(lambda call: client.post(call[0], json=call[1]), calls))
    for (path, body), answer in zip(calls, answers, strict=True):
        if body["subject"] == "@catalog":
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["field"] == "subject"
        else:
            assert answer.status_code == 201, (path, answer.text)
