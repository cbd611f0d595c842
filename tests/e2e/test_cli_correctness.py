"""The CLI reads addresses and times as the API does: one address rule, one time parser."""

import json
from pathlib import Path
from typing import Any

from tests.cli import cli_output, run_cli

ADDRESS = "luc@exémple.fr"


def _ok(data_dir: Path, *args: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(cli_output(data_dir, *args).strip().splitlines()[-1])
    return answer


def test_an_idn_address_and_fractional_seconds_are_taken_as_the_api_takes_them(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    policy = tmp_path / "policy.txt"
    policy.write_text("Politique v1\n", encoding="utf-8")
    _ok(data, "purpose", "register", "newsletter", "--legal-basis", "consent", "--description", "n")
    effective = ("--effective-at", "2026-01-01T00:00:00.5Z")
    _ok(data, "policy", "publish", "v1", str(policy), "--purpose", "newsletter", *effective)
    granted = _ok(
        data,
        "grant",
        "--address",
        ADDRESS,
        "--purpose",
        "newsletter",
        "--policy-version",
        "v1",
        "--occurred-at",
        "2026-01-02T10:00:00.250+01:00",
    )

    decided = _ok(
        data,
        "decision-at",
        "--address",
        ADDRESS.upper(),
        "--purpose",
        "newsletter",
        "--at",
        "2026-01-02T09:00:00.250001Z",
    )

    assert decided["subject"] == granted["subject"]
    assert decided["allowed"] is True
    before = _ok(
        data, "decision-at", "--subject", granted["subject"], "--purpose", "newsletter",
        "--at", "2026-01-02T09:00:00.249Z",
    )  # fmt: skip
    assert before["allowed"] is False


def test_a_time_without_a_zone_or_as_a_number_is_refused_naming_the_option(
    tmp_path: Path,
) -> None:
    for value in ("2026-01-02T09:00:00", "1767344400"):
        refused = run_cli(
            tmp_path / "var", "decision-at", "--subject", "p1", "--purpose", "n", "--at", value
        )

        assert refused.returncode == 2
        assert "--at" in refused.stderr
