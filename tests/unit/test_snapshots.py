"""The writer's cache snapshots give back exactly the aggregate they were made from."""

from datetime import UTC, datetime
from uuid import uuid4

from ledger.domain.aggregates import (
    Catalog,
    ConsentRecord,
    ConsentStatus,
    Person,
    RightsRequestRecord,
)
from ledger.write.snapshots import dump_aggregate, load_aggregate
from schemas import Channel, Right, RightsOutcome


def test_a_person_with_every_kind_of_fact_round_trips() -> None:
    person = Person.new("p-1")
    person.version = 7
    person.commands["c-1"] = ((uuid4(), 1), (uuid4(), 2))
    person.consents[("newsletter", Channel.EMAIL)] = ConsentRecord(
        ConsentStatus.PENDING, "v1", datetime(2026, 1, 1, tzinfo=UTC)
    )
    person.unsubscribed |= {"*", "offers"}
    person.unsubscribed_lists.add("weekly")
    person.objections.add("*")
    person.restrictions.add("offers")
    person.accepted_policies["v1"] = "a" * 64
    person.rights_requests[uuid4()] = RightsRequestRecord(
        Right.ACCESS,
        datetime(2026, 2, 1, tzinfo=UTC),
        extended=True,
        outcome=RightsOutcome.FULFILLED,
    )
    person.erasures = 1
    person.last_interaction_at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

    snapshot = dump_aggregate(person)

    assert isinstance(snapshot, bytes)
    assert load_aggregate(snapshot) == person


def test_the_catalog_round_trips() -> None:
    catalog = Catalog.new()
    catalog.version = 3
    assert load_aggregate(dump_aggregate(catalog)) == catalog
