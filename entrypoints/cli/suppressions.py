"""``consent-ledger suppressions export``: the suppression list, to move to another provider."""

import sys
from enum import StrEnum
from typing import Annotated

import typer

from entrypoints.bootstrap import build_embedded_projection
from entrypoints.bootstrap_sender import build_tables
from entrypoints.cli.console import load_settings
from entrypoints.cli.opening import open_ledger
from ledger.suppressions import suppressions, to_csv, to_ndjson

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
