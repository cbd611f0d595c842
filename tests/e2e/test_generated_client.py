"""A client generated from /openapi.json by a third-party generator (openapi-python-client, from
PyPI) builds, and its check answers as the server does, against a real `consent-ledger serve`.

The generator lives in a virtual environment of its own under the cache directory (made once,
pinned by tests/clients/openapi-python-client.txt): its typer pin differs from ours.
"""

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli import CLI, api_key_headers, clean_env, run_ok, serving

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tests" / "clients" / "openapi-python-client.txt"
CACHE = Path(
    os.environ.get("CONSENT_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "consent-ledger"
)

USE_THE_CLIENT = """
import json, sys
from consent_ledger_client import AuthenticatedClient
from consent_ledger_client.api.sender import check_one_v1_check_get
from consent_ledger_client.models import CheckAnswer, Problem

base_url, token, subject = sys.argv[1:4]
with AuthenticatedClient(base_url=base_url, token=token) as client:
    answer = check_one_v1_check_get.sync(client=client, purpose="newsletter", subject=subject)
    assert isinstance(answer, CheckAnswer), answer
with AuthenticatedClient(base_url=base_url, token="clk_not-a-key") as stranger:
    refused = check_one_v1_check_get.sync(client=stranger, purpose="newsletter", subject=subject)
    assert isinstance(refused, Problem), refused
print(json.dumps({"check": answer.to_dict(), "refused": refused.to_dict()}))
"""


def _generator() -> Path:
    """The generator's virtual environment, made on first use and again when the pins change."""
    venv = CACHE / "openapi-python-client"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != REQUIREMENTS.read_text():
        run_ok([sys.executable, "-m", "venv", "--clear", str(venv)])
        run_ok([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)])
        stamp.write_text(REQUIREMENTS.read_text())
    return venv


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = clean_env(CONSENT_DATA_DIR=str(tmp_path / "data"))
    headers = api_key_headers(env, "admin", "write", "check")
    with serving(CLI, env) as url:
        yield url, headers


def test_a_generated_client_builds_and_checks_against_the_server(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, headers = server
    with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
        for path, body in (
            (
                "/v1/purposes",
                {"purpose": "newsletter", "legal_basis": "consent", "description": "News"},
            ),
            (
                "/v1/policy-versions",
                {"version": "v1", "text_sha256": "d" * 64, "effective_at": "2026-01-01T00:00:00Z"},
            ),
            (
                "/v1/consents/grant",
                {"subject": "crm-7", "purpose": "newsletter", "policy_version": "v1"},
            ),
        ):
            assert api.post(path, json=body).status_code == 201, path
        document = tmp_path / "openapi.json"
        document.write_text(api.get("/openapi.json").text, encoding="utf-8")
    venv = _generator()
    bin_dir = venv / "bin"
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    run_ok(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document)],
        cwd=tmp_path,
        env=env,
    )
    generated = tmp_path / "consent-ledger-client"
    site = tmp_path / "site"
    # Built as a user builds it: a wheel from its own pyproject (poetry-core), then installed.
    run_ok(
        [
            *(str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--target", str(site), str(generated)),
        ],
        env=env,
    )
    token = headers["Authorization"].removeprefix("Bearer ")
    out = run_ok(
        [str(bin_dir / "python"), "-c", USE_THE_CLIENT, url, token, "crm-7"],
        env=env | {"PYTHONPATH": str(site)},
    )

    answers = json.loads(out)
    assert answers["check"]["subject"] == "crm-7"
    assert answers["check"]["allowed"] is True
    assert answers["check"]["covered"] >= 3
    assert answers["refused"]["status"] == 401
