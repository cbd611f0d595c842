"""``consent-ledger suppressions export``: what a sender moves to another provider."""

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from entrypoints.bootstrap import build_ledger
from entrypoints.cli.main import app
from entrypoints.settings import Mode, Settings
from ledger.domain import commands
from tests.helpers import CATALOG_TIME, POLICY_SHA, marketing_purpose


def test_the_export_lists_every_suppression_with_the_address_unless_erased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "var"
    ledger = build_ledger(Settings(mode=Mode.EMBEDDED, data_dir=data))
    try:
        ledger.execute(marketing_purpose("newsletter"))
        ledger.execute(
            commands.PublishPolicyVersion(
                version="v1",
                text_sha256=POLICY_SHA,
                effective_at=CATALOG_TIME,
                occurred_at=CATALOG_TIME,
            )
        )
        at = {"occurred_at": CATALOG_TIME}
        kim = ledger.execute(commands.Unsubscribe(address="kim@example.org", **at)).subject
        lou = ledger.execute(
            commands.RecordComplaint(
                address="lou@example.org", feedback_type="abuse", report_sha256="a" * 64, **at
            )
        ).subject
        ledger.execute(commands.EraseSubject(subject=lou, **at))
    finally:
        ledger.close()
    monkeypatch.setenv("CONSENT_DATA_DIR", str(data))
    monkeypatch.delenv("CONSENT_MODE", raising=False)
    runner = CliRunner()

    as_csv = runner.invoke(app, ["suppressions", "export", "--format", "csv"])
    as_ndjson = runner.invoke(app, ["suppressions", "export", "--format", "ndjson"])

    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["subject"], r["scope"], r["reason"], r["address"]) for r in rows] == [
        (kim, "*", "unsubscribed", "kim@example.org"),
        (lou, "*", "complained", ""),
        (lou, "#erased", "erased", ""),
    ]
    lines = [json.loads(line) for line in as_ndjson.stdout.splitlines()]
    assert [(x["subject"], x["reason"], x["address"]) for x in lines] == [
        (kim, "unsubscribed", "kim@example.org"),
        (lou, "complained", None),
        (lou, "erased", None),
    ]
    assert "lou@example.org" not in as_csv.stdout + as_ndjson.stdout
