"""``consent-ledger import``: a subscriber base into the ledger, bad lines to a reject file."""

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from entrypoints.cli.console import err
from entrypoints.cli.opening import open_ledger
from ledger.write.importer import (
    FileFormat,
    ImportOptions,
    ImportSummary,
    detect_format,
    read_rows,
    run_import,
)
from schemas import Channel


def import_file(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or NDJSON (.ndjson/.jsonl) export.", exists=True, dir_okay=False),
    ],
    purpose: Annotated[str, typer.Option(help="The purpose the list's consents are for.")],
    policy_version: Annotated[
        str | None, typer.Option(help="For lines without a policy_version of their own.")
    ] = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Default: from the file name.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where bad lines go (default: FILE.rejects.csv).")
    ] = None,
) -> None:
    """Import a subscriber base: address, status, opt_in_date, source, opt_in_ip, policy_version.

    Streams the file in bounded memory; a bad line goes to the reject file with its reason and
    never stops the import. Importing the same file twice records nothing new.
    """
    reject_path = rejects or file.with_name(file.name + ".rejects.csv")
    options = ImportOptions(purpose=purpose, channel=channel, policy_version=policy_version)
    size = file.stat().st_size
    with (
        open_ledger() as ledger,
        file.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as stream,
        reject_path.open("w", encoding="utf-8", newline="") as reject_stream,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[lines]} lines"),
            TimeElapsedColumn(),
            console=err,
            disable=not sys.stderr.isatty(),
        ) as progress,
    ):
        task = progress.add_task("import", total=size, lines=0)
        writer = csv.writer(reject_stream)
        writer.writerow(["line", "reason"])
        counted = 0

        def advance(lines: int) -> None:
            nonlocal counted
            counted += lines
            if counted % 1000 == 0:
                progress.update(task, completed=raw.tell(), lines=counted)

        summary = run_import(
            ledger,
            read_rows(stream, file_format or detect_format(file)),
            options=options,
            reject=lambda number, reason: writer.writerow([number, reason]),
            progress=advance,
        )
        progress.update(task, completed=size, lines=counted)
    table = Table(title=f"import of {file.name}")
    table.add_column("lines", justify="right")
    table.add_column("recorded", justify="right")
    table.add_column("already there", justify="right")
    table.add_column("rejected", justify="right")
    table.add_row(
        *(str(n) for n in (summary.lines, summary.recorded, summary.duplicates, summary.rejected))
    )
    err.print(table)
    if summary.rejected:
        err.print(f"rejected lines and reasons: {reject_path}")
    typer.echo(summary_json(summary, reject_path))


def summary_json(summary: ImportSummary, rejects: Path) -> str:
    """What an import prints on stdout: its counts, last position and reject file, as JSON."""
    return json.dumps(
        {
            "lines": summary.lines,
            "recorded": summary.recorded,
            "duplicates": summary.duplicates,
            "rejected": summary.rejected,
            "position": summary.last_position,
            "rejects": str(rejects),
        }
    )
