"""Applying a batch set-based gives the tables that applying its writes one by one gives."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import CATALOG_SUBJECT, EventBase, parse_event
from tests.helpers import envelope

pytestmark = pytest.mark.integration
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TABLES = {
    "consent_state": "subject, purpose, channel",
    "suppression": "subject, scope",
    "policy_acceptance": "subject, version",
    "rights_requests": "request_id",
    "purposes": "purpose",
    "policy_versions": "version",
    "restriction": "subject, scope",
    "interaction": "subject",
}
REQUESTS = (UUID(int=1), UUID(int=2))

subjects = st.sampled_from(("ann", "bob"))
purposes = st.sampled_from(("newsletter", "offers"))
channels = st.sampled_from(("email", "sms"))
days = st.integers(0, 30)


def _envelope(event_type: str, subject: str, day: int, **fields: Any) -> dict[str, Any]:
    return envelope(event_type, subject, T0 + timedelta(days=day), **fields)


# Every kind of event the projection writes, on few people, purposes and requests, so that
# writes to the same rows are frequent.
events = st.one_of(
    st.builds(
        lambda s, p, c, pending, d: _envelope(
            "ConsentGranted",
            s,
            d,
            schema_version=2,
            purpose=p,
            channel=c,
            policy_version="v1",
            double_opt_in="pending" if pending else "not_applicable",
        ),
        subjects,
        purposes,
        channels,
        st.booleans(),
        days,
    ),
    st.builds(
        lambda s, p, c, d: _envelope("ConsentConfirmed", s, d, purpose=p, channel=c),
        subjects,
        purposes,
        channels,
        days,
    ),
    st.builds(
        lambda s, p, c, d: _envelope(
            "ConsentWithdrawn", s, d, purpose=p, channel=c, reason="user_request"
        ),
        subjects,
        purposes,
        channels,
        days,
    ),
    st.builds(
        lambda s, p, listed, d: _envelope(
            "UnsubscribeClicked",
            s,
            d,
            purpose=p,
            list_id="weekly" if listed else None,
            method="link_page",
        ),
        subjects,
        st.none() | purposes,
        st.booleans(),
        days,
    ),
    st.builds(
        lambda s, p, d: _envelope(
            "ObjectionRecorded", s, d, purpose=p, all_direct_marketing=p is None
        ),
        subjects,
        st.none() | purposes,
        days,
    ),
    st.builds(lambda s, d: _envelope("SubjectErased", s, d), subjects, days),
    st.builds(
        lambda s, v, d: _envelope("PolicyVersionAccepted", s, d, version=v, text_sha256="a" * 64),
        subjects,
        st.sampled_from(("v1", "v2")),
        days,
    ),
    st.builds(
        lambda s, r, d: _envelope(
            "RightsRequestOpened",
            s,
            d,
            request_id=str(r),
            right="access",
            received_at=(T0 + timedelta(days=d)).isoformat(),
            due_at=(T0 + timedelta(days=d + 30)).isoformat(),
        ),
        subjects,
        st.sampled_from(REQUESTS),
        days,
    ),
    st.builds(
        lambda s, r, d: _envelope(
            "RightsRequestExtended",
            s,
            d,
            request_id=str(r),
            due_at=(T0 + timedelta(days=d + 60)).isoformat(),
            reason="complex",
        ),
        subjects,
        st.sampled_from(REQUESTS),
        days,
    ),
    st.builds(
        lambda s, r, d: _envelope(
            "RightsRequestClosed", s, d, request_id=str(r), outcome="fulfilled"
        ),
        subjects,
        st.sampled_from(REQUESTS),
        days,
    ),
    st.builds(
        lambda p, marketing, d: _envelope(
            "PurposeRegistered",
            CATALOG_SUBJECT,
            d,
            purpose=p,
            legal_basis="consent",
            description="d",
            direct_marketing=marketing,
        ),
        purposes,
        st.booleans(),
        days,
    ),
    st.builds(
        lambda v, ps, d: _envelope(
            "PolicyVersionPublished",
            CATALOG_SUBJECT,
            d,
            version=v,
            text_sha256="b" * 64,
            effective_at=T0.isoformat(),
            purposes=ps,
            requires_reconsent=False,
        ),
        st.sampled_from(("v1", "v2")),
        st.lists(purposes, max_size=2),
        days,
    ),
    st.builds(
        lambda s, ps, d: _envelope("ProcessingRestricted", s, d, purposes=ps),
        subjects,
        st.lists(purposes, max_size=2),
        days,
    ),
    st.builds(
        lambda s, ps, d: _envelope("RestrictionLifted", s, d, purposes=ps),
        subjects,
        st.lists(purposes, max_size=2),
        days,
    ),
    st.builds(lambda s, d: _envelope("InteractionRecorded", s, d, kind="click"), subjects, days),
).map(parse_event)

# Any order and any repetition of positions: a replayed range, partitions interleaved, or
# worse; the batched path owes the one-by-one result whatever the list.
logs = st.lists(st.tuples(events, st.integers(1, 40)), max_size=40)


@pytest.fixture(scope="module")
def schemas(pg_dsn: str) -> Iterator[tuple[psycopg.Connection[Any], str, str]]:
    batched, one_by_one = (f"batch_{uuid4().hex[:10]}" for _ in range(2))
    conn = psycopg.connect(pg_dsn)
    with conn.transaction():
        for schema in (batched, one_by_one):
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
            migrate(conn, schema=schema)
    yield conn, batched, one_by_one
    with conn.transaction():
        for schema in (batched, one_by_one):
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    conn.close()


def _tables(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: conn.execute(
            sql.SQL("select * from {} order by {}").format(
                sql.Identifier(schema, table), sql.SQL(order)
            )
        ).fetchall()
        for table, order in TABLES.items()
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(before=logs, batch=logs, max_rounds=st.sampled_from((1, 2, 8)))
def test_a_batch_applied_set_based_equals_its_writes_one_by_one(
    schemas: tuple[psycopg.Connection[Any], str, str],
    before: list[tuple[EventBase, int]],
    batch: list[tuple[EventBase, int]],
    max_rounds: int,
) -> None:
    conn, batched, one_by_one = schemas
    # No round at all: every write runs alone on its bound row, in list order.
    reference = PostgresProjectionStore(conn, schema=one_by_one, max_rounds=0)
    store = PostgresProjectionStore(conn, schema=batched, max_rounds=max_rounds)
    with conn.transaction():
        for schema in (batched, one_by_one):
            conn.execute(
                sql.SQL("truncate {}").format(
                    sql.SQL(", ").join(sql.Identifier(schema, t) for t in TABLES)
                )
            )
        # The same tables to start from, then the batch: set-based on one side.
        PostgresProjectionStore(conn, schema=batched, max_rounds=0).apply(before)
        reference.apply(before)
        store.apply(batch)
        reference.apply(batch)
        assert _tables(conn, batched) == _tables(conn, one_by_one)
        # Twice in one transaction, as a rebuild may: the staging tables start empty again.
        store.apply(batch)
        reference.apply(batch)
        assert _tables(conn, batched) == _tables(conn, one_by_one)
