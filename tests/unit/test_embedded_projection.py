"""The embedded feed: the ledger's SQLite file projected without Kafka, and checks on it."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.domain.commands import GrantConsent, LiftRestriction, RestrictProcessing, Unsubscribe
from ledger.domain.rules import Decision, Reason
from ledger.write.service import Ledger
from projections.checker import CheckerConfig, StaleProjectionError
from projections.embedded import EmbeddedChecker, EmbeddedProjection
from tests.helpers import sqlite_ledger

T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Ledger, EmbeddedProjection]]:
    path = tmp_path / "ledger.sqlite3"
    ledger = sqlite_ledger(path)
    projection = EmbeddedProjection(path=path)
    yield ledger, projection
    projection.close()
    ledger.close()


def _checker(ledger: Ledger, projection: EmbeddedProjection) -> EmbeddedChecker:
    return EmbeddedChecker(
        projection,
        store=ledger.store,
        config=CheckerConfig(max_lag=0, wait_s=0.2),
        clock=lambda: T0 + timedelta(days=1),
    )


def test_the_feed_projects_the_store_and_checks_fail_closed(
    world: tuple[Ledger, EmbeddedProjection],
) -> None:
    ledger, projection = world
    ledger.execute(
        GrantConsent(subject="ann", purpose="newsletter", policy_version="v1", occurred_at=T0)
    )
    checker = _checker(ledger, projection)
    with pytest.raises(StaleProjectionError):
        checker.check("ann", "newsletter")
    assert projection.feed_once(ledger.store) == ledger.store.head()
    assert checker.check("ann", "newsletter").decision == Decision(allowed=True)

    click = ledger.execute(Unsubscribe(subject="ann", occurred_at=T0))
    with pytest.raises(StaleProjectionError):
        checker.check("ann", "newsletter", min_position=click.position)
    projection.feed_once(ledger.store)
    denied = checker.check("ann", "newsletter", min_position=click.position)
    assert denied.decision == Decision(allowed=False, reason=Reason.UNSUBSCRIBED)
    assert [d for _, d in checker.bulk_check(["ann", "bob"], "newsletter")] == [
        Decision(allowed=False, reason=Reason.UNSUBSCRIBED),
        Decision(allowed=False, reason=Reason.NEVER_GRANTED),
    ]


def test_a_lifted_restriction_is_lifted_and_feeding_again_changes_nothing(
    world: tuple[Ledger, EmbeddedProjection],
) -> None:
    ledger, projection = world
    ledger.execute(RestrictProcessing(subject="x", occurred_at=T0))
    ledger.execute(LiftRestriction(subject="x", occurred_at=T0))
    projection.feed_once(ledger.store)
    assert projection.facts("x", "newsletter", "email").restrictions == frozenset()
    assert projection.feed_once(ledger.store) == 0
    assert projection.position() == ledger.store.head()
