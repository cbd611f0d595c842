"""``consent-ledger suppressions``: export ours, import another provider's export."""

import csv
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from entrypoints.bootstrap import build_embedded_projection
from entrypoints.bootstrap_sender import build_tables
from entrypoints.cli.console import load_settings, progress_bar
from entrypoints.cli.importing import summary_json
from entrypoints.cli.opening import open_ledger
from ledger.suppressions.export import suppressions, to_csv, to_ndjson
from ledger.suppressions.providers import Kind, Provider, converter, provider_rows
from ledger.write.importer import ImportOptions, run_import

suppressions_app = typer.Typer(name="suppressions", help="Suppression lists, between providers.")


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


@suppressions_app.command("export")
def export(
    file_format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.CSV,
) -> None:
    """Every active suppression on stdout: subject, scope, reason, since, and the address where
    the person is not erased (in production, as far as the consumers have got)."""
    with open_ledger() as ledger:
        projection = build_embedded_projection(load_settings())
        if projection is not None:
            # Embedded: bring the projection up to the store first (production: the consumers).
            while projection.feed_once(ledger.store):
                pass
            projection.close()
        tables = build_tables(ledger.store.config)
        try:
            rows = suppressions(tables, ledger)
            lines = to_csv(rows) if file_format is ExportFormat.CSV else to_ndjson(rows)
            for line in lines:
                sys.stdout.write(line)
        finally:
            tables.close()


@suppressions_app.command("import")
def import_list(
    file: Annotated[
        Path, typer.Argument(help="The provider's CSV export.", exists=True, dir_okay=False)
    ],
    provider: Annotated[Provider, typer.Option("--from", help="Whose export it is.")],
    kind: Annotated[
        Kind, typer.Option(help="SendGrid only: which suppression list the file is.")
    ] = Kind.UNSUBSCRIBE,
    rejects: Annotated[
        Path | None, typer.Option(help="Where bad lines go (default: FILE.rejects.csv).")
    ] = None,
) -> None:
    """Import another provider's suppression export (SendGrid, Mailchimp, Brevo; the layouts
    are in the README): each line records its event, the source and reason kept; bad lines go
    to the reject file with their reason. Importing the same file again records nothing new."""
    reject_path = rejects or file.with_name(file.name + ".rejects.csv")
    with (
        open_ledger() as ledger,
        file.open(encoding="utf-8-sig", newline="") as stream,
        reject_path.open("w", encoding="utf-8", newline="") as reject_stream,
        progress_bar("lines") as progress,
    ):
        task = progress.add_task("lines", total=None)
        writer = csv.writer(reject_stream)
        writer.writerow(["line", "reason"])
        summary = run_import(
            ledger,
            provider_rows(stream, provider),
            options=ImportOptions(purpose="all", actor="import"),
            reject=lambda number, reason: writer.writerow([number, reason]),
            progress=lambda lines: progress.advance(task, lines),
            convert=converter(provider, kind),
        )
    typer.echo(summary_json(summary, reject_path))
