"""The send decision: each reason to deny, in its order, and what allows."""

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.rules import (
    ConsentFacts,
    ConsentStatus,
    Decision,
    Facts,
    PolicyFacts,
    PurposeFacts,
    Reason,
    SuppressionFacts,
    SuppressionReason,
    decide,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MARKETING = PurposeFacts(legal_basis="consent", max_age_days=3 * 365, direct_marketing=True)
GRANTED = ConsentFacts(
    status=ConsentStatus.GRANTED,
    policy_version="v1",
    since=NOW - timedelta(days=10),
    last_position=10,
)
V1 = PolicyFacts("v1", NOW - timedelta(days=100), ("newsletter",), requires_reconsent=False)


def _decide(facts: Facts, channel: str = "email") -> Decision:
    return decide(facts, purpose="newsletter", channel=channel, at=NOW)


def _facts(**overrides: object) -> Facts:
    values: dict[str, object] = {"purpose": MARKETING, "consent": GRANTED, "policies": (V1,)}
    values.update(overrides)
    return Facts(**values)  # type: ignore[arg-type]


def test_a_current_consent_allows() -> None:
    assert _decide(_facts()) == Decision(allowed=True)


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (Facts(purpose=None), Reason.UNKNOWN_PURPOSE),
        (
            _facts(suppressions=(SuppressionFacts("*", SuppressionReason.ERASED, 20),)),
            Reason.ERASED,
        ),
        (
            _facts(suppressions=(SuppressionFacts("*", SuppressionReason.OBJECTION, 5),)),
            Reason.OBJECTED,
        ),
        (
            _facts(suppressions=(SuppressionFacts("newsletter", SuppressionReason.OBJECTION, 5),)),
            Reason.OBJECTED,
        ),
        (_facts(restrictions=frozenset({"*"})), Reason.RESTRICTED),
        (
            _facts(
                suppressions=(SuppressionFacts("newsletter", SuppressionReason.UNSUBSCRIBED, 20),)
            ),
            Reason.UNSUBSCRIBED,
        ),
        (
            _facts(suppressions=(SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 20),)),
            Reason.UNSUBSCRIBED,
        ),
        (_facts(consent=None), Reason.NEVER_GRANTED),
        (_facts(consent=ConsentFacts(ConsentStatus.WITHDRAWN, "v1", NOW, 11)), Reason.WITHDRAWN),
        (
            _facts(consent=ConsentFacts(ConsentStatus.PENDING, "v1", NOW, 11)),
            Reason.DOUBLE_OPT_IN_PENDING,
        ),
        (
            _facts(
                consent=ConsentFacts(ConsentStatus.GRANTED, "v1", NOW - timedelta(days=4 * 365), 11)
            ),
            Reason.EXPIRED,
        ),
        (
            _facts(
                policies=(
                    V1,
                    PolicyFacts("v2", NOW - timedelta(days=1), (), requires_reconsent=True),
                )
            ),
            Reason.RECONSENT_REQUIRED,
        ),
    ],
)
def test_each_reason_denies(facts: Facts, reason: Reason) -> None:
    assert _decide(facts) == Decision(allowed=False, reason=reason)


def test_an_objection_to_all_direct_marketing_spares_other_purposes() -> None:
    service = PurposeFacts(legal_basis="contract", max_age_days=None, direct_marketing=False)
    facts = _facts(
        purpose=service, suppressions=(SuppressionFacts("*", SuppressionReason.OBJECTION, 5),)
    )
    assert _decide(facts).allowed


def test_a_newer_consent_outweighs_an_older_global_unsubscribe_and_erasure() -> None:
    older = (
        SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 5),
        SuppressionFacts("*", SuppressionReason.ERASED, 6),
    )
    assert _decide(_facts(suppressions=older)).allowed
    newer = (SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 15),)
    assert _decide(_facts(suppressions=newer)).reason is Reason.UNSUBSCRIBED


def test_a_recent_interaction_keeps_an_old_consent_alive() -> None:
    old = ConsentFacts(ConsentStatus.GRANTED, "v1", NOW - timedelta(days=4 * 365), 11)
    facts = _facts(consent=old, last_interaction=NOW - timedelta(days=30))
    assert _decide(facts).allowed


def test_a_reconsent_policy_not_yet_in_effect_does_not_deny() -> None:
    future = PolicyFacts("v2", NOW + timedelta(days=5), (), requires_reconsent=True)
    assert _decide(_facts(policies=(V1, future))).allowed


def test_email_unsubscribes_do_not_stop_other_channels() -> None:
    facts = _facts(suppressions=(SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 20),))
    assert _decide(facts, channel="sms").allowed
