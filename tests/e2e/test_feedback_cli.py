"""``consent-ledger feedback ingest``: an mbox, a Maildir or .eml files, as an operator runs it."""

import json
import mailbox
from pathlib import Path
from typing import Any

from entrypoints.bootstrap import build_ledger
from entrypoints.settings import Mode, Settings
from ledger.domain.commands import GrantConsent
from tests.cli import cli_output, run_cli
from tests.feedback_samples import arf, dsn, original_message
from tests.helpers import CATALOG_TIME, record_catalog


def _ok(data: Path, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cli_output(data, *args))
    return result


def _ledger_of_three(tmp_path: Path) -> tuple[Path, list[str]]:
    """An embedded ledger (made in-process, as the CLI would) with three newsletter consents."""
    data = tmp_path / "var"
    ledger = build_ledger(Settings(mode=Mode.EMBEDDED, data_dir=data))
    try:
        record_catalog(ledger)
        subjects = [
            ledger.execute(
                GrantConsent(
                    address=f"p{n}@example.org",
                    purpose="newsletter",
                    policy_version="v1",
                    occurred_at=CATALOG_TIME,
                )
            ).subject
            for n in range(3)
        ]
    finally:
        ledger.close()
    return data, subjects


def _recorded(data: Path, subject: str) -> list[str]:
    ledger = build_ledger(Settings(mode=Mode.EMBEDDED, data_dir=data))
    try:
        return [event.event_type for event in ledger.history(subject)]
    finally:
        ledger.close()


def _reports(subjects: list[str]) -> list[bytes]:
    """A complaint, a not-spam report, a hard bounce by address, and one unattributable."""
    return [
        arf("abuse", original_message(subject_header=subjects[0])),
        arf("not-spam", original_message(subject_header=subjects[1])),
        dsn([("p2@example.org", "failed", "5.1.1")], original_message()),
        arf("abuse", None),
    ]


def _mbox(path: Path, reports: list[bytes]) -> Path:
    box = mailbox.mbox(path / "feedback.mbox")
    for report in reports:
        box.add(report)
    box.close()
    return path / "feedback.mbox"


def _maildir(path: Path, reports: list[bytes]) -> Path:
    box = mailbox.Maildir(path / "Maildir")
    for report in reports:
        box.add(report)
    return path / "Maildir"


def _emls(path: Path, reports: list[bytes]) -> Path:
    folder = path / "reports"
    folder.mkdir()
    for n, report in enumerate(reports):
        (folder / f"{n:03}.eml").write_bytes(report)
    return folder


def test_an_mbox_a_maildir_and_eml_files_of_the_same_reports_record_once(tmp_path: Path) -> None:
    data, subjects = _ledger_of_three(tmp_path)
    reports = _reports(subjects)
    # Each process is slow to start on a loaded machine: one ledger, each kind of file in turn.
    first, *again = (
        _ok(data, "feedback", "ingest", str(write(tmp_path, reports)))
        for write in (_mbox, _maildir, _emls)
    )

    assert (first["reports"], first["recorded"], first["rejected"]) == (4, 3, 1)
    assert first["rejected_by_reason"] == {"unattributable": 1}
    for summary in again:
        assert (summary["reports"], summary["recorded"], summary["duplicate"]) == (4, 0, 3)
        assert summary["rejected"] == 1
    assert [_recorded(data, subject)[-1] for subject in subjects] == [
        "ComplaintReceived",
        "ComplaintReceived",
        "AddressUndeliverable",
    ]
    answer = _ok(data, "check", "--subject", subjects[0], "--purpose", "newsletter")
    assert (answer["allowed"], answer["reason"]) == (False, "complained")
    rejects = _ok(data, "feedback", "rejects")
    assert rejects["by_reason"] == {"unattributable": 1}
    assert rejects["latest"][0]["kind"] == "complaint"


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "var", "feedback", "ingest", str(tmp_path / "nowhere.mbox"))
    assert result.returncode == 2
    assert "nowhere.mbox" in result.stderr
