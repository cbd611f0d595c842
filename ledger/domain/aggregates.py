"""The aggregates: one per person, and the catalog of purposes and policy versions.

Each aggregate is rebuilt by folding its stored events (``LedgerEvent.mutate``); the rules that
decide whether a command may become events are the ``check_*`` methods, which raise before any
event is triggered.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Self
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.domain.errors import (
    ConsentNotPendingError,
    DuplicatePolicyVersionError,
    DuplicatePurposeError,
    DuplicateRightsRequestError,
    PolicyTextMismatchError,
    RightsRequestAlreadyExtendedError,
    RightsRequestNotOpenError,
    UnknownPolicyVersionError,
    UnknownPurposeError,
)
from schemas import (
    CATALOG_SUBJECT,
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    DoubleOptIn,
    EventBase,
    InteractionRecorded,
    ObjectionRecorded,
    PolicyVersionAccepted,
    PolicyVersionPublished,
    ProcessingRestricted,
    PurposeRegistered,
    RestrictionLifted,
    RightsRequestClosed,
    RightsRequestExtended,
    RightsRequestOpened,
    SubjectErased,
    UnsubscribeClicked,
)

LEDGER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:consent-ledger:aggregate")
"""Aggregate ids are derived from the subject, so every process finds the same stream."""

EVERY_PURPOSE = "*"
"""The scope of a global unsubscribe or of a restriction without purposes."""


def aggregate_id(subject: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, subject)


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """A stored event: the envelope, placed in its aggregate's sequence.

    Implements the eventsourcing library's "can mutate" protocol, so the library's repository
    rebuilds aggregates from these.
    """

    originator_id: UUID
    originator_version: int
    envelope: EventBase

    def mutate(self, aggregate: "LedgerAggregate | None") -> "LedgerAggregate":
        if aggregate is None:
            cls: type[LedgerAggregate] = (
                Catalog if self.envelope.subject == CATALOG_SUBJECT else Person
            )
            aggregate = cls(subject=self.envelope.subject)
        aggregate.apply(self)
        return aggregate


@dataclass(slots=True)
class LedgerAggregate:
    """What persons and the catalog share: identity, version, idempotency, pending events."""

    subject: str
    version: int = 0
    commands: dict[str, tuple[tuple[UUID, int], ...]] = field(default_factory=dict)
    """Every command id applied, with the (event id, version) of each event it produced.

    This is what makes a retried command idempotent, across processes too: it is rebuilt from
    the stored events, whose envelopes carry the command id.
    """
    pending: list[LedgerEvent] = field(default_factory=list)
    id: UUID = field(init=False)

    def __post_init__(self) -> None:
        self.id = aggregate_id(self.subject)

    def apply(self, event: LedgerEvent) -> None:
        envelope = event.envelope
        self.version = event.originator_version
        previous = self.commands.get(envelope.command_id, ())
        self.commands[envelope.command_id] = (
            *previous,
            (envelope.event_id, event.originator_version),
        )
        self._evolve(envelope)

    def _evolve(self, envelope: EventBase) -> None:
        raise NotImplementedError

    def trigger(self, envelopes: Sequence[EventBase]) -> None:
        """Append new events; the caller has already checked every rule."""
        for envelope in envelopes:
            event = LedgerEvent(self.id, self.version + 1, envelope)
            self.apply(event)
            self.pending.append(event)

    def collect_events(self) -> list[LedgerEvent]:
        events, self.pending = self.pending, []
        return events


class ConsentStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    status: ConsentStatus
    policy_version: str | None
    since: datetime


@dataclass(slots=True)
class RightsRequestRecord:
    right: str
    due_at: datetime
    extended: bool = False
    outcome: str | None = None


@dataclass(slots=True)
class Person(LedgerAggregate):
    """One person's consent history, folded into the facts the ledger's rules need."""

    consents: dict[tuple[str, str], ConsentRecord] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)
    """Purposes (or ``*`` for every marketing message) the person unsubscribed from."""
    unsubscribed_lists: set[str] = field(default_factory=set)
    objections: set[str] = field(default_factory=set)
    """Purposes objected to (or ``*``: all direct marketing, GDPR art. 21(2))."""
    restrictions: set[str] = field(default_factory=set)
    accepted_policies: dict[str, str] = field(default_factory=dict)
    rights_requests: dict[UUID, RightsRequestRecord] = field(default_factory=dict)
    erasures: int = 0
    last_interaction_at: datetime | None = None

    def _evolve(self, envelope: EventBase) -> None:  # noqa: PLR0912 - one case per event
        match envelope:
            case ConsentGranted():
                status = (
                    ConsentStatus.PENDING
                    if envelope.double_opt_in is DoubleOptIn.PENDING
                    else ConsentStatus.GRANTED
                )
                self.consents[(envelope.purpose, envelope.channel)] = ConsentRecord(
                    status, envelope.policy_version, envelope.occurred_at
                )
                # A new explicit consent for a purpose supersedes an unsubscribe from it.
                self.unsubscribed.discard(envelope.purpose)
            case ConsentConfirmed():
                key = (envelope.purpose, envelope.channel)
                self.consents[key] = ConsentRecord(
                    ConsentStatus.GRANTED, self.consents[key].policy_version, envelope.occurred_at
                )
            case ConsentWithdrawn():
                self._withdraw(envelope.purpose, envelope.channel, envelope.occurred_at)
            case UnsubscribeClicked():
                if envelope.purpose is not None:
                    self.unsubscribed.add(envelope.purpose)
                    self._withdraw(envelope.purpose, "email", envelope.occurred_at)
                elif envelope.list_id is not None:
                    self.unsubscribed_lists.add(envelope.list_id)
                else:
                    self.unsubscribed.add(EVERY_PURPOSE)
                    for purpose, channel in list(self.consents):
                        if channel == "email":
                            self._withdraw(purpose, channel, envelope.occurred_at)
            case ObjectionRecorded():
                self.objections.add(envelope.purpose or EVERY_PURPOSE)
            case ProcessingRestricted():
                self.restrictions.update(envelope.purposes or (EVERY_PURPOSE,))
            case RestrictionLifted():
                if envelope.purposes:
                    self.restrictions.difference_update(envelope.purposes)
                else:
                    self.restrictions.clear()
            case PolicyVersionAccepted():
                self.accepted_policies[envelope.version] = envelope.text_sha256
            case RightsRequestOpened():
                self.rights_requests[envelope.request_id] = RightsRequestRecord(
                    envelope.right, envelope.due_at
                )
            case RightsRequestExtended():
                request = self.rights_requests[envelope.request_id]
                request.due_at = envelope.due_at
                request.extended = True
            case RightsRequestClosed():
                self.rights_requests[envelope.request_id].outcome = envelope.outcome
            case SubjectErased():
                self.erasures += 1
            case InteractionRecorded():
                self.last_interaction_at = envelope.occurred_at
            case _:
                msg = f"{envelope.event_type} is not a person event"
                raise TypeError(msg)

    def _withdraw(self, purpose: str, channel: str, when: datetime) -> None:
        previous = self.consents.get((purpose, channel))
        self.consents[(purpose, channel)] = ConsentRecord(
            ConsentStatus.WITHDRAWN, previous.policy_version if previous else None, when
        )

    def check_can_confirm(self, purpose: str, channel: str) -> None:
        record = self.consents.get((purpose, channel))
        if record is None or record.status is not ConsentStatus.PENDING:
            raise ConsentNotPendingError(purpose, channel)

    def check_new_request(self, request_id: UUID) -> None:
        if request_id in self.rights_requests:
            raise DuplicateRightsRequestError(request_id)

    def check_open_request(self, request_id: UUID) -> RightsRequestRecord:
        request = self.rights_requests.get(request_id)
        if request is None or request.outcome is not None:
            raise RightsRequestNotOpenError(request_id)
        return request

    def check_can_extend(self, request_id: UUID) -> None:
        if self.check_open_request(request_id).extended:
            raise RightsRequestAlreadyExtendedError(request_id)

    @classmethod
    def new(cls, subject: str) -> Self:
        return cls(subject=subject)


@dataclass(slots=True)
class Catalog(LedgerAggregate):
    """The purposes and privacy-policy versions that exist; both only ever grow."""

    purposes: dict[str, PurposeRegistered] = field(default_factory=dict)
    policies: dict[str, PolicyVersionPublished] = field(default_factory=dict)

    def _evolve(self, envelope: EventBase) -> None:
        match envelope:
            case PurposeRegistered():
                self.purposes[envelope.purpose] = envelope
            case PolicyVersionPublished():
                self.policies[envelope.version] = envelope
            case _:
                msg = f"{envelope.event_type} is not a catalog event"
                raise TypeError(msg)

    def check_purpose(self, purpose: str) -> PurposeRegistered:
        try:
            return self.purposes[purpose]
        except KeyError:
            raise UnknownPurposeError(purpose) from None

    def check_policy(
        self, version: str, *, field: str = "policy_version"
    ) -> PolicyVersionPublished:
        try:
            return self.policies[version]
        except KeyError:
            raise UnknownPolicyVersionError(version, field=field) from None

    def check_policy_text(self, version: str, text_sha256: str) -> None:
        if self.check_policy(version, field="version").text_sha256 != text_sha256:
            raise PolicyTextMismatchError(version)

    def check_new_purpose(self, purpose: str) -> None:
        if purpose in self.purposes:
            raise DuplicatePurposeError(purpose)

    def check_new_policy(self, version: str) -> None:
        if version in self.policies:
            raise DuplicatePolicyVersionError(version)

    def check_policy_purposes(self, purposes: Sequence[str]) -> None:
        for purpose in purposes:
            self.check_purpose(purpose)

    @classmethod
    def new(cls) -> Self:
        return cls(subject=CATALOG_SUBJECT)
