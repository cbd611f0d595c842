"""The rule book: a person's events folded into their consent state, and may we send, and why.

Pure (no I/O). The writer's aggregate, the replay of the log, the answer at a point in time and
retention all fold events with `PersonState.evolve` and `CatalogState.evolve`, and every
answer to "may we send (purpose, channel) at T" is `decide`. The projection's SQL is the one
other place that applies events (set-based, for speed); property tests hold its answers equal
to this book's.

``position`` is any number that grows along the ledger's order: the ledger position where the
event is stored, or the aggregate's version in the writer (which orders one person's events
the same way). Rules only compare positions of one person's events.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ledger.domain import deliverability

# Re-exported (the "as" says so): part of the rule book, as they always were.
from ledger.domain.policies import covers as covers  # noqa: PLC0414
from ledger.domain.policies import lapses_at as lapses_at  # noqa: PLC0414
from ledger.domain.policies import reconsent_required_since as reconsent_required_since  # noqa: PLC0414
from ledger.domain.policies import reconsent_versions as reconsent_versions  # noqa: PLC0414
from ledger.domain.policies import renews as renews  # noqa: PLC0414
from schemas import (
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    DoubleOptIn,
    EventBase,
    InteractionRecorded,
    LegalBasis,
    ObjectionRecorded,
    PolicyChangeAnnounced,
    PolicyVersionPublished,
    ProcessingRestricted,
    PurposeRegistered,
    RestrictionLifted,
    SubjectErased,
    UnsubscribeClicked,
)

EVERY_PURPOSE = "*"
"""The scope of a global unsubscribe, of an objection to all direct marketing, and of a
restriction that names no purpose."""
ERASED_SCOPE = "#erased"
"""The suppression scope of an erasure: its own, so that it never overwrites an objection or an
unsubscribe from everything (neither a purpose slug nor a list can be spelled like this)."""
LIST_SCOPE_PREFIX = "list:"
EMAIL = "email"
"""The one channel an unsubscribe link speaks for."""


def list_scope(list_id: str) -> str:
    """The suppression scope of an unsubscribe from one mailing list."""
    return f"{LIST_SCOPE_PREFIX}{list_id}"


class ConsentStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    OBJECTION = "objection"
    ERASED = "erased"
    COMPLAINED = deliverability.COMPLAINED
    UNDELIVERABLE = deliverability.UNDELIVERABLE


class Reason(StrEnum):
    """Why sending is denied; the order of the checks in `decide` is the order here."""

    UNKNOWN_PURPOSE = "unknown_purpose"
    ERASED = "erased"
    OBJECTED = "objected"
    RESTRICTED = "restricted"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = deliverability.COMPLAINED
    UNDELIVERABLE = deliverability.UNDELIVERABLE
    NEVER_GRANTED = "never_granted"
    WITHDRAWN = "withdrawn"
    DOUBLE_OPT_IN_PENDING = "double_opt_in_pending"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"


@dataclass(frozen=True, slots=True)
class PurposeFacts:
    legal_basis: str
    max_age_days: int | None
    direct_marketing: bool

    @classmethod
    def of(cls, event: PurposeRegistered) -> "PurposeFacts":
        return cls(event.legal_basis.value, event.max_age_days, event.direct_marketing)


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    version: str
    effective_at: datetime
    purposes: tuple[str, ...]
    requires_reconsent: bool

    @classmethod
    def of(cls, event: PolicyVersionPublished) -> "PolicyFacts":
        return cls(event.version, event.effective_at, event.purposes, event.requires_reconsent)


@dataclass(frozen=True, slots=True)
class ConsentFacts:
    status: ConsentStatus
    policy_version: str | None
    since: datetime
    last_position: int


@dataclass(frozen=True, slots=True)
class SuppressionFacts:
    scope: str
    reason: SuppressionReason
    last_position: int


@dataclass(frozen=True, slots=True)
class CatalogFacts:
    """What one check reads that does not depend on the person: the purpose and the policies."""

    purpose: PurposeFacts | None
    policies: tuple[PolicyFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the decision reads about one person and one purpose on one channel."""

    purpose: PurposeFacts | None
    consent: ConsentFacts | None = None
    suppressions: tuple[SuppressionFacts, ...] = ()
    restrictions: frozenset[str] = field(default_factory=frozenset)
    last_interaction: datetime | None = None
    policies: tuple[PolicyFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason | None = None


ALLOWED = Decision(allowed=True)


@dataclass(slots=True)
class CatalogState:
    """The purposes and policy versions that exist; the first registration of each counts."""

    purposes: dict[str, PurposeRegistered] = field(default_factory=dict)
    policies: dict[str, PolicyVersionPublished] = field(default_factory=dict)
    announcements: list[PolicyChangeAnnounced] = field(default_factory=list)

    def evolve(self, event: EventBase) -> bool:
        """Fold a catalog event in; False if ``event`` is not one."""
        match event:
            case PurposeRegistered():
                self.purposes.setdefault(event.purpose, event)
            case PolicyVersionPublished():
                self.policies.setdefault(event.version, event)
            case PolicyChangeAnnounced():
                self.announcements.append(event)
            case _:
                return False
        return True

    def facts(self, purpose: str) -> CatalogFacts:
        registered = self.purposes.get(purpose)
        return CatalogFacts(
            purpose=None if registered is None else PurposeFacts.of(registered),
            policies=tuple(PolicyFacts.of(p) for p in self.policies.values()),
        )


@dataclass(slots=True)
class PersonState:
    """One person's consent state: what `decide` reads, folded from their events."""

    consents: dict[tuple[str, str], ConsentFacts] = field(default_factory=dict)
    suppressions: dict[tuple[str, SuppressionReason], SuppressionFacts] = field(
        default_factory=dict
    )
    """Active suppressions by scope (a purpose, ``*``, ``list:<id>`` or the erasure's own) and
    reason: an unsubscribe from a purpose never hides an objection to it, nor the reverse."""
    restrictions: set[str] = field(default_factory=set)
    last_interaction: datetime | None = None
    erasures: int = 0

    def evolve(self, event: EventBase, position: int) -> bool:
        """Fold one of the person's events in; False if it does not touch the consent state."""
        match event:
            case ConsentGranted():
                self._grant(event, position)
            case ConsentConfirmed():
                key = (event.purpose, event.channel.value)
                self._set_status(key, ConsentStatus.GRANTED, event.occurred_at, position)
                self._address_confirmed(event)
            case ConsentWithdrawn():
                key = (event.purpose, event.channel.value)
                self._set_status(key, ConsentStatus.WITHDRAWN, event.occurred_at, position)
            case UnsubscribeClicked():
                self._unsubscribe(event, position)
            case ObjectionRecorded():
                scope = event.purpose or EVERY_PURPOSE
                self._suppress(scope, SuppressionReason.OBJECTION, position)
            case SubjectErased():
                self.erasures += 1
                self._suppress(ERASED_SCOPE, SuppressionReason.ERASED, position)
                # The consents end with the person's data: none on file counts as given any more.
                for key in list(self.consents):
                    self._set_status(key, ConsentStatus.WITHDRAWN, event.occurred_at, position)
            case ProcessingRestricted():
                self.restrictions.update(event.purposes or (EVERY_PURPOSE,))
            case RestrictionLifted():
                lifted = set(event.purposes) if event.purposes else set(self.restrictions)
                self.restrictions.difference_update(lifted)
            case InteractionRecorded():
                self.last_interaction = event.occurred_at
            case _:
                return self._heard_back(event, position)
        return True

    def _heard_back(self, event: EventBase, position: int) -> bool:
        """A complaint or a bounce (`ledger.domain.deliverability`); False for any other event."""
        heard = deliverability.heard_back(event)
        if heard is not None and heard.scope is not None:
            self._suppress(heard.scope, SuppressionReason(heard.reason), position)
        return heard is not None

    def _address_confirmed(self, event: EventBase) -> None:
        if deliverability.confirms_address(event):
            key = (deliverability.UNDELIVERABLE_SCOPE, SuppressionReason.UNDELIVERABLE)
            self.suppressions.pop(key, None)

    def _grant(self, event: ConsentGranted, position: int) -> None:
        pending = event.double_opt_in is DoubleOptIn.PENDING
        status = ConsentStatus.PENDING if pending else ConsentStatus.GRANTED
        key = (event.purpose, event.channel.value)
        self.consents[key] = ConsentFacts(status, event.policy_version, event.occurred_at, position)
        # A new explicit consent for a purpose supersedes an unsubscribe from it.
        self.suppressions.pop((event.purpose, SuppressionReason.UNSUBSCRIBED), None)
        self._address_confirmed(event)

    def _set_status(
        self, key: tuple[str, str], status: ConsentStatus, when: datetime, position: int
    ) -> None:
        """A confirmation or a withdrawal: the status changes, the policy version stays."""
        previous = self.consents.get(key)
        self.consents[key] = ConsentFacts(
            status, previous.policy_version if previous else None, when, position
        )

    def _suppress(self, scope: str, reason: SuppressionReason, position: int) -> None:
        self.suppressions[scope, reason] = SuppressionFacts(scope, reason, position)

    def _unsubscribe(self, event: UnsubscribeClicked, position: int) -> None:
        if event.list_id is not None and event.purpose is None:
            self._suppress(list_scope(event.list_id), SuppressionReason.UNSUBSCRIBED, position)
            return
        self._suppress(event.purpose or EVERY_PURPOSE, SuppressionReason.UNSUBSCRIBED, position)
        # The link speaks for email: it ends the email consents it covers that are on file.
        for key in [k for k in self.consents if k[1] == EMAIL and event.purpose in (None, k[0])]:
            self._set_status(key, ConsentStatus.WITHDRAWN, event.occurred_at, position)

    def facts(self, catalog: CatalogFacts, *, purpose: str, channel: str) -> Facts:
        """What `decide` reads about this person for (purpose, channel)."""
        return Facts(
            purpose=catalog.purpose,
            consent=self.consents.get((purpose, channel)),
            suppressions=tuple(self.suppressions.values()),
            restrictions=frozenset(self.restrictions),
            last_interaction=self.last_interaction,
            policies=catalog.policies,
        )


def replay(
    events: Iterable[tuple[EventBase, int]], *, subject: str
) -> tuple[CatalogState, PersonState]:
    """Fold the log (``(event, position)`` in ledger order) into the catalog and one person."""
    catalog, person = CatalogState(), PersonState()
    for event, position in events:
        if not catalog.evolve(event) and event.subject == subject:
            person.evolve(event, position)
    return catalog, person


def facts_from_log(
    events: Iterable[tuple[EventBase, int]], *, subject: str, purpose: str, channel: str
) -> Facts:
    """The facts of one check, from a replay of the log."""
    catalog, person = replay(events, subject=subject)
    return person.facts(catalog.facts(purpose), purpose=purpose, channel=channel)


def decide(facts: Facts, *, purpose: str, channel: str, at: datetime) -> Decision:
    """Allowed, or the first reason to deny (DESIGN.md section 9)."""
    registered = facts.purpose
    if registered is None:
        return Decision(allowed=False, reason=Reason.UNKNOWN_PURPOSE)
    reason = _suppressed(facts, registered, purpose=purpose, channel=channel)
    if reason is None and registered.legal_basis == LegalBasis.CONSENT.value:
        reason = _consent_lacking(facts, registered, purpose=purpose, at=at)
    return ALLOWED if reason is None else Decision(allowed=False, reason=reason)


def _suppressed(
    facts: Facts, registered: PurposeFacts, *, purpose: str, channel: str
) -> Reason | None:
    """Erasure, objection, restriction or unsubscribe: what denies whatever the consent."""
    consent = facts.consent
    suppressions = facts.suppressions
    # After an erasure only a newer explicit consent counts (a new key, a new start); the
    # erasure's own withdrawal of a consent shares its position.
    if any(
        s.reason == SuppressionReason.ERASED
        and (consent is None or consent.last_position <= s.last_position)
        for s in suppressions
    ):
        return Reason.ERASED
    marketing = registered.direct_marketing
    if any(
        s.reason == SuppressionReason.OBJECTION
        and (s.scope == purpose or (s.scope == EVERY_PURPOSE and marketing))
        for s in suppressions
    ):
        return Reason.OBJECTED
    if EVERY_PURPOSE in facts.restrictions or purpose in facts.restrictions:
        return Reason.RESTRICTED
    if channel == EMAIL and any(
        s.reason == SuppressionReason.UNSUBSCRIBED
        and (s.scope == purpose or (s.scope == EVERY_PURPOSE and _outweighs(s, consent)))
        for s in suppressions
    ):
        return Reason.UNSUBSCRIBED
    denied = deliverability.denial(
        suppressions,
        consent_position=None if consent is None else consent.last_position,
        marketing=marketing,
        channel=channel,
    )
    return None if denied is None else Reason(denied)


def _outweighs(suppression: SuppressionFacts, consent: ConsentFacts | None) -> bool:
    """No consent on file is newer than the unsubscribe (whose own withdrawal of a consent shares
    its position): only a newer explicit consent wins over an unsubscribe from everything."""
    return consent is None or consent.last_position <= suppression.last_position


def _consent_lacking(
    facts: Facts, registered: PurposeFacts, *, purpose: str, at: datetime
) -> Reason | None:
    """Why the consent on file does not allow sending at ``at`` (a purpose based on consent)."""
    consent = facts.consent
    if consent is None:
        return Reason.NEVER_GRANTED
    if consent.status == ConsentStatus.WITHDRAWN:
        return Reason.WITHDRAWN
    if consent.status == ConsentStatus.PENDING:
        return Reason.DOUBLE_OPT_IN_PENDING
    lapses = lapses_at(registered, consent, facts.last_interaction)
    if lapses is not None and at > lapses:
        return Reason.EXPIRED
    outdated = reconsent_required_since(facts.policies, consent=consent, purpose=purpose, at=at)
    if outdated is not None:
        return Reason.RECONSENT_REQUIRED
    return None
