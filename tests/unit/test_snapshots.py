"""The writer's cache snapshots give back exactly the aggregate they were made from."""

from datetime import UTC, datetime
from uuid import uuid4

from ledger.domain.aggregates import Catalog, Person, RightsRequestRecord
from ledger.domain.rules import (
    ConsentFacts,
    ConsentStatus,
    SuppressionFacts,
    SuppressionReason,
)
from ledger.write.snapshots import dump_aggregate, load_aggregate
from schemas import Channel, Right, RightsOutcome


def test_a_person_with_every_kind_of_fact_round_trips() -> None:
    person = Person.new("p-1")
    person.version = 7
    person.commands["c-1"] = ((uuid4(), 1), (uuid4(), 2))
    state = person.state
    state.consents[("newsletter", Channel.EMAIL)] = ConsentFacts(
        ConsentStatus.PENDING, "v1", datetime(2026, 1, 1, tzinfo=UTC), 3
    )
    for scope, reason, position in (
        ("*", SuppressionReason.UNSUBSCRIBED, 4),
        ("offers", SuppressionReason.UNSUBSCRIBED, 5),
        ("list:weekly", SuppressionReason.UNSUBSCRIBED, 6),
        ("partners", SuppressionReason.OBJECTION, 6),
        ("offers", SuppressionReason.OBJECTION, 6),
        ("#erased", SuppressionReason.ERASED, 7),
    ):
        state.suppressions[scope, reason] = SuppressionFacts(scope, reason, position)
    state.restrictions.add("offers")
    person.accepted_policies["v1"] = "a" * 64
    person.rights_requests[uuid4()] = RightsRequestRecord(
        Right.ACCESS,
        datetime(2026, 2, 1, tzinfo=UTC),
        extended=True,
        outcome=RightsOutcome.FULFILLED,
    )
    state.erasures = 1
    state.last_interaction = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

    snapshot = dump_aggregate(person)

    assert isinstance(snapshot, bytes)
    assert load_aggregate(snapshot) == person


def test_the_catalog_round_trips() -> None:
    catalog = Catalog.new()
    catalog.version = 3
    assert load_aggregate(dump_aggregate(catalog)) == catalog
