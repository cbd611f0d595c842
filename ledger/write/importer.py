"""Import of an existing subscriber base (CSV or NDJSON), streamed, with a reject list.

Each line names one person by address and says where their consent stands. A bad line is
rejected with its reason and never stops the import. Every line's command id is derived from its
content, so importing the same file again appends nothing.
"""

import csv
import gc
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from ledger.domain.commands import Command, GrantConsent, Unsubscribe, WithdrawConsent, build
from ledger.domain.errors import InvalidFieldError, LedgerError
from ledger.write.service import CommandResult, Ledger
from schemas import Channel, DoubleOptIn, Source, WithdrawalReason

COLUMNS = ("address", "status", "opt_in_date", "source", "opt_in_ip", "policy_version")
"""The columns of an import file (CSV header or NDJSON keys); extra columns are ignored."""

DEFAULT_CHUNK = 2000
"""Lines recorded together (one load, one key-store call, one transaction)."""

CHUNKS_IN_FLIGHT = 2
"""Chunks handed to the writer and not yet answered: with the chunk being read, this bounds
memory whatever the file size."""

COLLECT_EVERY = 25
"""Chunks between two full garbage collections during an import (see `run_import`)."""

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
    # A file's source column tells where the person opted in, not how they left: an imported
    # unsubscribe or complaint is history, recorded as such (enforcement latency skips it).
    if status in WITHDRAWN:
        return build(Unsubscribe, common | {"source": Source.IMPORT}, purpose=options.purpose)
    if status in COMPLAINED:
        return build(
            WithdrawConsent,
            common | {"source": Source.IMPORT},
            purpose=options.purpose,
            channel=options.channel,
            reason=WithdrawalReason.COMPLAINT,
        )
    raise LineError("status", "unknown status (subscribed, pending, unsubscribed or complained)")


# What json.dumps(value, sort_keys=True, default=str) uses, built once instead of per line. The
# digest must never change: files imported before must keep their command ids.
_CANONICAL = json.JSONEncoder(sort_keys=True, default=str)


def _line_digest(row: dict[str, Any], options: ImportOptions) -> str:
    canonical = _CANONICAL.encode(
        [options.purpose, options.channel, options.policy_version, [row.get(c) for c in COLUMNS]]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:48]


Convert = Callable[[dict[str, Any], ImportOptions], Command]
"""What a line becomes: `command_for` for a subscriber base, another for another layout."""


def _read(
    row: dict[str, Any] | str, options: ImportOptions, convert: Convert
) -> tuple[Command | None, str | None]:
    """The command of a line, or why the line is refused before reaching the ledger."""
    if isinstance(row, str):
        return None, f"line: {row}"
    try:
        return convert(row, options), None
    except LedgerError as error:
        return None, str(error)


_Lines = list[tuple[int, str | None]]
"""A chunk's lines in input order: each line number, with its reason if refused on reading."""
RejectWriter = Callable[[int, str], None]
Progress = Callable[[int], None]


def run_import(
    ledger: Ledger,
    rows: Iterator[tuple[int, dict[str, Any] | str]],
    *,
    options: ImportOptions,
    reject: RejectWriter,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    convert: Convert = command_for,
) -> ImportSummary:
    """Feed every row to the ledger in chunks, reading the next while the last is written.

    Rejects are written in input order: a line refused on reading waits, in its chunk, for the
    ledger's answers to the lines before it. A chunk counts every line, refused or not, so that
    what waits stays bounded whatever the file.
    """
    summary = ImportSummary()
    waiting: deque[tuple[_Lines, Future[list[CommandResult | LedgerError]]]] = deque()

    def rejected(number: int, reason: str) -> None:
        summary.rejected += 1
        key = reason.split(":", 1)[0]
        summary.reasons[key] = summary.reasons.get(key, 0) + 1
        reject(number, reason)

    def settle() -> None:
        lines, future = waiting.popleft()
        results = iter(future.result())
        for number, refused in lines:
            if refused is not None:
                rejected(number, refused)
                continue
            result = next(results)
            if isinstance(result, LedgerError):
                rejected(number, str(result))
                continue
            if result.duplicate:
                summary.duplicates += 1
            else:
                summary.recorded += 1
            summary.last_position = max(summary.last_position, result.position)

    lines: _Lines = []
    commands: list[Command] = []
    chunks = 0
    # One writer thread: the database works on one chunk while this thread reads the next.
    with (
        _collector_paused(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer,
    ):
        for number, row in rows:
            summary.lines += 1
            if progress is not None:
                progress(1)
            command, refused = _read(row, options, convert)
            if command is not None:
                commands.append(command)
            lines.append((number, refused))
            if len(lines) >= chunk_size:
                waiting.append((lines, writer.submit(ledger.record_many, commands)))
                lines, commands = [], []
                chunks += 1
                while len(waiting) >= CHUNKS_IN_FLIGHT:
                    settle()
                if chunks % COLLECT_EVERY == 0:
                    gc.collect()
        if lines:
            waiting.append((lines, writer.submit(ledger.record_many, commands)))
        while waiting:
            settle()
    return summary


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A chunk's tens of thousands of objects live long enough for the cyclic garbage collector
    # to promote them, so its full collections kept coming, each walking every object of the
    # process: a third of the import's time. Reference counting frees each chunk; run_import
    # collects every COLLECT_EVERY chunks for any cycles left, so memory stays flat.
    collecting = gc.isenabled()
    gc.disable()
    # What existed before the import is not the import's garbage: those collections skip it.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()
