"""Import of an existing subscriber base (CSV or NDJSON), streamed, with a reject list.

Each line names one person by address and says where their consent stands. A bad line is
rejected with its reason and never stops the import. Every line's command id is derived from its
content, so importing the same file again appends nothing.
"""

import csv
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from ledger.commands import Command, GrantConsent, Unsubscribe, WithdrawConsent, build
from ledger.errors import InvalidFieldError, LedgerError
from ledger.service import CommandResult, Ledger
from schemas import Channel, DoubleOptIn, Source, WithdrawalReason

COLUMNS = ("address", "status", "opt_in_date", "source", "opt_in_ip", "policy_version")
"""The columns of an import file (CSV header or NDJSON keys); extra columns are ignored."""

DEFAULT_IN_FLIGHT = 4096
"""Commands submitted but not yet answered: bounds memory whatever the file size."""

GRANTED = frozenset({"subscribed", "opted_in", "opt_in", "granted", "confirmed", "active"})
PENDING = frozenset({"pending", "unconfirmed"})
WITHDRAWN = frozenset({"unsubscribed", "opted_out", "opt_out", "withdrawn"})
COMPLAINED = frozenset({"complained", "spam_complaint"})
SOURCES = frozenset(s.value for s in Source)


class FileFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


@dataclass(frozen=True, slots=True)
class ImportOptions:
    purpose: str
    channel: Channel = Channel.EMAIL
    policy_version: str | None = None
    """Used when a line has no policy_version of its own."""
    actor: str = "import"


@dataclass(slots=True)
class ImportSummary:
    lines: int = 0
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_position: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class LineError(InvalidFieldError):
    """A line of the import file that cannot become a command."""


def detect_format(path: Path) -> FileFormat:
    return FileFormat.NDJSON if path.suffix.lower() in {".ndjson", ".jsonl"} else FileFormat.CSV


def read_rows(
    stream: IO[str], file_format: FileFormat
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) pairs; a row that cannot be read at all is its error text instead."""
    if file_format is FileFormat.CSV:
        reader = csv.DictReader(stream)
        missing = {"address", "status"} - set(reader.fieldnames or ())
        if missing:
            msg = f"the CSV header lacks {', '.join(sorted(missing))}"
            raise InvalidFieldError("header", msg)
        for row in reader:
            if None in row:
                yield reader.line_num, "more fields than the header names"
                continue
            yield reader.line_num, {k: v for k, v in row.items() if k in COLUMNS}
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"not JSON: {error.msg}"
            continue
        if not isinstance(value, dict):
            yield number, "not a JSON object"
            continue
        yield number, {k: v for k, v in value.items() if k in COLUMNS}


def _when(value: Any) -> datetime:
    if not value:
        raise LineError("opt_in_date", "missing")
    text = str(value).strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LineError("opt_in_date", "not an ISO 8601 date or datetime") from None
    if parsed.tzinfo is None:
        raise LineError("opt_in_date", "datetime has no time zone; give UTC, e.g. ...Z")
    return parsed


def command_for(row: dict[str, Any], options: ImportOptions) -> Command:
    """The command one import line stands for."""
    status = str(row.get("status") or "").strip().lower()
    source_text = str(row.get("source") or "").strip().lower()
    common: dict[str, Any] = {
        "address": str(row.get("address") or "").strip(),
        "occurred_at": _when(row.get("opt_in_date")),
        "source": source_text if source_text in SOURCES else Source.IMPORT,
        "actor": options.actor,
        "command_id": "import:" + _line_digest(row, options),
    }
    ip = str(row.get("opt_in_ip") or "").strip()
    if ip:
        common["personal"] = {"ip": ip}
    if status in GRANTED or status in PENDING:
        policy = str(row.get("policy_version") or "").strip() or options.policy_version
        if not policy:
            raise LineError("policy_version", "missing, and no --policy-version given")
        return build(
            GrantConsent,
            common,
            purpose=options.purpose,
            channel=options.channel,
            policy_version=policy,
            double_opt_in=DoubleOptIn.PENDING if status in PENDING else DoubleOptIn.NOT_APPLICABLE,
        )
    if status in WITHDRAWN:
        return build(Unsubscribe, common, purpose=options.purpose)
    if status in COMPLAINED:
        return build(
            WithdrawConsent,
            common,
            purpose=options.purpose,
            channel=options.channel,
            reason=WithdrawalReason.COMPLAINT,
        )
    raise LineError("status", "unknown status (subscribed, pending, unsubscribed or complained)")


def _line_digest(row: dict[str, Any], options: ImportOptions) -> str:
    canonical = json.dumps(
        [options.purpose, options.channel, options.policy_version, [row.get(c) for c in COLUMNS]],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:48]


RejectWriter = Callable[[int, str], None]
Progress = Callable[[int], None]


def run_import(
    ledger: Ledger,
    rows: Iterator[tuple[int, dict[str, Any] | str]],
    *,
    options: ImportOptions,
    reject: RejectWriter,
    progress: Progress | None = None,
    in_flight: int = DEFAULT_IN_FLIGHT,
) -> ImportSummary:
    """Feed every row to the ledger, keeping at most ``in_flight`` commands unanswered."""
    summary = ImportSummary()
    waiting: deque[tuple[int, Future[CommandResult]]] = deque()

    def rejected(number: int, reason: str) -> None:
        summary.rejected += 1
        key = reason.split(":", 1)[0]
        summary.reasons[key] = summary.reasons.get(key, 0) + 1
        reject(number, reason)

    def settle(number: int, future: Future[CommandResult]) -> None:
        try:
            result = future.result()
        except LedgerError as error:
            rejected(number, str(error))
            return
        if result.duplicate:
            summary.duplicates += 1
        else:
            summary.recorded += 1
        summary.last_position = max(summary.last_position, result.position)

    for number, row in rows:
        summary.lines += 1
        if progress is not None:
            progress(1)
        if isinstance(row, str):
            rejected(number, f"line: {row}")
            continue
        try:
            future = ledger.submit(command_for(row, options))
        except LedgerError as error:
            rejected(number, str(error))
            continue
        waiting.append((number, future))
        while len(waiting) >= in_flight:
            settle(*waiting.popleft())
    while waiting:
        settle(*waiting.popleft())
    return summary
