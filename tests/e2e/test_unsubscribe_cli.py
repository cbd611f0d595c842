"""`consent-ledger unsubscribe-headers` as a sender runs it: headers whose link verifies."""

import json
import subprocess
from pathlib import Path

from entrypoints.bootstrap_keys import build_hasher, build_token_codec
from entrypoints.settings import Settings
from tests.cli import run_cli


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        data_dir, "unsubscribe-headers", *args, CONSENT_PUBLIC_URL="https://mail.example.org"
    )


def test_headers_carry_a_link_naming_the_keyed_hash_never_the_address(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _run(
        data, "--address", "Bob@Example.org", "--purpose", "newsletter", "--campaign", "c1"
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("List-Unsubscribe: <https://mail.example.org/u/")
    assert second == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    assert "bob" not in result.stdout.lower()
    token = first.removeprefix("List-Unsubscribe: <https://mail.example.org/u/").removesuffix(">")
    settings = Settings(data_dir=data)
    claim = build_token_codec(settings).verify(token)
    assert claim.subject == build_hasher(settings).subject_for("bob@example.org")
    assert (claim.purpose, claim.campaign_id) == ("newsletter", "c1")


def test_json_output_and_bad_arguments(tmp_path: Path) -> None:
    result = _run(tmp_path / "data", "--subject", "p-1", "--list", "weekly", "--json")
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://mail.example.org/u/")
    both = _run(tmp_path / "data", "--subject", "p-1", "--purpose", "newsletter", "--list", "w")
    assert both.returncode == 2
    neither = _run(tmp_path / "data", "--purpose", "newsletter")
    assert neither.returncode == 2
    bad = _run(tmp_path / "data", "--address", "not an address")
    assert bad.returncode == 2
    assert "not an address" not in bad.stderr
