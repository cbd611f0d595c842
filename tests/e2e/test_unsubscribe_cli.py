"""`consent-ledger unsubscribe-headers` as a sender runs it: headers whose link verifies."""

import json
import os
import subprocess
import sys
from pathlib import Path

from entrypoints.bootstrap import build_hasher, build_token_codec
from entrypoints.settings import Settings

CLI = str(Path(sys.executable).parent / "consent-ledger")


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env |= {"CONSENT_DATA_DIR": str(data_dir), "CONSENT_PUBLIC_URL": "https://mail.example.org"}
    return subprocess.run(
        [CLI, "unsubscribe-headers", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
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
