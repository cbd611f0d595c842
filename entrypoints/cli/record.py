"""Recording on the command line: purposes, policy versions, grants, withdrawals, unsubscribes."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entrypoints.cli.opening import open_ledger
from entrypoints.cli.options import (
    TIME_HELP,
    AddressOption,
    CommandIdOption,
    OccurredOption,
    SubjectOption,
    parse_time,
)
from ledger.domain.commands import (
    AnnouncePolicyChange,
    Command,
    GrantConsent,
    PublishPolicyVersion,
    RegisterPurpose,
    Unsubscribe,
    WithdrawConsent,
    build,
)
from ledger.write.service import CommandResult
from schemas import (
    AnnouncementChannel,
    Channel,
    DoubleOptIn,
    LegalBasis,
    Source,
    UnsubscribeMethod,
    WithdrawalReason,
)

purpose_app = typer.Typer(help="The catalog of processing purposes.", no_args_is_help=True)
policy_app = typer.Typer(help="Privacy-policy versions.", no_args_is_help=True)


def _record(command_type: type[Command], fields: dict[str, Any]) -> None:
    with open_ledger() as ledger:
        command = build(command_type, {k: v for k, v in fields.items() if v is not None})
        _print_result(ledger.execute(command))


def _print_result(result: CommandResult) -> None:
    typer.echo(
        json.dumps(
            {
                "command_id": result.command_id,
                "subject": result.subject,
                "event_ids": [str(e) for e in result.event_ids],
                "position": result.position,
                "duplicate": result.duplicate,
            }
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)


@purpose_app.command("register")
def purpose_register(
    purpose: Annotated[str, typer.Argument(help="Machine name, e.g. marketing_email.")],
    legal_basis: Annotated[LegalBasis, typer.Option(help="GDPR art. 6 ground.")],
    description: Annotated[str, typer.Option(help="What the processing is, for people.")],
    max_age_days: Annotated[
        int | None, typer.Option(help="Re-consent after this many days without interaction.")
    ] = None,
    direct_marketing: Annotated[
        bool, typer.Option(help="Covered by an objection to all direct marketing.")
    ] = False,
    command_id: CommandIdOption = None,
) -> None:
    """Register a processing purpose (once; its meaning never changes)."""
    _record(
        RegisterPurpose,
        {
            "purpose": purpose,
            "legal_basis": legal_basis,
            "description": description,
            "max_age_days": max_age_days,
            "direct_marketing": direct_marketing,
            "occurred_at": _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@policy_app.command("publish")
def policy_publish(
    version: Annotated[str, typer.Argument(help="Version label, e.g. 2026-11.")],
    text: Annotated[
        Path,
        typer.Argument(
            help="The policy text (UTF-8): kept in the ledger with its SHA-256.",
            exists=True,
            dir_okay=False,
        ),
    ],
    effective_at: Annotated[
        datetime | None,
        typer.Option(
            help=f"When it takes effect, {TIME_HELP} (default: now).",
            parser=parse_time,
            metavar="TIME",
        ),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Where people read it.")] = None,
    purpose: Annotated[
        list[str] | None, typer.Option("--purpose", help="A purpose it covers (repeatable).")
    ] = None,
    requires_reconsent: Annotated[
        bool, typer.Option(help="Consents under older versions must be given again.")
    ] = False,
    command_id: CommandIdOption = None,
) -> None:
    """Publish a privacy-policy version from its text file, keeping the text itself."""
    raw = text.read_bytes()
    try:
        kept: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        kept = None  # not text: only its hash can be kept
    _record(
        PublishPolicyVersion,
        {
            "version": version,
            "text_sha256": hashlib.sha256(raw).hexdigest(),
            "text": kept,
            "url": url,
            "effective_at": effective_at or _now(),
            "purposes": tuple(purpose or ()),
            "requires_reconsent": requires_reconsent,
            "occurred_at": _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@policy_app.command("announce")
def policy_announce(
    versions: Annotated[list[str], typer.Argument(help="The versions concerned.")],
    channel: Annotated[AnnouncementChannel, typer.Option(help="How people were told.")],
    at: Annotated[
        datetime | None,
        typer.Option(help=f"When, {TIME_HELP} (default: now).", parser=parse_time, metavar="TIME"),
    ] = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record that a change of the privacy policy was announced (by email or on the site)."""
    now = _now()
    _record(
        AnnouncePolicyChange,
        {
            "versions": tuple(versions),
            "channel": channel,
            "announced_at": at or now,
            "occurred_at": min(at or now, now),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


def grant(
    purpose: Annotated[str, typer.Option(help="A registered purpose.")],
    policy_version: Annotated[str, typer.Option(help="The policy version the person saw.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    double_opt_in: Annotated[DoubleOptIn, typer.Option()] = DoubleOptIn.NOT_APPLICABLE,
    occurred_at: OccurredOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record that a person gave consent for a purpose on a channel."""
    _record(
        GrantConsent,
        {
            "subject": subject,
            "address": address,
            "purpose": purpose,
            "channel": channel,
            "policy_version": policy_version,
            "double_opt_in": double_opt_in,
            "occurred_at": occurred_at or _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


def withdraw(
    purpose: Annotated[str, typer.Option(help="The purpose consent is withdrawn from.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    reason: Annotated[WithdrawalReason, typer.Option()] = WithdrawalReason.USER_REQUEST,
    occurred_at: OccurredOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record a withdrawal of consent (always accepted)."""
    _record(
        WithdrawConsent,
        {
            "subject": subject,
            "address": address,
            "purpose": purpose,
            "channel": channel,
            "reason": reason,
            "occurred_at": occurred_at or _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


def unsubscribe(
    subject: SubjectOption = None,
    address: AddressOption = None,
    purpose: Annotated[
        str | None, typer.Option(help="Only this purpose (default: every marketing message).")
    ] = None,
    list_id: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
    campaign_id: Annotated[str | None, typer.Option(help="The campaign it came from.")] = None,
    occurred_at: OccurredOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record an unsubscribe (always accepted)."""
    _record(
        Unsubscribe,
        {
            "subject": subject,
            "address": address,
            "purpose": purpose,
            "list_id": list_id,
            "campaign_id": campaign_id,
            "method": UnsubscribeMethod.ADMIN,
            "occurred_at": occurred_at or _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )
