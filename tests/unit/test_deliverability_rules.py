"""Complaints and undeliverable addresses deny with reasons of their own, not consent ones."""

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.domain.rules import Reason, decide, facts_from_log
from schemas import CATALOG_SUBJECT, EventBase, parse_event
from tests.helpers import envelope
from tests.unit.test_rules import CATALOG as RULES_CATALOG

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AT = T0 + timedelta(days=30)


def _event(event_type: str, subject: str = "p", **fields: Any) -> EventBase:
    return parse_event(envelope(event_type, subject, T0, **fields))


def _purpose(purpose: str, *, marketing: bool, basis: str = "consent") -> EventBase:
    return _event(
        "PurposeRegistered",
        CATALOG_SUBJECT,
        purpose=purpose,
        legal_basis=basis,
        description=purpose,
        direct_marketing=marketing,
    )


CATALOG = [*RULES_CATALOG, _purpose("invoices", marketing=False, basis="contract")]


def _grant(purpose: str = "newsletter", *, opt_in: str = "not_applicable") -> EventBase:
    return _event(
        "ConsentGranted",
        schema_version=2,
        purpose=purpose,
        channel="email",
        policy_version="v1",
        double_opt_in=opt_in,
    )


def _complaint(feedback_type: str = "abuse") -> EventBase:
    return _event("ComplaintReceived", feedback_type=feedback_type, report_sha256="c" * 64)


def _bounce() -> EventBase:
    return _event(
        "AddressUndeliverable", kind="hard_bounce", status="5.1.1", report_sha256="b" * 64
    )


def _reason(history: list[EventBase], purpose: str = "newsletter") -> Reason | None:
    log = [(event, n) for n, event in enumerate([*CATALOG, *history], start=1)]
    facts = facts_from_log(log, subject="p", purpose=purpose, channel="email")
    return decide(facts, purpose=purpose, channel="email", at=AT).reason


def test_a_complaint_refuses_direct_marketing_with_its_own_reason_and_is_no_withdrawal() -> None:
    assert _reason([_grant(), _complaint()]) is Reason.COMPLAINED
    # Not direct marketing: the invoices still go.
    assert _reason([_grant("invoices"), _complaint()], "invoices") is None


def test_a_not_spam_report_changes_nothing() -> None:
    assert _reason([_grant(), _complaint("not-spam")]) is None


def test_only_a_newer_consent_outweighs_a_complaint() -> None:
    assert _reason([_complaint(), _grant()]) is None
    assert _reason([_grant(), _complaint()]) is Reason.COMPLAINED


def test_an_undeliverable_address_refuses_every_purpose_by_email() -> None:
    assert _reason([_grant(), _bounce()]) is Reason.UNDELIVERABLE
    assert _reason([_grant("invoices"), _bounce()], "invoices") is Reason.UNDELIVERABLE


def test_a_later_confirmed_consent_lifts_an_undeliverable_address_but_a_bare_grant_does_not() -> (
    None
):
    assert _reason([_bounce(), _grant()]) is Reason.UNDELIVERABLE
    assert _reason([_bounce(), _grant(opt_in="confirmed")]) is None
    confirm = _event("ConsentConfirmed", purpose="newsletter", channel="email")
    assert _reason([_grant(opt_in="pending"), _bounce(), confirm]) is None


def test_consent_decisions_come_before_deliverability() -> None:
    unsubscribe = _event("UnsubscribeClicked", method="link_page")
    assert _reason([_grant(), _bounce(), _complaint(), unsubscribe]) is Reason.UNSUBSCRIBED
    assert _reason([_grant(), _bounce(), _complaint()]) is Reason.COMPLAINED
