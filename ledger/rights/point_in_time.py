"""Was sending allowed at time T, and why: the decision replayed from the log, with its evidence.

The answer reads only the log (the person's and the catalog's events, in ledger order), never a
projection table, so it holds for any past moment and can be shown to an auditor as it stands.
A person's event counts when it had happened by T (``occurred_at <= T``), in the order the
ledger stored it, which is the order the projection applies it: at T = now both give the same
answer. Catalog events always count: they define purposes and policy versions, and a policy's own
``effective_at`` says from when it is in force (a base imported with past dates refers to
purposes and policies recorded on the day of the import).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.deliverability import UNDELIVERABLE_SCOPE
from ledger.domain.rules import (
    ERASED_SCOPE,
    EVERY_PURPOSE,
    Decision,
    Facts,
    PolicyFacts,
    Reason,
    SuppressionReason,
    decide,
    facts_from_log,
    renews,
)
from schemas import (
    ConsentGranted,
    EventBase,
    PolicyVersionPublished,
    ProcessingRestricted,
    PurposeRegistered,
)

_ENVELOPE_FIELDS = set(EventBase.model_fields)
_SUPPRESSION_REASONS = {
    Reason.ERASED: SuppressionReason.ERASED,
    Reason.OBJECTED: SuppressionReason.OBJECTION,
    Reason.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
    Reason.COMPLAINED: SuppressionReason.COMPLAINED,
    Reason.UNDELIVERABLE: SuppressionReason.UNDELIVERABLE,
}
_DENYING_SCOPES = (EVERY_PURPOSE, ERASED_SCOPE, UNDELIVERABLE_SCOPE)
"""Scopes that deny every purpose, besides the purpose's own."""


@dataclass(frozen=True, slots=True)
class PointInTimeAnswer:
    """The decision at ``at``, the policy the consent was given under, and the deciding event."""

    subject: str
    purpose: str
    channel: str
    at: datetime
    as_of_position: int
    """The newest ledger position the answer read (0 when nothing had happened yet)."""
    decision: Decision
    facts: Facts
    policy: PolicyVersionPublished | None
    """The published policy version the consent in force was given under."""
    grant: tuple[EventBase, int] | None
    """The grant of the consent in force (its evidence shows what the person was shown)."""
    deciding: tuple[EventBase, int] | None
    """The event the answer rests on: the grant that allows, or what denies (None: nothing)."""

    def to_json(self) -> dict[str, Any]:
        """The answer as JSON-compatible data, for the CLI and the API."""
        consent = self.facts.consent
        return {
            "subject": self.subject,
            "purpose": self.purpose,
            "channel": self.channel,
            "at": self.at.isoformat(),
            "as_of_position": self.as_of_position,
            "allowed": self.decision.allowed,
            "reason": None if self.decision.reason is None else self.decision.reason.value,
            "consent": None
            if consent is None
            else {
                "status": consent.status,
                "policy_version": consent.policy_version,
                "since": consent.since.isoformat(),
                "position": consent.last_position,
            },
            "policy": None
            if self.policy is None
            else {
                "version": self.policy.version,
                "text_sha256": self.policy.text_sha256,
                "url": self.policy.url,
                "effective_at": self.policy.effective_at.isoformat(),
                "requires_reconsent": self.policy.requires_reconsent,
            },
            "grant": _event_json(self.grant),
            "deciding_event": _event_json(self.deciding),
        }


def logged_event_json(event: EventBase, position: int) -> dict[str, Any]:
    """Where an event stands in the log, when and how it was recorded, and its evidence: what
    answers and receipts show of a deciding event (never its personal data)."""
    return {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "position": position,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "source": event.source.value,
        "evidence": None if event.evidence is None else event.evidence.model_dump(mode="json"),
    }


def _event_json(logged: tuple[EventBase, int] | None) -> dict[str, Any] | None:
    if logged is None:
        return None
    event, position = logged
    return {
        **logged_event_json(event, position),
        "command_id": event.command_id,
        "actor": event.actor,
        # What the event says besides its envelope (a withdrawal's reason, a grant's policy
        # version...); never its personal data.
        "fields": event.model_dump(mode="json", exclude=_ENVELOPE_FIELDS),
    }


def decision_at(
    log: Iterable[tuple[EventBase, int]],
    *,
    subject: str,
    purpose: str,
    channel: str,
    at: datetime,
) -> PointInTimeAnswer:
    """The answer at ``at`` from ``log``: (event, position) pairs of the person and the catalog.

    ``log`` may hold more (other people, later events): what does not concern the question, or
    had not happened to the person by ``at``, is left out.
    """
    happened = sorted(
        ((event, position) for event, position in log if event.catalog or event.occurred_at <= at),
        key=lambda logged: logged[1],
    )
    facts = facts_from_log(happened, subject=subject, purpose=purpose, channel=channel)
    decision = decide(facts, purpose=purpose, channel=channel, at=at)
    by_position = {position: (event, position) for event, position in happened}
    consent = facts.consent
    grant = None
    policy: PolicyVersionPublished | None = None
    if consent is not None:
        grant = _last(
            happened,
            lambda e, p: (
                isinstance(e, ConsentGranted)
                and e.subject == subject
                and (e.purpose, e.channel) == (purpose, channel)
                and p <= consent.last_position
            ),
        )
        policy = next(
            (
                e
                for e, _ in happened
                if isinstance(e, PolicyVersionPublished) and e.version == consent.policy_version
            ),
            None,
        )
    return PointInTimeAnswer(
        subject=subject,
        purpose=purpose,
        channel=channel,
        at=at,
        as_of_position=happened[-1][1] if happened else 0,
        decision=decision,
        facts=facts,
        policy=policy,
        grant=grant,
        deciding=_deciding(
            happened,
            by_position=by_position,
            facts=facts,
            reason=decision.reason,
            subject=subject,
            purpose=purpose,
            at=at,
        ),
    )


def _last(happened: Sequence[tuple[EventBase, int]], match: Any) -> tuple[EventBase, int] | None:
    for event, position in reversed(happened):
        if match(event, position):
            return event, position
    return None


def _deciding(
    happened: Sequence[tuple[EventBase, int]],
    *,
    by_position: dict[int, tuple[EventBase, int]],
    facts: Facts,
    reason: Reason | None,
    subject: str,
    purpose: str,
    at: datetime,
) -> tuple[EventBase, int] | None:
    """The event the answer rests on: the grant that allows, or what denies (None: nothing)."""
    consent = facts.consent
    wanted = None if reason is None else _SUPPRESSION_REASONS.get(reason)
    if wanted is not None:
        positions = [
            s.last_position
            for s in facts.suppressions
            if s.reason == wanted and (s.scope == purpose or s.scope in _DENYING_SCOPES)
        ]
        return by_position.get(max(positions)) if positions else None
    if reason is Reason.RESTRICTED:
        return _last(happened, lambda e, _: _restricts(e, subject=subject, purpose=purpose))
    if reason is Reason.RECONSENT_REQUIRED and consent is not None:
        given = next(p for p in facts.policies if p.version == consent.policy_version)
        return _last(
            happened,
            lambda e, _: (
                isinstance(e, PolicyVersionPublished)
                and renews(PolicyFacts.of(e), given=given, purpose=purpose, at=at)
            ),
        )
    if reason in (Reason.UNKNOWN_PURPOSE, Reason.NEVER_GRANTED):
        return None
    if reason is None and facts.purpose is not None and facts.purpose.legal_basis != "consent":
        return _last(
            happened, lambda e, _: isinstance(e, PurposeRegistered) and e.purpose == purpose
        )
    # Allowed on consent, withdrawn, pending or expired: the consent's newest event says so.
    return None if consent is None else by_position.get(consent.last_position)


def _restricts(event: EventBase, *, subject: str, purpose: str) -> bool:
    return (
        isinstance(event, ProcessingRestricted)
        and event.subject == subject
        and (not event.purposes or purpose in event.purposes)
    )
