"""Retention: record the consents that lapsed or that a newer policy version asks to renew.

The send decision already refuses such consents; recording a `ConsentWithdrawn` for each (reason
``lapsed`` or ``reconsent_required``) puts the moment and the cause in the person's history, so
it shows why sending stopped. Read from the log, never from a projection; idempotent: each
withdrawal's command id is derived from the consent it ends, so a second run records nothing.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from ledger.domain.commands import WithdrawConsent
from ledger.domain.errors import LedgerError
from ledger.write.service import CommandResult, Ledger
from schemas import (
    Channel,
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    DoubleOptIn,
    EventBase,
    InteractionRecorded,
    PolicyVersionPublished,
    PurposeRegistered,
    Source,
    UnsubscribeClicked,
    WithdrawalReason,
    parse_event,
)

RETENTION_ACTOR = "retention"
PAGE = 10_000
_COMMAND_NAMESPACE = uuid5(NAMESPACE_URL, "https://consent-ledger/retention")


@dataclass(slots=True)
class _Consent:
    status: str
    policy_version: str | None
    since: datetime
    position: int


@dataclass(slots=True)
class _World:
    purposes: dict[str, PurposeRegistered] = field(default_factory=dict)
    policies: dict[str, PolicyVersionPublished] = field(default_factory=dict)
    consents: dict[tuple[str, str, str], _Consent] = field(default_factory=dict)
    last_interaction: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What a run found, and (unless a dry run) what it recorded."""

    due: tuple[WithdrawConsent, ...]
    recorded: int
    """Withdrawals appended by this run (0 on a dry run, or when all were recorded before)."""
    errors: tuple[LedgerError, ...] = ()


def _log(ledger: Ledger) -> Iterator[tuple[EventBase, int]]:
    after = 0
    while page := ledger.store.notifications(after=after, limit=PAGE):
        for notification in page:
            yield parse_event(notification.state), notification.id
        after = page[-1].id


def _fold(world: _World, event: EventBase, position: int) -> None:
    match event:
        case PurposeRegistered():
            world.purposes.setdefault(event.purpose, event)
        case PolicyVersionPublished():
            world.policies.setdefault(event.version, event)
        case ConsentGranted():
            status = "pending" if event.double_opt_in is DoubleOptIn.PENDING else "granted"
            key = (event.subject, event.purpose, event.channel.value)
            world.consents[key] = _Consent(
                status, event.policy_version, event.occurred_at, position
            )
        case ConsentConfirmed():
            key = (event.subject, event.purpose, event.channel.value)
            previous = world.consents.get(key)
            version = previous.policy_version if previous else None
            world.consents[key] = _Consent("granted", version, event.occurred_at, position)
        case ConsentWithdrawn():
            world.consents.pop((event.subject, event.purpose, event.channel.value), None)
        case UnsubscribeClicked() if event.list_id is None or event.purpose is not None:
            for key in [k for k in world.consents if k[0] == event.subject]:
                if key[2] == Channel.EMAIL.value and event.purpose in (None, key[1]):
                    del world.consents[key]
        case InteractionRecorded():
            world.last_interaction[event.subject] = event.occurred_at
        case _:
            pass


def _lapsed_at(world: _World, key: tuple[str, str, str], consent: _Consent) -> datetime | None:
    purpose = world.purposes.get(key[1])
    if purpose is None or purpose.max_age_days is None:
        return None
    active = max(consent.since, world.last_interaction.get(key[0], consent.since))
    return active + timedelta(days=purpose.max_age_days)


def _outdated_at(world: _World, purpose: str, consent: _Consent, now: datetime) -> datetime | None:
    given = world.policies.get(consent.policy_version or "")
    if given is None:
        return None
    newer = [
        p.effective_at
        for p in world.policies.values()
        if p.requires_reconsent
        and given.effective_at < p.effective_at <= now
        and (not p.purposes or purpose in p.purposes)
    ]
    # Never before the grant itself: a grant under an outdated version ends at once.
    return max(min(newer), consent.since) if newer else None


def due_withdrawals(ledger: Ledger, *, now: datetime) -> list[WithdrawConsent]:
    """The withdrawals the log calls for at ``now``: one per lapsed or outdated consent."""
    world = _World()
    for event, position in _log(ledger):
        _fold(world, event, position)
    due: list[WithdrawConsent] = []
    for key, consent in world.consents.items():
        if consent.status != "granted":
            continue
        subject, purpose, channel = key
        causes = [
            (when, reason)
            for when, reason in (
                (_lapsed_at(world, key, consent), WithdrawalReason.LAPSED),
                (_outdated_at(world, purpose, consent, now), WithdrawalReason.RECONSENT_REQUIRED),
            )
            if when is not None and when < now
        ]
        if not causes:
            continue
        when, reason = min(causes)
        # The id names the consent it ends (by its position): the same consent, the same command.
        name = f"{reason.value}:{subject}:{purpose}:{channel}:{consent.position}"
        due.append(
            WithdrawConsent(
                subject=subject,
                purpose=purpose,
                channel=Channel(channel),
                reason=reason,
                occurred_at=when,
                command_id=f"retention-{uuid5(_COMMAND_NAMESPACE, name)}",
                source=Source.RETENTION,
                actor=RETENTION_ACTOR,
            )
        )
    return due


def run_retention(ledger: Ledger, *, now: datetime, dry_run: bool = False) -> RetentionReport:
    """Find what is due at ``now`` and, unless ``dry_run``, record it."""
    due = due_withdrawals(ledger, now=now)
    if dry_run or not due:
        return RetentionReport(due=tuple(due), recorded=0)
    results = ledger.record_many(due)
    return RetentionReport(
        due=tuple(due),
        recorded=sum(1 for r in results if isinstance(r, CommandResult) and not r.duplicate),
        errors=tuple(r for r in results if isinstance(r, LedgerError)),
    )
