"""The rule book's reading of time: when a consent lapses, and when a newer policy asks to renew it.

Part of the rule book (`ledger.domain.rules`, which re-exports these); pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.domain.rules import ConsentFacts, PolicyFacts, PurposeFacts


def lapses_at(
    purpose: PurposeFacts, consent: ConsentFacts, last_interaction: datetime | None
) -> datetime | None:
    """When a consent lapses for inactivity: ``max_age_days`` after it or the last interaction."""
    if purpose.max_age_days is None:
        return None
    active = max(consent.since, last_interaction or consent.since)
    return active + timedelta(days=purpose.max_age_days)


def covers(policy_purposes: Sequence[str], purpose: str) -> bool:
    """A policy version covers the purposes it lists; one that lists none covers every one."""
    return not policy_purposes or purpose in policy_purposes


def renews(policy: PolicyFacts, *, given: PolicyFacts, purpose: str, at: datetime) -> bool:
    """``policy`` asks, as of ``at``, to renew a consent to ``purpose`` given under ``given``."""
    return (
        policy.requires_reconsent
        and given.effective_at < policy.effective_at <= at
        and covers(policy.purposes, purpose)
    )


def reconsent_required_since(
    policies: Sequence[PolicyFacts], *, consent: ConsentFacts, purpose: str, at: datetime
) -> datetime | None:
    """Since when, as of ``at``, a newer policy version asks to renew this consent (or None)."""
    given = next((p for p in policies if p.version == consent.policy_version), None)
    if given is None:
        return None
    return min(
        (p.effective_at for p in policies if renews(p, given=given, purpose=purpose, at=at)),
        default=None,
    )


def reconsent_versions(
    policies: Sequence[PolicyFacts], *, purpose: str, at: datetime
) -> frozenset[str]:
    """The policy versions a consent to ``purpose`` must be renewed from, as of ``at``."""
    return frozenset(
        given.version
        for given in policies
        if any(renews(p, given=given, purpose=purpose, at=at) for p in policies)
    )
