"""From a raw report to the ledger: complaints and bounces as commands, the rest rejected.

The same report twice records once: every command's id derives from the report's SHA-256, so
the ledger's idempotency answers the second as a duplicate, and the reject store keys on it.
"""

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ledger.domain import commands
from ledger.domain.commands import Command, build
from ledger.domain.errors import InvalidFieldError, LedgerError
from ledger.feedback import metrics
from ledger.feedback.attribution import Attribution, Recipient, Unattributed
from ledger.feedback.parsing import (
    BOUNCE,
    COMPLAINT,
    Bounce,
    Complaint,
    Failure,
    Rejected,
    parse_report,
)
from ledger.feedback.store import FeedbackStore
from ledger.write.service import CommandResult, Ledger
from schemas import Source, UndeliverableKind

ACTOR = "feedback-loop"
INVALID_FIELD = "invalid_field"
"""The reject reason of a report whose values the ledger refused (too long, say)."""
RECORDED, DUPLICATE, COUNTED, REJECTED = "recorded", "duplicate", "counted", "rejected"


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    soft_bounce_limit: int = 3
    """This many soft bounces of one address within the window suppress it."""
    soft_bounce_window: timedelta = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one report becomes: commands to record, soft bounces counted, or a reject."""

    report_sha256: str
    kind: str
    commands: tuple[Command, ...] = ()
    counted: int = 0
    rejected: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one report."""

    report_sha256: str
    kind: str
    status: str
    """``recorded``, ``duplicate``, ``counted`` (soft bounces below the limit) or ``rejected``."""
    reason: str | None = None
    subjects: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    position: int | None = None


@dataclass(slots=True)
class Summary:
    reports: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    position: int | None = None

    def add(self, outcome: Outcome) -> None:
        self.reports += 1
        self.outcomes[outcome.status] = self.outcomes.get(outcome.status, 0) + 1
        if outcome.reason is not None:
            self.reasons[outcome.reason] = self.reasons.get(outcome.reason, 0) + 1
        if outcome.position is not None:
            self.position = max(self.position or 0, outcome.position)


class FeedbackIntake:
    """Turns reports into commands (`plan`) and records them (`ingest`, `outcome`)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        store: FeedbackStore,
        attribution: Attribution,
        config: FeedbackConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.store = store
        self._attribution = attribution
        self._config = config
        self._clock = clock

    def plan(self, raw: bytes) -> Plan:
        """What ``raw`` becomes; soft bounces are counted here (each report once)."""
        sha = hashlib.sha256(raw).hexdigest()
        report = parse_report(raw)
        now = self._clock()
        try:
            match report:
                case Rejected():
                    return Plan(sha, report.kind, rejected=report.reason, provider=report.provider)
                case Complaint():
                    return self._complaint(report, sha, now)
                case Bounce():
                    return self._bounce(report, sha, now)
        except InvalidFieldError:
            kind = COMPLAINT if isinstance(report, Complaint) else BOUNCE
            return Plan(sha, kind, rejected=INVALID_FIELD)

    def _complaint(self, report: Complaint, sha: str, now: datetime) -> Plan:
        found = self._attribution.recipient(report.original, report.recipients)
        if isinstance(found, Unattributed):
            return Plan(sha, COMPLAINT, rejected=found.reason, provider=report.provider)
        command = build(
            commands.RecordComplaint,
            _person(found, sha, "complaint", _when(report.reported_at, now)),
            feedback_type=report.feedback_type,
            provider=report.provider,
            user_agent=report.user_agent,
            arrival_date=report.arrival_date,
            original_message_id=found.message_id,
            campaign_id=found.campaign_id,
            report_sha256=sha,
        )
        return Plan(sha, COMPLAINT, (command,), provider=report.provider)

    def _bounce(self, report: Bounce, sha: str, now: datetime) -> Plan:
        at = _when(report.reported_at, now)
        planned: list[Command] = []
        counted = 0
        reason = None
        for number, failure in enumerate(report.failures):
            addresses = () if failure.address is None else (failure.address,)
            found = self._attribution.recipient(report.original, addresses)
            if isinstance(found, Unattributed):
                reason = reason or found.reason
                continue
            command = self._undeliverable(found, failure, sha, number, at)
            if command is None:
                counted += 1
            else:
                planned.append(command)
        if not planned and not counted:
            return Plan(sha, BOUNCE, rejected=reason, provider=report.provider)
        return Plan(sha, BOUNCE, tuple(planned), counted=counted, provider=report.provider)

    def _undeliverable(
        self, found: Recipient, failure: Failure, sha: str, number: int, at: datetime
    ) -> Command | None:
        """The suppression of one failed recipient, or None: a soft bounce below the limit."""
        soft = None
        if not failure.permanent:
            since = at - self._config.soft_bounce_window
            soft = self.store.soft_bounce(
                subject=found.subject, report_sha256=sha, at=at, since=since
            )
            if soft < self._config.soft_bounce_limit:
                return None
            self.store.clear_soft_bounces(found.subject)
        fields = _person(found, f"{sha}-{number}", "bounce", at)
        fields["source"] = Source.BOUNCE
        if failure.diagnostic is not None:
            # The diagnostic often quotes the address: personal data, sealed with the person's key.
            fields["personal"] = {"note": failure.diagnostic}
        return build(
            commands.RecordUndeliverable,
            fields,
            kind=UndeliverableKind.HARD_BOUNCE if soft is None else UndeliverableKind.SOFT_BOUNCES,
            status=failure.status,
            soft_bounces=soft,
            original_message_id=found.message_id,
            report_sha256=sha,
        )

    def outcome(self, plan: Plan, results: Sequence[CommandResult | LedgerError]) -> Outcome:
        """What became of the report of ``plan``, its commands recorded with ``results``;
        a reject is kept (and counted once) in the reject store."""
        recorded = [r for r in results if isinstance(r, CommandResult)]
        refused = len(recorded) < len(results)
        if plan.rejected is not None or (refused and not recorded):
            reason = plan.rejected or INVALID_FIELD
            if self.store.reject(
                report_sha256=plan.report_sha256,
                kind=plan.kind,
                reason=reason,
                provider=plan.provider,
                at=self._clock(),
            ):
                metrics.REJECTS.labels(plan.kind, reason).inc()
            outcome = Outcome(plan.report_sha256, plan.kind, REJECTED, reason)
        elif not recorded:
            outcome = Outcome(plan.report_sha256, plan.kind, COUNTED)
        else:
            duplicate = all(r.duplicate for r in recorded)
            outcome = Outcome(
                plan.report_sha256,
                plan.kind,
                DUPLICATE if duplicate else RECORDED,
                subjects=tuple(dict.fromkeys(r.subject for r in recorded)),
                event_ids=tuple(str(e) for r in recorded for e in r.event_ids),
                position=max(r.position for r in recorded),
            )
        metrics.REPORTS.labels(outcome.kind, outcome.status).inc()
        return outcome

    def ingest(self, raws: Iterable[bytes], *, chunk: int = 500) -> Iterator[Outcome]:
        """Record many reports, a chunk of commands per transaction; an outcome per report."""
        plans: list[Plan] = []
        for raw in raws:
            plans.append(self.plan(raw))
            if len(plans) >= chunk:
                yield from self._record(plans)
                plans = []
        yield from self._record(plans)

    def _record(self, plans: Sequence[Plan]) -> Iterator[Outcome]:
        planned = [command for plan in plans for command in plan.commands]
        results = iter(self.ledger.record_many(planned) if planned else [])
        for plan in plans:
            yield self.outcome(plan, [next(results) for _ in plan.commands])

    async def receive(self, plan: Plan) -> Outcome:
        """Record one planned report through the group commit (the HTTP path)."""
        results: list[CommandResult | LedgerError] = []
        for command in plan.commands:
            try:
                results.append(await self.ledger.record(command))
            except InvalidFieldError as error:
                results.append(error)
        return self.outcome(plan, results)


def _when(reported_at: datetime | None, now: datetime) -> datetime:
    """When it happened: the report's date, never later than now (a provider's clock may run
    fast; the ledger refuses the future)."""
    return now if reported_at is None else min(reported_at, now)


def _person(found: Recipient, key: str, kind: str, at: datetime) -> dict[str, object]:
    return {
        "subject": found.subject,
        "occurred_at": at,
        "command_id": f"{kind}-{key}",
        "source": Source.COMPLAINT_LOOP,
        "actor": ACTOR,
    }


__all__ = [
    "COUNTED",
    "DUPLICATE",
    "RECORDED",
    "REJECTED",
    "FeedbackConfig",
    "FeedbackIntake",
    "Outcome",
    "Plan",
    "Summary",
]
