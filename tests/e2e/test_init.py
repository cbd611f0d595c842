"""`consent-ledger init`, the compose stack's one-shot step: it makes the tables and prints the
first admin key once; run again it makes no second key. `--version` names the installed one."""

import json
import subprocess
from importlib.metadata import version
from pathlib import Path

from fastapi.testclient import TestClient

from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.settings import Mode, Settings
from tests.cli import CLI, clean_env, run_cli


def test_init_prints_the_first_admin_key_once_and_it_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = run_cli(data_dir, "init")
    again = run_cli(data_dir, "init")

    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert created["scopes"] == ["admin"]
    assert created["key"].startswith("clk_")
    assert "cannot be shown again" in first.stderr
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"initialised": True, "key": None}
    assert created["key"] not in again.stdout + again.stderr

    services = build_api(Settings(mode=Mode.EMBEDDED, data_dir=data_dir))
    try:
        assert len(services.keys.list()) == 1
        app = create_app(
            health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services
        )
        with TestClient(app) as client:
            answer = client.post(
                "/v1/purposes",
                json={"purpose": "newsletter", "legal_basis": "consent", "description": "News"},
                headers={"Authorization": f"Bearer {created['key']}"},
            )
    finally:
        services.close()
    assert answer.status_code == 201, answer.text


def test_version_names_the_installed_distribution() -> None:
    result = subprocess.run(
        [CLI, "--version"], env=clean_env(), capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == f"consent-ledger {version('consent-ledger')}\n"
