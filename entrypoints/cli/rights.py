"""Data-subject rights on the command line: export, decision at a time, retention, requests."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from entrypoints.bootstrap import build_audit, build_open_requests, store_config
from entrypoints.bootstrap_cli import catch_up
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import open_ledger, starting
from entrypoints.cli.options import (
    TIME_HELP,
    AddressOption,
    SubjectOption,
    WhenOption,
    parse_time,
)
from ledger.domain.commands import CloseRightsRequest, ExtendRightsRequest, OpenRightsRequest, build
from ledger.privacy.files import write_private_text
from ledger.rights.point_in_time import decision_at
from ledger.rights.receipts import Proofs, export_document, person_log
from ledger.rights.retention import run_retention
from ledger.write.service import Ledger
from projections.rights import summarise
from schemas import Channel, Right, RightsOutcome, Source

rights_cli = typer.Typer(no_args_is_help=True)
"""Added to ``consent-ledger`` without a name: its commands sit at the top level."""
retention_app = typer.Typer(help="Retention: lapsed consents and required re-consents.")
requests_app = typer.Typer(help="Data-subject rights requests (GDPR art. 12 to 22).")
rights_cli.add_typer(retention_app, name="retention")
rights_cli.add_typer(requests_app, name="rights")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime:
    """The time given (its format requires a zone), in UTC; now when none was given."""
    return _now() if value is None else value.astimezone(UTC)


def _subject(ledger: Ledger, subject: str | None, address: str | None) -> str:
    if (subject is None) == (address is None):
        err.print("[red]give exactly one of --subject or --address[/red]")
        raise typer.Exit(code=2)
    return subject if subject is not None else ledger.hasher.subject_for(str(address))


@rights_cli.command()
def export(
    out: Annotated[Path, typer.Option(help="Where to write the export (JSON).")],
    subject: SubjectOption = None,
    address: AddressOption = None,
) -> None:
    """Export every event of a person, decrypted, with consent receipts and the proof bundle.

    Seals what is new and cuts a checkpoint first, so the bundle covers every event.
    """
    settings = load_settings()
    with open_ledger() as ledger:
        who = _subject(ledger, subject, address)
        if not ledger.history(who):
            err.print("[red]no event was ever recorded for this person[/red]")
            raise typer.Exit(code=1)
        audit = build_audit(settings)
        try:
            audit.sealer.seal_all()
            audit.sealer.checkpoint()
            document = export_document(
                ledger,
                who,
                proofs=Proofs(tree=audit.tree, verifier=audit.signer.verifier()),
                now=_now(),
            )
        finally:
            audit.close()
    write_private_text(out, json.dumps(document, indent=2, sort_keys=True) + "\n")
    err.print(
        f"{len(document['events'])} events, {len(document['consent_receipts'])} receipts, "
        f"proof bundle {document['proof_bundle']['status']}: {out}"
    )


@rights_cli.command("decision-at")
def decision_at_command(
    purpose: Annotated[str, typer.Option(help="The purpose of the sending.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    at: WhenOption = None,
) -> None:
    """Was sending allowed at a time, and why: replayed from the log, with the evidence."""
    when = _aware(at)
    with open_ledger() as ledger:
        who = _subject(ledger, subject, address)
        answer = decision_at(
            person_log(ledger, who), subject=who, purpose=purpose, channel=channel.value, at=when
        )
    typer.echo(json.dumps(answer.to_json()))


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="List what is due; record nothing.")] = False,
    at: WhenOption = None,
) -> None:
    """Record a withdrawal for each consent that lapsed or needs re-consent (idempotent)."""
    when = _aware(at)
    if when > _now():
        err.print("[red]--at must not be in the future[/red]: nothing has lapsed there yet")
        raise typer.Exit(code=2)
    with open_ledger() as ledger:
        report = run_retention(ledger, now=when, dry_run=dry_run)
    for command in report.due:
        typer.echo(
            json.dumps(
                {
                    "subject": command.subject,
                    "purpose": command.purpose,
                    "channel": command.channel.value,
                    "reason": command.reason.value,
                    "occurred_at": command.occurred_at.isoformat(),
                    "command_id": command.command_id,
                }
            )
        )
    err.print(
        f"{len(report.due)} due, {report.recorded} recorded"
        + (" (dry run)" if dry_run else "")
        + (f", {len(report.errors)} refused" if report.errors else "")
    )
    if report.errors:
        raise typer.Exit(code=1)


def _record(
    kind: type[OpenRightsRequest | ExtendRightsRequest | CloseRightsRequest],
    given: dict[str, Any],
    **fields: Any,
) -> None:
    """Record an operator's command on a rights request and print its request id and position."""
    command = build(kind, given, source=Source.ADMIN, actor="cli", **fields)
    with open_ledger() as ledger:
        result = ledger.execute(command)
    answer = {"request_id": str(command.request_id), "subject": result.subject}
    typer.echo(json.dumps(answer | {"position": result.position}))


@requests_app.command("open")
def rights_open(
    right: Annotated[Right, typer.Option(help="The right exercised.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    received_at: WhenOption = None,
) -> None:
    """Open a request; it is due one month after it was received."""
    received = _aware(received_at)
    _record(
        OpenRightsRequest,
        {k: v for k, v in {"subject": subject, "address": address}.items() if v is not None},
        right=right,
        received_at=received,
        occurred_at=received,
    )


@requests_app.command("extend")
def rights_extend(
    subject: Annotated[str, typer.Option(help="The person's subject.")],
    request_id: Annotated[UUID, typer.Option(help="The request.")],
    due_at: Annotated[
        datetime,
        typer.Option(help=f"The new due date, {TIME_HELP}.", parser=parse_time, metavar="TIME"),
    ],
    reason: Annotated[str, typer.Option(help="Why more time is needed (told to the person).")],
) -> None:
    """Extend a request's deadline, once, with a reason (GDPR art. 12(3))."""
    _record(
        ExtendRightsRequest,
        {"subject": subject, "request_id": request_id},
        due_at=_aware(due_at),
        reason=reason,
        occurred_at=_now(),
    )


@requests_app.command("close")
def rights_close(
    subject: Annotated[str, typer.Option(help="The person's subject.")],
    request_id: Annotated[UUID, typer.Option(help="The request.")],
    outcome: Annotated[RightsOutcome, typer.Option(help="How it ended.")],
) -> None:
    """Close a request with its outcome."""
    _record(
        CloseRightsRequest,
        {"subject": subject, "request_id": request_id},
        outcome=outcome,
        occurred_at=_now(),
    )


@requests_app.command("list")
def rights_list(
    overdue: Annotated[bool, typer.Option(help="Only the overdue ones.")] = False,
) -> None:
    """Open requests from the projection (soonest due first), then a summary by right."""
    settings = load_settings()
    now = _now()
    # As `check` does: the command line feeds the embedded projection itself first.
    catch_up(settings)
    with starting():
        requests = build_open_requests(store_config(settings))()
    for request in requests:
        if request.overdue(now) or not overdue:
            typer.echo(json.dumps(request.to_json(now)))
    err.print(json.dumps(summarise(requests, now=now)))
