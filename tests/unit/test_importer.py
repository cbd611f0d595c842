"""Import of a subscriber base: every line recorded or rejected with a reason, never twice."""

import gc
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.domain.errors import InvalidFieldError
from ledger.write.importer import (
    FileFormat,
    ImportOptions,
    ImportSummary,
    command_for,
    read_rows,
    run_import,
)
from ledger.write.service import Ledger
from tests.helpers import sqlite_ledger

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CSV = """address,status,opt_in_date,source,opt_in_ip,policy_version,extra
ann@example.org,subscribed,2024-01-02,web_form,192.0.2.4,v1,x
bob@example.org,unsubscribed,2024-01-03,,,,
nobody,subscribed,2024-01-02,,,v1,
cat@example.org,weird,2024-01-02,,,v1,
dan@example.org,pending,2024-01-02T10:00:00,,,v1,
eve@example.org,subscribed,2024-01-02,,,v7,
fay@example.org,subscribed,2024-01-02,,,v1,too,many
"""


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = sqlite_ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


def _import(
    ledger: Ledger, text: str, file_format: FileFormat = FileFormat.CSV, chunk_size: int = 2
) -> tuple[ImportSummary, list[tuple[int, str]]]:
    rejects: list[tuple[int, str]] = []
    summary = run_import(
        ledger,
        read_rows(io.StringIO(text), file_format),
        options=ImportOptions(purpose="newsletter"),
        reject=lambda number, reason: rejects.append((number, reason)),
        chunk_size=chunk_size,
    )
    return summary, sorted(rejects)


def test_csv_import_records_good_lines_and_rejects_bad_ones_with_reasons(ledger: Ledger) -> None:
    summary, rejects = _import(ledger, CSV)
    assert (summary.lines, summary.recorded, summary.rejected) == (7, 2, 5)
    reasons = dict(rejects)
    assert reasons[4].startswith("address")
    assert reasons[5].startswith("status")
    assert "time zone" in reasons[6]
    assert reasons[7].startswith("policy_version")
    assert "more fields" in reasons[8]
    assert all("example.org" not in reason and "nobody" not in reason for _, reason in rejects)
    ann = ledger.hasher.subject_for("ann@example.org")
    assert [e.event_type for e in ledger.history(ann)] == ["ConsentGranted"]
    bob = ledger.hasher.subject_for("bob@example.org")
    assert [e.event_type for e in ledger.history(bob)] == ["UnsubscribeClicked"]


def test_importing_the_same_file_twice_records_nothing_new(ledger: Ledger) -> None:
    _import(ledger, CSV)
    head = ledger.store.head()
    summary, _ = _import(ledger, CSV)
    assert (summary.recorded, summary.duplicates) == (0, 2)
    assert ledger.store.head() == head


def test_ndjson_import_and_its_unreadable_lines(ledger: Ledger) -> None:
    text = (
        '{"address": "gus@example.org", "status": "subscribed", "opt_in_date": "2024-02-01", '
        '"policy_version": "v1"}\n'
        "not json\n"
        "[1, 2]\n"
        "\n"
    )
    summary, rejects = _import(ledger, text, FileFormat.NDJSON)
    assert (summary.recorded, summary.rejected) == (1, 2)
    assert [n for n, _ in rejects] == [2, 3]


def test_accented_and_idn_addresses_are_imported_under_the_ledgers_subject(
    ledger: Ledger,
) -> None:
    text = (
        "address,status,opt_in_date,policy_version\n"
        "Chloé.Bernard@Exemple.FR,subscribed,2024-01-02,v1\n"
        "luc@exémple.fr,subscribed,2024-01-02,v1\n"
    )
    summary, rejects = _import(ledger, text)

    assert (summary.recorded, rejects) == (2, [])
    for address in ("chloé.bernard@exemple.fr", "LUC@EXÉMPLE.FR"):
        events = ledger.history(ledger.hasher.subject_for(address))
        assert [e.event_type for e in events] == ["ConsentGranted"]


def test_a_csv_without_the_required_columns_is_refused_before_any_line() -> None:
    with pytest.raises(InvalidFieldError) as error:
        list(read_rows(io.StringIO("email,state\na@b.c,ok\n"), FileFormat.CSV))
    assert error.value.field == "header"


def test_command_ids_of_import_lines_never_change() -> None:
    # Ids from an earlier release: a file imported then must be a no-op when imported again.
    row = {
        "address": "ann@example.org",
        "status": "subscribed",
        "opt_in_date": "2024-01-02",
        "source": "web_form",
        "opt_in_ip": "192.0.2.4",
        "policy_version": "v1",
    }
    command = command_for(row, ImportOptions(purpose="newsletter"))
    assert command.command_id == "import:a6c17b4dced3ec145d1cd0e6d29411172e224494b0c36559"


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_lines_are_recorded_in_file_order_whatever_the_chunks(
    ledger: Ledger, chunk_size: int
) -> None:
    lines = [f"p{n}@example.org,subscribed,2024-01-02,,,v1" for n in range(10)]
    lines.insert(4, "bad,subscribed,2024-01-02,,,v1")
    lines.append(lines[0])
    text = "address,status,opt_in_date,source,opt_in_ip,policy_version\n" + "\n".join(lines)
    head = ledger.store.head()
    summary, rejects = _import(ledger, text, chunk_size=chunk_size)
    assert (summary.lines, summary.recorded, summary.duplicates) == (12, 10, 1)
    assert [number for number, _ in rejects] == [6]
    assert summary.last_position == head + 10
    positions = [
        ledger.store.positions_of(ledger.store.originator_uuid(person.id))[1]
        for person in (
            ledger.person(ledger.hasher.subject_for(f"p{n}@example.org")) for n in range(10)
        )
        if person is not None
    ]
    assert positions == list(range(head + 1, head + 11))


def test_the_garbage_collector_is_as_it_was_after_an_import(ledger: Ledger) -> None:
    _import(ledger, CSV)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1000])
def test_rejects_come_in_input_order_whether_refused_on_reading_or_by_the_ledger(
    ledger: Ledger, chunk_size: int
) -> None:
    rejects: list[int] = []
    run_import(
        ledger,
        read_rows(io.StringIO(CSV), FileFormat.CSV),
        options=ImportOptions(purpose="newsletter"),
        reject=lambda number, _: rejects.append(number),
        chunk_size=chunk_size,
    )
    # 4 and 7 are refused by the ledger (address, policy version), 5, 6 and 8 on reading (status,
    # time zone, fields): each in its place.
    assert rejects == [4, 5, 6, 7, 8]
