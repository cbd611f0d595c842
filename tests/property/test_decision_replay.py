"""For random histories, both projections (PostgreSQL and embedded SQLite) answer as a replay."""

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.rules import decide, facts_from_log
from ledger.write.service import Ledger
from schemas import EventBase, parse_event
from tests.property import histories
from tests.property.histories import CHANNELS, PURPOSES, T0, World, record, steps

pytestmark = pytest.mark.integration


world = histories.world_fixture("decide", reconsent_from=T0 + timedelta(days=400))


def _log(ledger: Ledger) -> list[tuple[EventBase, int]]:
    return [
        (parse_event(n.state), n.id) for n in ledger.store.notifications(after=0, limit=100_000)
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(steps(people=2, mailing_lists=True), min_size=1, max_size=14), st.integers(0, 900))
def test_projection_and_replay_give_the_same_answer(
    world: World,
    history: list[tuple[Any, ...]],
    day: int,
) -> None:
    ledger = world[0]
    subjects = [f"s-{uuid4().hex[:12]}" for _ in range(2)]
    record(world, subjects, history, every=timedelta(days=40))
    log = _log(ledger)
    at = T0 + timedelta(days=day)
    for subject in subjects:
        for purpose_ in (*PURPOSES, "unknown"):
            for channel_ in CHANNELS:
                in_postgres, in_sqlite = histories.projected(world, subject, purpose_, channel_, at)
                replayed = decide(
                    facts_from_log(log, subject=subject, purpose=purpose_, channel=channel_),
                    purpose=purpose_,
                    channel=channel_,
                    at=at,
                )
                assert in_postgres == replayed, (subject, purpose_, channel_)
                assert in_sqlite == replayed, ("sqlite", subject, purpose_, channel_)
