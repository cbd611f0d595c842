"""The decision's facts computed by replaying the log, without any projection table.

This is the reference the projection must agree with (a property test holds them equal), and
the way to answer for a position the tables have moved past.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from projections.decision import (
    ERASED_SCOPE,
    EVERY_SCOPE,
    ConsentFacts,
    Facts,
    PolicyFacts,
    PurposeFacts,
    SuppressionFacts,
)
from schemas import (
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    DoubleOptIn,
    EventBase,
    InteractionRecorded,
    ObjectionRecorded,
    PolicyVersionPublished,
    ProcessingRestricted,
    PurposeRegistered,
    RestrictionLifted,
    SubjectErased,
    UnsubscribeClicked,
)


@dataclass
class _Person:
    consents: dict[tuple[str, str], ConsentFacts] = field(default_factory=dict)
    suppressions: dict[str, SuppressionFacts] = field(default_factory=dict)
    restrictions: set[str] = field(default_factory=set)
    last_interaction: EventBase | None = None


def facts_from_log(
    events: Iterable[tuple[EventBase, int]], *, subject: str, purpose: str, channel: str
) -> Facts:
    """Fold the log (in ledger order) into the facts of one check."""
    purposes: dict[str, PurposeFacts] = {}
    policies: dict[str, PolicyFacts] = {}
    person = _Person()
    for event, position in events:
        match event:
            case PurposeRegistered():
                purposes.setdefault(
                    event.purpose,
                    PurposeFacts(
                        event.legal_basis.value, event.max_age_days, event.direct_marketing
                    ),
                )
            case PolicyVersionPublished():
                policies.setdefault(
                    event.version,
                    PolicyFacts(
                        event.version, event.effective_at, event.purposes, event.requires_reconsent
                    ),
                )
            case _ if event.subject == subject:
                _apply(person, event, position)
    return Facts(
        purpose=purposes.get(purpose),
        consent=person.consents.get((purpose, channel)),
        suppressions=tuple(person.suppressions.values()),
        restrictions=frozenset(person.restrictions),
        last_interaction=person.last_interaction.occurred_at if person.last_interaction else None,
        policies=tuple(policies.values()),
    )


def _apply(person: _Person, event: EventBase, position: int) -> None:  # noqa: PLR0912
    match event:
        case ConsentGranted():
            status = "pending" if event.double_opt_in is DoubleOptIn.PENDING else "granted"
            person.consents[(event.purpose, event.channel)] = ConsentFacts(
                status, event.policy_version, event.occurred_at, position
            )
            lifted = person.suppressions.get(event.purpose)
            if lifted is not None and lifted.reason == "unsubscribed":
                del person.suppressions[event.purpose]
        case ConsentConfirmed():
            previous = person.consents.get((event.purpose, event.channel))
            person.consents[(event.purpose, event.channel)] = ConsentFacts(
                "granted",
                previous.policy_version if previous else None,
                event.occurred_at,
                position,
            )
        case ConsentWithdrawn():
            _withdraw(person, event.purpose, event.channel, event, position)
        case UnsubscribeClicked():
            if event.list_id is not None and event.purpose is None:
                scope = f"list:{event.list_id}"
                person.suppressions[scope] = SuppressionFacts(scope, "unsubscribed", position)
                return
            scope = event.purpose or EVERY_SCOPE
            person.suppressions[scope] = SuppressionFacts(scope, "unsubscribed", position)
            for purpose_, channel_ in list(person.consents):
                if channel_ == "email" and event.purpose in (None, purpose_):
                    _withdraw(person, purpose_, channel_, event, position)
        case ObjectionRecorded():
            scope = event.purpose or EVERY_SCOPE
            person.suppressions[scope] = SuppressionFacts(scope, "objection", position)
        case SubjectErased():
            person.suppressions[ERASED_SCOPE] = SuppressionFacts(ERASED_SCOPE, "erased", position)
        case ProcessingRestricted():
            person.restrictions.update(event.purposes or (EVERY_SCOPE,))
        case RestrictionLifted():
            if event.purposes:
                person.restrictions.difference_update(event.purposes)
            else:
                person.restrictions.clear()
        case InteractionRecorded():
            person.last_interaction = event
        case _:
            pass


def _withdraw(person: _Person, purpose: str, channel: str, event: EventBase, position: int) -> None:
    previous = person.consents.get((purpose, channel))
    person.consents[(purpose, channel)] = ConsentFacts(
        "withdrawn", previous.policy_version if previous else None, event.occurred_at, position
    )
