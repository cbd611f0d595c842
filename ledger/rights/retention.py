"""Retention: record the consents that lapsed or that a newer policy version asks to renew.

The send decision already refuses such consents; recording a `ConsentWithdrawn` for each (reason
``lapsed`` or ``reconsent_required``) puts the moment and the cause in the person's history, so
it shows why sending stopped. Read from the log, never from a projection; idempotent: each
withdrawal's command id is derived from the consent it ends, so a second run records nothing.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from ledger.domain.commands import WithdrawConsent
from ledger.domain.errors import LedgerError
from ledger.domain.rules import (
    CatalogState,
    ConsentFacts,
    ConsentStatus,
    PersonState,
    PolicyFacts,
    PurposeFacts,
    lapses_at,
    reconsent_required_since,
)
from ledger.write.service import CommandResult, Ledger
from schemas import Channel, EventBase, Source, WithdrawalReason, parse_event

RETENTION_ACTOR = "retention"
PAGE = 10_000
_COMMAND_NAMESPACE = uuid5(NAMESPACE_URL, "https://consent-ledger/retention")


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


def _ends(
    consent: ConsentFacts,
    *,
    purpose: PurposeFacts | None,
    policies: tuple[PolicyFacts, ...],
    person: PersonState,
    purpose_id: str,
    now: datetime,
) -> tuple[datetime, WithdrawalReason] | None:
    """When and why a granted consent ended by ``now``, by the rule book (None: it stands)."""
    lapsed = None if purpose is None else lapses_at(purpose, consent, person.last_interaction)
    outdated = reconsent_required_since(policies, consent=consent, purpose=purpose_id, at=now)
    causes = [
        (when, reason)
        for when, reason in (
            (lapsed, WithdrawalReason.LAPSED),
            # Never before the grant itself: a grant under an outdated version ends at once.
            (
                None if outdated is None else max(outdated, consent.since),
                WithdrawalReason.RECONSENT_REQUIRED,
            ),
        )
        if when is not None and when < now
    ]
    return min(causes) if causes else None


def due_withdrawals(ledger: Ledger, *, now: datetime) -> list[WithdrawConsent]:
    """The withdrawals the log calls for at ``now``: one per lapsed or outdated consent."""
    catalog = CatalogState()
    people: dict[str, PersonState] = {}
    for event, position in _log(ledger):
        if not catalog.evolve(event):
            people.setdefault(event.subject, PersonState()).evolve(event, position)
    purposes = {name: PurposeFacts.of(event) for name, event in catalog.purposes.items()}
    policies = tuple(PolicyFacts.of(event) for event in catalog.policies.values())
    due: list[WithdrawConsent] = []
    for subject, person in people.items():
        for (purpose, channel), consent in person.consents.items():
            if consent.status is not ConsentStatus.GRANTED:
                continue
            ended = _ends(
                consent,
                purpose=purposes.get(purpose),
                policies=policies,
                person=person,
                purpose_id=purpose,
                now=now,
            )
            if ended is None:
                continue
            when, reason = ended
            # The id names the consent it ends (by its position): the same consent, the same
            # command.
            name = f"{reason.value}:{subject}:{purpose}:{channel}:{consent.last_position}"
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
