"""The aggregates: one per person, and the catalog of purposes and policy versions.

Each aggregate is rebuilt by folding its stored events (``LedgerEvent.mutate``): the consent
state by the rule book (`ledger.domain.rules`), the rest (command ids, policy acceptances,
rights requests) here. The rules that decide whether a command may become events are the
``check_*`` methods, which raise before any event is triggered.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.domain.errors import (
    ConsentNotPendingError,
    DuplicatePolicyVersionError,
    DuplicatePurposeError,
    DuplicateRightsRequestError,
    PolicyTextMismatchError,
    PurposeNotCoveredError,
    RightsRequestAlreadyExtendedError,
    RightsRequestNotOpenError,
    UnknownPolicyVersionError,
    UnknownPurposeError,
)
from ledger.domain.rules import (
    LIST_SCOPE_PREFIX,
    CatalogState,
    ConsentFacts,
    ConsentStatus,
    PersonState,
    SuppressionReason,
    covers,
)
from schemas import (
    CATALOG_SUBJECT,
    EventBase,
    PolicyVersionAccepted,
    PolicyVersionPublished,
    PurposeRegistered,
    RightsRequestClosed,
    RightsRequestExtended,
    RightsRequestOpened,
)

LEDGER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:consent-ledger:aggregate")
"""Aggregate ids are derived from the subject, so every process finds the same stream."""


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


@dataclass(slots=True)
class RightsRequestRecord:
    right: str
    due_at: datetime
    extended: bool = False
    outcome: str | None = None


@dataclass(slots=True)
class Person(LedgerAggregate):
    """One person's history, folded into the facts the ledger's rules need."""

    state: PersonState = field(default_factory=PersonState)
    """The consent state, folded by the rule book."""
    accepted_policies: dict[str, str] = field(default_factory=dict)
    rights_requests: dict[UUID, RightsRequestRecord] = field(default_factory=dict)

    def _evolve(self, envelope: EventBase) -> None:
        # The version orders the person's events as the ledger positions do.
        if self.state.evolve(envelope, self.version):
            return
        match envelope:
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
            case _:
                msg = f"{envelope.event_type} is not a person event"
                raise TypeError(msg)

    @property
    def consents(self) -> dict[tuple[str, str], ConsentFacts]:
        return self.state.consents

    @property
    def unsubscribed(self) -> set[str]:
        """Purposes (or ``*`` for every marketing message) the person unsubscribed from."""
        return {
            scope
            for scope, reason in self.state.suppressions
            if reason == SuppressionReason.UNSUBSCRIBED and not scope.startswith(LIST_SCOPE_PREFIX)
        }

    @property
    def unsubscribed_lists(self) -> set[str]:
        return {
            scope.removeprefix(LIST_SCOPE_PREFIX)
            for scope, reason in self.state.suppressions
            if reason == SuppressionReason.UNSUBSCRIBED and scope.startswith(LIST_SCOPE_PREFIX)
        }

    @property
    def objections(self) -> set[str]:
        """Purposes objected to (or ``*``: all direct marketing, GDPR art. 21(2))."""
        return {
            scope
            for scope, reason in self.state.suppressions
            if reason == SuppressionReason.OBJECTION
        }

    @property
    def restrictions(self) -> set[str]:
        return self.state.restrictions

    @property
    def erasures(self) -> int:
        return self.state.erasures

    @property
    def last_interaction_at(self) -> datetime | None:
        return self.state.last_interaction

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

    state: CatalogState = field(default_factory=CatalogState)

    def _evolve(self, envelope: EventBase) -> None:
        if not self.state.evolve(envelope):
            msg = f"{envelope.event_type} is not a catalog event"
            raise TypeError(msg)

    @property
    def purposes(self) -> dict[str, PurposeRegistered]:
        return self.state.purposes

    @property
    def policies(self) -> dict[str, PolicyVersionPublished]:
        return self.state.policies

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

    def check_policy_covers(self, version: str, purpose: str) -> None:
        """A consent names the policy version it was given under, which must cover its purpose:
        otherwise the person was never told of that purpose."""
        if not covers(self.check_policy(version).purposes, purpose):
            raise PurposeNotCoveredError(purpose, version)

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
