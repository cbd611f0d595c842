"""The rights commands (export, decision-at, retention, requests), run as an operator runs them."""

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.audit.tlog.bundle import verify_bundle
from tests.cli import cli_output, run_cli

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ANN = "ann@example.org"


def _at(days: float) -> str:
    return (T0 + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S%z")


def _lines(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cli_output(data_dir, *args).splitlines() if line.strip()]


def _setup(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    policy = tmp_path / "policy.txt"
    policy.write_text("Politique de confidentialité v1\n", encoding="utf-8")
    _lines(
        data,
        "purpose",
        "register",
        "offers",
        "--legal-basis",
        "consent",
        "--description",
        "Offers",
        "--max-age-days",
        "365",
        "--direct-marketing",
    )
    _lines(
        data,
        "policy",
        "publish",
        "v1",
        str(policy),
        "--purpose",
        "offers",
        "--effective-at",
        "2023-12-01T00:00:00+00:00",
    )
    _lines(
        data,
        "grant",
        "--address",
        ANN,
        "--purpose",
        "offers",
        "--policy-version",
        "v1",
        "--occurred-at",
        _at(1),
    )
    return data


def test_decision_at_and_retention_explain_why_sending_stopped(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    (allowed,) = _lines(
        data, "decision-at", "--address", ANN, "--purpose", "offers", "--at", _at(100)
    )
    assert (allowed["allowed"], allowed["policy"]["version"]) == (True, "v1")
    assert allowed["deciding_event"]["event_type"] == "ConsentGranted"
    (expired,) = _lines(data, "decision-at", "--address", ANN, "--purpose", "offers")
    assert (expired["allowed"], expired["reason"]) == (False, "expired")

    planned = _lines(data, "retention", "run", "--dry-run")
    assert [(p["purpose"], p["reason"]) for p in planned] == [("offers", "lapsed")]
    recorded = run_cli(data, "retention", "run")
    assert recorded.returncode == 0, recorded.stderr
    assert "1 due, 1 recorded" in recorded.stderr
    again = run_cli(data, "retention", "run")
    assert "0 due, 0 recorded" in again.stderr

    (now,) = _lines(data, "decision-at", "--address", ANN, "--purpose", "offers")
    assert (now["reason"], now["deciding_event"]["event_type"]) == ("withdrawn", "ConsentWithdrawn")
    assert now["deciding_event"]["source"] == "retention"
    assert now["deciding_event"]["fields"]["reason"] == "lapsed"
    assert now["deciding_event"]["occurred_at"] == (T0 + timedelta(days=366)).isoformat()

    refused = run_cli(data, "decision-at", "--purpose", "offers")
    assert refused.returncode == 2
    future = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert run_cli(data, "retention", "run", "--at", future).returncode == 2


def test_export_writes_events_receipts_and_a_bundle_that_verifies(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    out = tmp_path / "ann.json"
    result = run_cli(data, "export", "--address", ANN, "--out", str(out))
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["events"][0]["personal"]["address"] == ANN
    assert document["consent_receipts"][0]["retention"]["max_age_days"] == 365
    assert document["proof_bundle"]["status"] == "included"
    (key,) = [line for line in run_cli(data, "audit", "key").stdout.splitlines() if line]
    report = verify_bundle(document["proof_bundle"]["bundle"], verifier_key=key)
    assert report.entries == 1
    assert run_cli(data, "export", "--subject", "nobody", "--out", str(out)).returncode == 1


def test_no_bundle_is_exported_from_an_altered_store(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    assert run_cli(data, "audit", "checkpoint").returncode == 0
    with sqlite3.connect(data / "consent-ledger.sqlite3") as conn:
        position, state = conn.execute(
            "select rowid, state from stored_events where topic like 'ConsentGranted/%'"
        ).fetchone()
        subject = json.loads(state)["subject"]
        conn.execute(
            "update stored_events set state = ? where rowid = ?",
            (state.replace(b'"offers"', b'"offerz"', 1), position),
        )
    out = tmp_path / "bundle.json"
    refused = run_cli(data, "audit", "export", "--subject", subject, "--out", str(out))
    assert refused.returncode == 1
    assert f"position {position}:" in refused.stderr
    assert not out.exists()

    person = tmp_path / "ann.json"
    assert run_cli(data, "export", "--subject", subject, "--out", str(person)).returncode == 0
    proof = json.loads(person.read_text(encoding="utf-8"))["proof_bundle"]
    assert proof["status"] == "tampered"
    assert f"position {position}:" in proof["detail"]


def test_rights_requests_are_opened_listed_when_overdue_and_closed(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    opened = run_cli(
        data, "rights", "open", "--address", ANN, "--right", "access", "--received-at", _at(5)
    )
    assert opened.returncode == 0, opened.stderr
    answer = json.loads(opened.stdout)
    request_id, subject = answer["request_id"], answer["subject"]
    listed = run_cli(data, "rights", "list", "--overdue")
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["request_id"], row["right"], row["overdue"]) == (request_id, "access", True)
    assert row["due_at"] == (T0 + timedelta(days=35)).isoformat()
    assert json.loads(listed.stderr)["access"] == {"open": 1, "overdue": 1}

    _lines(
        data,
        "rights",
        "close",
        "--subject",
        subject,
        "--request-id",
        request_id,
        "--outcome",
        "fulfilled",
    )
    assert run_cli(data, "rights", "list").stdout == ""


def test_a_subject_that_holds_an_address_is_refused_by_the_cli(tmp_path: Path) -> None:
    data = _setup(tmp_path)
    refused = run_cli(
        data, "grant", "--subject", "signup-ann@example.org", "--purpose", "offers",
        "--policy-version", "v1",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "subject" in refused.stderr
    assert "email address" in refused.stderr
