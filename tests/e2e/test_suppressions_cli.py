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
from tests.helpers import CATALOG_TIME, record_catalog


def test_the_export_lists_every_suppression_with_the_address_unless_erased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "var"
    ledger = build_ledger(Settings(mode=Mode.EMBEDDED, data_dir=data))
    try:
        record_catalog(ledger)
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


PROVIDER_FILES = {
    "sendgrid": (
        ["--kind", "bounce"],
        "email,created,reason,status\n"
        "ann@example.org,1733560000,550 5.1.1 user unknown,5.1.1\n"
        "not-an-address,1733560000,x,5.1.1\n",
        "AddressUndeliverable",
    ),
    "mailchimp": (
        [],
        "Email Address,First Name,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_REASON\n"
        "ann@example.org,Ann,2024-12-01 10:00:00,Spring,NORMAL\n"
        "bob@example.org,Bob,31/12/2024,Spring,NORMAL\n",
        "UnsubscribeClicked",
    ),
    "brevo": (
        [],
        "EMAIL;EMAIL_BLACKLISTED;BLACKLISTED_AT\n"
        "ann@example.org;Yes;2024-12-01T10:00:00Z\n"
        "bob@example.org;No;\n",
        "UnsubscribeClicked",
    ),
}


@pytest.mark.parametrize("provider", sorted(PROVIDER_FILES))
def test_another_providers_export_records_its_events_once_with_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    options, content, event_type = PROVIDER_FILES[provider]
    export = tmp_path / f"{provider}.csv"
    export.write_text(content, encoding="utf-8")
    data = tmp_path / "var"
    monkeypatch.setenv("CONSENT_DATA_DIR", str(data))
    monkeypatch.delenv("CONSENT_MODE", raising=False)
    runner = CliRunner()
    command = ["suppressions", "import", str(export), "--from", provider, *options]

    first, again = runner.invoke(app, command), runner.invoke(app, command)

    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["lines"], summary["recorded"], summary["rejected"]) == (2, 1, 1)
    repeated = json.loads(again.stdout.strip().splitlines()[-1])
    assert (repeated["recorded"], repeated["duplicates"]) == (0, 1)
    rejects = list(csv.reader(Path(summary["rejects"]).read_text(encoding="utf-8").splitlines()))
    assert rejects[0] == ["line", "reason"]
    assert rejects[1][0] == "3"
    ledger = build_ledger(Settings(mode=Mode.EMBEDDED, data_dir=data))
    try:
        (event,) = ledger.history(ledger.hasher.subject_for("ann@example.org"))
    finally:
        ledger.close()
    assert (event.event_type, event.source.value, event.actor) == (
        event_type,
        "import",
        f"import:{provider}",
    )
