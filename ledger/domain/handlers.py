"""Command handlers: what each command becomes, the rules it must pass and the events it records."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast
from uuid import uuid4

from ledger.domain import commands
from ledger.domain.aggregates import Catalog, Person
from ledger.domain.commands import Command
from ledger.domain.errors import RightsRequestExtensionError
from schemas import EventBase, SealedPersonalData, events


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a decision may read besides the command: state, time, sealed personal data."""

    subject: str
    catalog: Catalog
    person: Person | None
    recorded_at: datetime
    personal: SealedPersonalData | None
    command_id: str
    """What the events store as their command id (a keyed hash of the caller's)."""

    def envelope(self, command: Command) -> dict[str, Any]:
        return {
            "event_id": uuid4(),
            "subject": self.subject,
            "occurred_at": command.occurred_at,
            "recorded_at": self.recorded_at,
            "command_id": self.command_id,
            "source": command.source,
            "actor": command.actor,
            "evidence": command.evidence,
            "personal": self.personal,
        }

    @property
    def person_state(self) -> Person:
        if self.person is None:
            msg = "a person command needs the person aggregate"
            raise TypeError(msg)
        return self.person


C = TypeVar("C", bound=Command)
Handler = Callable[[Any, Context], list[EventBase]]
_HANDLERS: dict[type[Command], Handler] = {}


def _handles(command_type: type[C]) -> Callable[[Callable[[C, Context], list[EventBase]]], Any]:
    def register(func: Callable[[C, Context], list[EventBase]]) -> Any:
        _HANDLERS[command_type] = cast("Handler", func)
        return func

    return register


def handle(command: Command, context: Context) -> list[EventBase]:
    """The events ``command`` records, or a `LedgerError` if a rule refuses it."""
    handler = _HANDLERS.get(type(command))
    if handler is None:
        return _record(_ALWAYS_RECORDED[type(command)], command, context)
    return handler(command, context)


_ALWAYS_RECORDED: dict[type[Command], type[EventBase]] = {
    # A withdrawal or an unsubscribe must be recorded even with no grant on file, or for a
    # purpose the catalog does not know: refusing it would lose an opt-out. The same holds for
    # the rights a person exercises (objection, restriction, erasure).
    commands.WithdrawConsent: events.ConsentWithdrawn,
    commands.Unsubscribe: events.UnsubscribeClicked,
    commands.RecordObjection: events.ObjectionRecorded,
    commands.RestrictProcessing: events.ProcessingRestricted,
    commands.LiftRestriction: events.RestrictionLifted,
    commands.EraseSubject: events.SubjectErased,
    # What mailbox providers report back is a fact about the past: it is recorded as it came.
    commands.RecordComplaint: events.ComplaintReceived,
    commands.RecordUndeliverable: events.AddressUndeliverable,
}
"""Commands no rule refuses: each records its one event as it stands."""


def _record(
    event_type: type[EventBase], command: Command, ctx: Context, **overrides: Any
) -> list[EventBase]:
    """The one event ``command`` records: its envelope, every field the event shares by name
    with the command, and ``overrides`` (what the ledger fills in itself)."""
    shared = {name: getattr(command, name) for name in _shared(event_type, type(command))}
    return [event_type(**ctx.envelope(command), **(shared | overrides))]


@cache
def _shared(event_type: type[EventBase], command_type: type[Command]) -> tuple[str, ...]:
    envelope = set(EventBase.model_fields)
    return tuple(
        name
        for name in event_type.model_fields
        if name not in envelope and name in command_type.model_fields
    )


@_handles(commands.RegisterPurpose)
def _register_purpose(command: commands.RegisterPurpose, ctx: Context) -> list[EventBase]:
    ctx.catalog.check_new_purpose(command.purpose)
    return _record(events.PurposeRegistered, command, ctx)


@_handles(commands.PublishPolicyVersion)
def _publish_policy(command: commands.PublishPolicyVersion, ctx: Context) -> list[EventBase]:
    ctx.catalog.check_new_policy(command.version)
    ctx.catalog.check_policy_purposes(command.purposes)
    return _record(events.PolicyVersionPublished, command, ctx)


@_handles(commands.AnnouncePolicyChange)
def _announce_policy(command: commands.AnnouncePolicyChange, ctx: Context) -> list[EventBase]:
    for version in command.versions:
        ctx.catalog.check_policy(version, field="versions")
    announced_at = command.announced_at or command.occurred_at
    return _record(events.PolicyChangeAnnounced, command, ctx, announced_at=announced_at)


@_handles(commands.GrantConsent)
def _grant(command: commands.GrantConsent, ctx: Context) -> list[EventBase]:
    ctx.catalog.check_purpose(command.purpose)
    ctx.catalog.check_policy_covers(command.policy_version, command.purpose)
    return _record(events.ConsentGranted, command, ctx)


@_handles(commands.ConfirmConsent)
def _confirm(command: commands.ConfirmConsent, ctx: Context) -> list[EventBase]:
    ctx.person_state.check_can_confirm(command.purpose, command.channel)
    return _record(events.ConsentConfirmed, command, ctx)


@_handles(commands.AcceptPolicy)
def _accept_policy(command: commands.AcceptPolicy, ctx: Context) -> list[EventBase]:
    published = ctx.catalog.check_policy(command.version, field="version")
    if command.text_sha256 is not None:
        ctx.catalog.check_policy_text(command.version, command.text_sha256)
    return _record(events.PolicyVersionAccepted, command, ctx, text_sha256=published.text_sha256)


@_handles(commands.OpenRightsRequest)
def _open_request(command: commands.OpenRightsRequest, ctx: Context) -> list[EventBase]:
    ctx.person_state.check_new_request(command.request_id)
    return _record(
        events.RightsRequestOpened,
        command,
        ctx,
        received_at=command.effective_received_at,
        due_at=command.effective_due_at,
    )


@_handles(commands.ExtendRightsRequest)
def _extend_request(command: commands.ExtendRightsRequest, ctx: Context) -> list[EventBase]:
    ctx.person_state.check_can_extend(command.request_id)
    due_at = ctx.person_state.rights_requests[command.request_id].due_at
    if command.due_at <= due_at:
        raise RightsRequestExtensionError(
            command.request_id, f"the new due date must be after {due_at.isoformat()}"
        )
    return _record(events.RightsRequestExtended, command, ctx)


@_handles(commands.CloseRightsRequest)
def _close_request(command: commands.CloseRightsRequest, ctx: Context) -> list[EventBase]:
    ctx.person_state.check_open_request(command.request_id)
    return _record(events.RightsRequestClosed, command, ctx)


@_handles(commands.RecordInteraction)
def _interaction(command: commands.RecordInteraction, ctx: Context) -> list[EventBase]:
    if command.purpose is not None:
        ctx.catalog.check_purpose(command.purpose)
    return _record(events.InteractionRecorded, command, ctx)
