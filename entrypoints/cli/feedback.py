"""``consent-ledger feedback``: complaints (ARF) and bounces (DSN) from files into the ledger."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from entrypoints.bootstrap_sender import build_feedback
from entrypoints.cli.console import err, load_settings, progress_bar
from entrypoints.cli.opening import open_ledger, starting
from ledger.feedback.intake import COUNTED, DUPLICATE, RECORDED, REJECTED, Summary
from ledger.feedback.sources import count_reports, read_reports

feedback_app = typer.Typer(
    name="feedback", help="Complaints (ARF) and bounces (DSN) reported by mailbox providers."
)


@feedback_app.command("ingest")
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            help="An mbox, a Maildir, an .eml file or a directory of them.", exists=True
        ),
    ],
) -> None:
    """Record every report of PATH: a complaint or a bounce becomes an event; a report that
    cannot be read or attributed goes to the reject store with its reason. The same report
    twice records once. Prints a JSON summary on stdout."""
    settings = load_settings()
    total = count_reports(path)
    with open_ledger() as ledger:
        with starting():
            intake = build_feedback(settings, ledger)
        try:
            with progress_bar("reports") as progress:
                task = progress.add_task("reports", total=total)
                summary = Summary()
                for outcome in intake.ingest(read_reports(path)):
                    summary.add(outcome)
                    progress.advance(task)
        finally:
            intake.store.close()
    table = Table(title=f"feedback from {path.name}")
    for column in ("reports", RECORDED, DUPLICATE, COUNTED, REJECTED):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.reports),
        *(str(summary.outcomes.get(k, 0)) for k in (RECORDED, DUPLICATE, COUNTED, REJECTED)),
    )
    err.print(table)
    typer.echo(
        json.dumps(
            {
                "reports": summary.reports,
                **{k: summary.outcomes.get(k, 0) for k in (RECORDED, DUPLICATE, COUNTED, REJECTED)},
                "rejected_by_reason": summary.reasons,
                "position": summary.position,
            },
            sort_keys=True,
        )
    )


@feedback_app.command("rejects")
def rejects(
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest to list.")] = 20,
) -> None:
    """The reports that recorded nothing: counts by reason, then the latest, as JSON."""
    settings = load_settings()
    with open_ledger() as ledger:
        with starting():
            intake = build_feedback(settings, ledger)
        try:
            counts = intake.store.reject_counts()
            latest = intake.store.rejects(limit=limit)
        finally:
            intake.store.close()
    typer.echo(
        json.dumps(
            {
                "by_reason": counts,
                "latest": [
                    {
                        "report_sha256": row.report_sha256,
                        "kind": row.kind,
                        "reason": row.reason,
                        "provider": row.provider,
                        "received_at": row.received_at,
                    }
                    for row in latest
                ],
            },
            sort_keys=True,
        )
    )
