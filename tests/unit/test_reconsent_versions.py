"""Which policy versions a consent must be renewed from: what the single and bulk checks share."""

from datetime import UTC, datetime, timedelta

from ledger.domain.rules import PolicyFacts, reconsent_versions

NOW = datetime(2026, 6, 1, tzinfo=UTC)
V1 = PolicyFacts("v1", NOW - timedelta(days=300), (), requires_reconsent=False)
V2 = PolicyFacts("v2", NOW - timedelta(days=200), ("offers",), requires_reconsent=False)
V3 = PolicyFacts("v3", NOW - timedelta(days=100), ("newsletter",), requires_reconsent=True)


def test_versions_older_than_a_reconsent_version_in_effect_for_the_purpose() -> None:
    assert reconsent_versions((V1, V2, V3), purpose="newsletter", at=NOW) == {"v1", "v2"}


def test_a_reconsent_version_for_another_purpose_outdates_nothing() -> None:
    assert reconsent_versions((V1, V2, V3), purpose="offers", at=NOW) == frozenset()


def test_a_reconsent_version_counts_from_the_moment_it_takes_effect() -> None:
    assert reconsent_versions((V1, V3), purpose="newsletter", at=V3.effective_at) == {"v1"}
    before = V3.effective_at - timedelta(microseconds=1)
    assert reconsent_versions((V1, V3), purpose="newsletter", at=before) == frozenset()


def test_a_reconsent_version_without_purposes_covers_every_purpose() -> None:
    every = PolicyFacts("v4", NOW - timedelta(days=1), (), requires_reconsent=True)
    assert reconsent_versions((V1, V3, every), purpose="offers", at=NOW) == {"v1", "v3"}
