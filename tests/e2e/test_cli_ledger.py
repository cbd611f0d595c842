"""The operators' CLI on the embedded default, run as a user runs it."""

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.cli import cli_output, run_cli


def _ok(data_dir: Path, *args: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(cli_output(data_dir, *args).strip().splitlines()[-1])
    return answer


def test_operator_flow_from_purpose_to_import(tmp_path: Path) -> None:
    data = tmp_path / "var"
    policy = tmp_path / "policy.txt"
    policy.write_text("Politique de confidentialité v1\n", encoding="utf-8")
    _ok(
        data,
        "purpose",
        "register",
        "newsletter",
        "--legal-basis",
        "consent",
        "--description",
        "News",
    )
    published = _ok(data, "policy", "publish", "v1", str(policy), "--purpose", "newsletter")
    granted = _ok(
        data,
        "grant",
        "--address",
        "Ann@Example.org",
        "--purpose",
        "newsletter",
        "--policy-version",
        "v1",
    )
    assert granted["position"] == published["position"] + 1
    again = _ok(
        data,
        "unsubscribe",
        "--address",
        "ann@example.org",
        "--command-id",
        "click-1",
    )
    assert again["subject"] == granted["subject"]
    assert _ok(data, "unsubscribe", "--address", "ann@example.org", "--command-id", "click-1")[
        "duplicate"
    ]

    refused = run_cli(
        data, "grant", "--subject", "p1", "--purpose", "nope", "--policy-version", "v1"
    )
    assert refused.returncode == 1
    assert "purpose" in refused.stderr

    source = tmp_path / "base.csv"
    source.write_text(
        "address,status,opt_in_date,source,opt_in_ip,policy_version\n"
        "bea@example.org,subscribed,2024-01-02,web_form,192.0.2.9,v1\n"
        "broken,subscribed,2024-01-02,,,v1\n",
        encoding="utf-8",
    )
    summary = _ok(data, "import", str(source), "--purpose", "newsletter")
    assert (summary["recorded"], summary["rejected"]) == (1, 1)
    rejects = Path(summary["rejects"]).read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "line,reason"
    assert rejects[1].startswith("3,address")


def test_help_lists_the_operator_commands(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("serve", "purpose", "policy", "grant", "withdraw", "unsubscribe", "import"):
        assert command in result.stdout


def _newsletter_ledger(tmp_path: Path) -> Path:
    """The data directory of a new embedded ledger with the purpose newsletter and policy v1."""
    data = tmp_path / "var"
    policy = tmp_path / "policy.txt"
    policy.write_text("v1\n", encoding="utf-8")
    _ok(data, "purpose", "register", "newsletter", "--legal-basis", "consent", "--description", "n")
    _ok(data, "policy", "publish", "v1", str(policy), "--purpose", "newsletter")
    return data


def _grant_newsletter(data: Path, address: str) -> dict[str, Any]:
    return _ok(
        data, "grant", "--address", address, "--purpose", "newsletter", "--policy-version", "v1"
    )


def test_check_on_the_embedded_default_needs_no_servers(tmp_path: Path) -> None:
    data = _newsletter_ledger(tmp_path)
    _grant_newsletter(data, "kim@example.org")
    assert _ok(data, "check", "--address", "Kim@Example.org", "--purpose", "newsletter")["allowed"]
    click = _ok(data, "unsubscribe", "--address", "kim@example.org")
    answer = _ok(
        data,
        "check",
        "--address",
        "kim@example.org",
        "--purpose",
        "newsletter",
        "--min-position",
        str(click["position"]),
    )
    assert (answer["allowed"], answer["reason"], answer["covered"]) == (
        False,
        "unsubscribed",
        click["position"],
    )


def test_bulk_check_goes_on_past_bad_lines_and_echoes_addresses_in_csv(tmp_path: Path) -> None:
    data = _newsletter_ledger(tmp_path)
    kim = _grant_newsletter(data, "kim@example.org")["subject"]
    people = tmp_path / "people.csv"
    people.write_text("address\nkim@example.org\nnot-an-address\nzed@example.org\n")
    answered = run_cli(
        data, "check", "--purpose", "newsletter", "--bulk", str(people), "--addresses", "--csv"
    )
    assert answered.returncode == 0, answered.stderr
    rows = answered.stdout.splitlines()
    assert rows[:3] == [
        "subject,allowed,reason,error,address",
        f"{kim},true,,,kim@example.org",
        ",,,address: not a valid email address,not-an-address",
    ]
    assert rows[3].endswith(",false,never_granted,,zed@example.org")
    assert len(rows) == 4

    subjects = tmp_path / "subjects.txt"
    subjects.write_text(f"{kim}\nnot a subject!\nzed\n")
    answered = run_cli(data, "check", "--purpose", "newsletter", "--bulk", str(subjects))
    assert answered.returncode == 0, answered.stderr
    answers = [json.loads(line) for line in answered.stdout.splitlines()]
    assert [a.get("subject") for a in answers] == [kim, None, "zed"]
    assert answers[1]["error"].startswith("subject: ")


def test_replay_rebuilds_a_damaged_embedded_projection(tmp_path: Path) -> None:
    data = _newsletter_ledger(tmp_path)
    address = ("--address", "lea@example.org", "--purpose", "newsletter")
    _ok(data, "grant", *address, "--policy-version", "v1")
    _ok(data, "unsubscribe", "--address", "lea@example.org")
    assert _ok(data, "check", *address)["reason"] == "unsubscribed"
    with sqlite3.connect(data / "consent-ledger.sqlite3") as conn:
        conn.execute("delete from suppression")
        conn.execute("update consent_state set status = 'granted', reason = null")
    assert _ok(data, "check", *address)["allowed"], "the damage should be visible before replay"

    result = run_cli(data, "replay", "--from", "store")

    assert result.returncode == 0, result.stderr
    assert "swapped in" in result.stderr
    answer = _ok(data, "check", *address)
    assert (answer["allowed"], answer["reason"]) == (False, "unsubscribed")
    assert run_cli(data, "replay", "--from", "kafka").returncode == 2
