"""For random histories, the answer at now is the projections' answer, with its evidence."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.rules import Reason
from ledger.rights.point_in_time import decision_at
from ledger.rights.receipts import person_log
from tests.property import histories
from tests.property.histories import (
    CHANNELS,
    POLICY_SHA,
    PURPOSES,
    T0,
    World,
    record,
    steps,
)

pytestmark = pytest.mark.integration

# What a deciding event may be, for each answer: the event that shows why.
DECIDED_BY: dict[Reason | None, set[str]] = {
    None: {"ConsentGranted", "ConsentConfirmed", "PurposeRegistered"},
    Reason.ERASED: {"SubjectErased"},
    Reason.OBJECTED: {"ObjectionRecorded"},
    Reason.RESTRICTED: {"ProcessingRestricted"},
    Reason.UNSUBSCRIBED: {"UnsubscribeClicked"},
    Reason.WITHDRAWN: {"ConsentWithdrawn", "UnsubscribeClicked"},
    Reason.DOUBLE_OPT_IN_PENDING: {"ConsentGranted"},
    Reason.EXPIRED: {"ConsentGranted", "ConsentConfirmed"},
    Reason.RECONSENT_REQUIRED: {"PolicyVersionPublished"},
    Reason.COMPLAINED: {"ComplaintReceived"},
    Reason.UNDELIVERABLE: {"AddressUndeliverable"},
}


world = histories.world_fixture("pit", reconsent_from=T0 + timedelta(days=200))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(steps(people=1, mailing_lists=False), min_size=1, max_size=12), st.integers(1, 60))
def test_the_answer_at_now_is_the_projections_answer(
    world: World, history: list[tuple[Any, ...]], spacing: int
) -> None:
    ledger = world[0]
    subject = f"s-{uuid4().hex[:12]}"
    record(world, [subject], history, every=timedelta(days=spacing))
    now = datetime.now(UTC)
    log = person_log(ledger, subject)
    for purpose_ in (*PURPOSES, "unknown"):
        for channel_ in CHANNELS:
            answer = decision_at(log, subject=subject, purpose=purpose_, channel=channel_, at=now)
            in_postgres, in_sqlite = histories.projected(world, subject, purpose_, channel_, now)
            assert answer.decision == in_postgres == in_sqlite, (purpose_, channel_)
            reason = answer.decision.reason
            if reason in (Reason.UNKNOWN_PURPOSE, Reason.NEVER_GRANTED):
                assert answer.deciding is None
                continue
            assert answer.deciding is not None, (purpose_, channel_, reason)
            assert answer.deciding[0].event_type in DECIDED_BY[reason], (purpose_, channel_)
            if answer.policy is not None:
                assert answer.policy.text_sha256 == POLICY_SHA[answer.policy.version]
                assert answer.grant is not None
                assert answer.grant[0].policy_version == answer.policy.version  # type: ignore[attr-defined]
