"""The decision at a past time, from a log written by hand: what counts, and the evidence shown."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from ledger.domain.rules import Decision, Reason
from ledger.rights.point_in_time import decision_at
from schemas import (
    CATALOG_SUBJECT,
    ConsentGranted,
    ConsentWithdrawn,
    EventBase,
    Evidence,
    PolicyVersionPublished,
    PurposeRegistered,
    SubjectErased,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
SHOWN = "c" * 64


def _day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _envelope(subject: str, when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": uuid4(),
        "subject": subject,
        "occurred_at": when,
        "recorded_at": NOW,
        "command_id": str(uuid4()),
        "source": "api",
        "actor": "test",
        **extra,
    }


def _catalog(when: datetime) -> list[EventBase]:
    return [
        PurposeRegistered(
            **_envelope(CATALOG_SUBJECT, when),
            purpose="newsletter",
            legal_basis="consent",
            description="n",
            direct_marketing=True,
        ),
        PolicyVersionPublished(
            **_envelope(CATALOG_SUBJECT, when),
            version="v1",
            text_sha256="a" * 64,
            effective_at=T0,
            purposes=("newsletter",),
            requires_reconsent=False,
        ),
    ]


def _grant(when: datetime, version: str = "v1") -> ConsentGranted:
    return ConsentGranted(
        **_envelope("p", when, evidence=Evidence(consent_text_sha256=SHOWN)),
        purpose="newsletter",
        channel="email",
        policy_version=version,
        double_opt_in="not_applicable",
    )


def _ask(events: list[EventBase], at: datetime) -> Any:
    log = [(event, position) for position, event in enumerate(events, start=1)]
    return decision_at(log, subject="p", purpose="newsletter", channel="email", at=at)


def test_a_backdated_grant_counts_under_a_catalog_recorded_later() -> None:
    # An imported base: consents from 2025, purposes and policy recorded on the day of import.
    answer = _ask([*_catalog(NOW), _grant(_day(10))], at=_day(20))
    assert answer.decision == Decision(allowed=True)
    assert answer.policy is not None
    assert (answer.policy.version, answer.policy.text_sha256) == ("v1", "a" * 64)
    assert answer.deciding is not None
    assert answer.deciding[1] == 3
    assert answer.to_json()["deciding_event"]["evidence"]["consent_text_sha256"] == SHOWN


def test_what_happened_after_the_time_asked_does_not_count() -> None:
    withdrawn = ConsentWithdrawn(
        **_envelope("p", _day(30)), purpose="newsletter", channel="email", reason="user_request"
    )
    events = [*_catalog(T0), _grant(_day(10)), withdrawn]
    assert _ask(events, at=_day(29)).decision == Decision(allowed=True)
    after = _ask(events, at=_day(30))
    assert after.decision == Decision(allowed=False, reason=Reason.WITHDRAWN)
    assert after.deciding == (withdrawn, 4)
    assert after.to_json()["deciding_event"]["fields"] == {
        "purpose": "newsletter",
        "channel": "email",
        "reason": "user_request",
    }
    assert _ask(events, at=_day(5)).decision == Decision(False, Reason.NEVER_GRANTED)
    assert _ask(events, at=_day(5)).deciding is None


def test_a_policy_requiring_reconsent_is_the_deciding_event_once_in_force() -> None:
    v2 = PolicyVersionPublished(
        **_envelope(CATALOG_SUBJECT, _day(1)),
        version="v2",
        text_sha256="b" * 64,
        effective_at=_day(100),
        purposes=(),
        requires_reconsent=True,
    )
    events = [*_catalog(T0), v2, _grant(_day(10))]
    assert _ask(events, at=_day(99)).decision == Decision(allowed=True)
    answer = _ask(events, at=_day(101))
    assert answer.decision == Decision(False, Reason.RECONSENT_REQUIRED)
    assert answer.deciding == (v2, 3)
    assert answer.policy is not None
    assert answer.policy.version == "v1"


def test_an_erasure_denies_from_its_time_on_and_names_itself() -> None:
    erased = SubjectErased(**_envelope("p", _day(50)))
    events = [*_catalog(T0), _grant(_day(10)), erased]
    assert _ask(events, at=_day(49)).decision == Decision(allowed=True)
    answer = _ask(events, at=_day(51))
    assert answer.decision == Decision(False, Reason.ERASED)
    assert answer.deciding == (erased, 4)
    assert answer.to_json()["reason"] == "erased"
