"""The rule book folds a person's events into the state that decides, in the ledger's order."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from ledger.domain.rules import (
    ConsentStatus,
    Decision,
    Facts,
    PersonState,
    PurposeFacts,
    Reason,
    decide,
    facts_from_log,
)
from schemas import CATALOG_SUBJECT, EventBase, parse_event
from tests.helpers import envelope

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AT = T0 + timedelta(days=30)


def _event(event_type: str, subject: str = "p", **fields: Any) -> EventBase:
    return parse_event(envelope(event_type, subject, T0, **fields))


CATALOG = [
    _event(
        "PurposeRegistered",
        CATALOG_SUBJECT,
        purpose="newsletter",
        legal_basis="consent",
        description="n",
        direct_marketing=True,
    ),
    _event(
        "PolicyVersionPublished",
        CATALOG_SUBJECT,
        version="v1",
        text_sha256="a" * 64,
        effective_at=T0.isoformat(),
        purposes=["newsletter"],
        requires_reconsent=False,
    ),
]


def _grant(channel: str = "email") -> EventBase:
    return _event(
        "ConsentGranted",
        schema_version=2,
        purpose="newsletter",
        channel=channel,
        policy_version="v1",
        double_opt_in="not_applicable",
    )


def _unsubscribe(purpose: str | None = None, list_id: str | None = None) -> EventBase:
    return _event("UnsubscribeClicked", purpose=purpose, list_id=list_id, method="one_click_post")


def _object(purpose: str | None = None) -> EventBase:
    return _event("ObjectionRecorded", purpose=purpose, all_direct_marketing=purpose is None)


def _decide(events: list[EventBase], channel: str) -> Decision:
    log = [(event, position) for position, event in enumerate([*CATALOG, *events], start=1)]
    facts = facts_from_log(log, subject="p", purpose="newsletter", channel=channel)
    return decide(facts, purpose="newsletter", channel=channel, at=AT)


def test_a_grant_allows_on_its_channel_only() -> None:
    assert _decide([_grant("sms")], "sms") == Decision(allowed=True)
    assert _decide([_grant("sms")], "email") == Decision(False, Reason.NEVER_GRANTED)


@pytest.mark.parametrize("scope", [None, "newsletter"])
def test_an_unsubscribe_after_an_objection_does_not_lift_it(scope: str | None) -> None:
    # The objection and the unsubscribe share a scope; a later consent lifts only the unsubscribe.
    history = [_grant("sms"), _grant("email"), _object(scope), _unsubscribe(scope)]
    assert _decide(history, "sms") == Decision(False, Reason.OBJECTED)
    assert _decide([*history, _grant("email")], "email") == Decision(False, Reason.OBJECTED)


def test_a_new_consent_outweighs_an_unsubscribe_from_the_purpose() -> None:
    history = [_grant(), _unsubscribe("newsletter")]
    assert _decide(history, "email") == Decision(False, Reason.UNSUBSCRIBED)
    assert _decide([*history, _grant()], "email") == Decision(allowed=True)


def test_an_unsubscribe_ends_the_email_consents_on_file_and_invents_none() -> None:
    state = PersonState()
    state.evolve(_grant("email"), 1)
    state.evolve(_grant("sms"), 2)
    state.evolve(_unsubscribe(), 3)
    state.evolve(_unsubscribe("offers"), 4)
    assert {key: c.status for key, c in state.consents.items()} == {
        ("newsletter", "email"): ConsentStatus.WITHDRAWN,
        ("newsletter", "sms"): ConsentStatus.GRANTED,
    }


def test_a_list_unsubscribe_touches_no_consent() -> None:
    state = PersonState()
    state.evolve(_grant(), 1)
    state.evolve(_unsubscribe(list_id="weekly"), 2)
    assert state.consents[("newsletter", "email")].status is ConsentStatus.GRANTED
    assert _decide([_grant(), _unsubscribe(list_id="weekly")], "email") == Decision(allowed=True)


def test_only_a_consent_newer_than_the_erasure_counts() -> None:
    erased = _event("SubjectErased", request_id=str(uuid4()))
    assert _decide([_grant("sms"), erased], "sms") == Decision(False, Reason.ERASED)
    assert _decide([_grant("sms"), erased, _grant("sms")], "sms") == Decision(allowed=True)


def test_events_of_other_people_and_of_the_catalog_do_not_touch_the_person() -> None:
    state = PersonState()
    assert not state.evolve(CATALOG[0], 1)
    assert state == PersonState()


def test_a_purpose_not_based_on_consent_needs_none() -> None:
    interest = PurposeFacts("legitimate_interest", max_age_days=None, direct_marketing=False)
    answer = decide(Facts(purpose=interest), purpose="fraud", channel="email", at=AT)
    assert answer == Decision(allowed=True)
