"""`GET /healthz` tells whether the store answers, without leaking details."""

from pathlib import Path

from fastapi.testclient import TestClient

from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.settings import Mode
from ledger.store.sqlite import sqlite_probe


def test_healthy_sqlite_store_answers_200(tmp_path: Path) -> None:
    check = HealthCheck(mode=Mode.EMBEDDED, probe=sqlite_probe(tmp_path / "ledger.sqlite3"))
    response = TestClient(create_app(health=check)).get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unreachable_store_answers_503(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no-such-dir" / "ledger.sqlite3"
    check = HealthCheck(mode=Mode.EMBEDDED, probe=sqlite_probe(missing_dir))
    response = TestClient(create_app(health=check)).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "mode": "embedded",
        "store": "OperationalError",
    }
