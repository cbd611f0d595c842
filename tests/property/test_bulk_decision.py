"""For random projection states, the set-based bulk check answers as `decide` does, row by row,
and a single check on the event loop as one on a worker thread."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from ledger.domain.rules import decide
from projections.checker import CheckerConfig, SendChecker
from projections.facts import FACTS_TABLES, ProjectionReader
from projections.freshness import Freshness
from projections.loop_checker import LoopSendChecks
from projections.metrics import CHECKS_PART
from projections.store.postgres import migrate
from relay.positions import PostgresPositions

pytestmark = pytest.mark.integration
T0 = datetime(2025, 1, 1, tzinfo=UTC)
SUBJECTS = ("ann", "bob", "cat", "dan", "eve")
PURPOSES = ("newsletter", "offers", "service")
CHANNELS = ("email", "sms")
VERSIONS = ("v1", "v2", "v3")


@pytest.fixture(scope="module")
def world(pg_dsn: str) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    schema = f"bulk_{uuid4().hex[:10]}"
    conn = psycopg.connect(pg_dsn, autocommit=True)
    conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    migrate(conn, schema=schema)
    PostgresPositions(dsn=pg_dsn, schema=schema).close()
    yield conn, schema
    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    conn.close()


# Days and positions from small ranges, so that equal values (the boundaries of the age limit
# and of "newer than") come up often; every person has a few rows of each kind, so that the
# rules meet in every order.
day = st.integers(0, 4).map(lambda n: T0 + timedelta(days=n))
position = st.integers(1, 4)


def rarely(rows: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``rows`` about one time in six, else None (no row): most people reach the later rules."""
    return st.one_of(*[st.none()] * 5, rows)


purpose_row = st.tuples(
    st.sampled_from(["consent", "legitimate_interest", "contract"]),
    st.none() | st.integers(0, 3),
    st.booleans(),
)
policy_row = st.tuples(day, st.lists(st.sampled_from(PURPOSES), unique=True), st.booleans())
consent_row = st.tuples(
    st.sampled_from(["granted", "withdrawn", "pending"]),
    st.none() | st.sampled_from((*VERSIONS, "v9")),
    day,
    position,
)
SCOPES = ("*", *PURPOSES, "list:weekly")
suppression_row = st.tuples(
    st.sampled_from(["unsubscribed", "objection", "erased"]), position, st.booleans()
)
state = st.fixed_dictionaries(
    {
        # An unregistered purpose is asked about below: every one of these is registered.
        "purposes": st.fixed_dictionaries(dict.fromkeys(PURPOSES, purpose_row)),
        "policies": st.dictionaries(st.sampled_from(VERSIONS), policy_row),
        "consents": st.fixed_dictionaries(
            {
                (s, p, c): st.none() | consent_row
                for s in SUBJECTS
                for p in PURPOSES
                for c in CHANNELS
            }
        ),
        "suppressions": st.fixed_dictionaries(
            {(s, scope): rarely(suppression_row) for s in SUBJECTS for scope in SCOPES}
        ),
        "restrictions": st.fixed_dictionaries(
            {(s, scope): rarely(st.booleans()) for s in SUBJECTS for scope in SCOPES[:-1]}
        ),
        "interactions": st.fixed_dictionaries({s: st.none() | day for s in SUBJECTS}),
    }
)


def _load(conn: psycopg.Connection[Any], schema: str, projection: dict[str, Any]) -> None:
    def t(name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))

    with conn.transaction():
        conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(map(t, FACTS_TABLES))))
        conn.cursor().executemany(
            sql.SQL("insert into {} values (%s, %s, %s, %s, 1)").format(t("purposes")),
            [(purpose, *row) for purpose, row in projection["purposes"].items()],
        )
        conn.cursor().executemany(
            sql.SQL("insert into {} values (%s, 'x', %s, %s, %s, 1)").format(t("policy_versions")),
            [(version, *row) for version, row in projection["policies"].items()],
        )
        conn.cursor().executemany(
            sql.SQL(
                "insert into {} (subject, purpose, channel, status, policy_version, since, "
                "last_position) values (%s, %s, %s, %s, %s, %s, %s)"
            ).format(t("consent_state")),
            [(*key, *row) for key, row in projection["consents"].items() if row is not None],
        )
        conn.cursor().executemany(
            sql.SQL("insert into {} values (%s, %s, %s, %s, %s, %s)").format(t("suppression")),
            [
                (subject, scope, reason, T0, last, active)
                for (subject, scope), row in projection["suppressions"].items()
                if row is not None
                for reason, last, active in [row]
            ],
        )
        conn.cursor().executemany(
            sql.SQL("insert into {} values (%s, %s, %s, 1, %s)").format(t("restriction")),
            [
                (subject, scope, T0, active)
                for (subject, scope), active in projection["restrictions"].items()
                if active is not None
            ],
        )
        conn.cursor().executemany(
            sql.SQL("insert into {} values (%s, %s, 1)").format(t("interaction")),
            [
                (s, last_at)
                for s, last_at in projection["interactions"].items()
                if last_at is not None
            ],
        )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(state, day)
def test_the_bulk_answer_is_decide_for_every_row(
    world: tuple[psycopg.Connection[Any], str], projection: dict[str, Any], at: datetime
) -> None:
    conn, schema = world
    _load(conn, schema, projection)
    checker = SendChecker(
        conn, head=lambda: 0, config=CheckerConfig(schema=schema, max_lag=0), clock=lambda: at
    )
    reader = ProjectionReader(conn, schema=schema)
    # Unknown people and repeats too, in an order of their own.
    asked = ["eve", "nobody", "cat", "ann", "dan", "bob", "cat"]
    for purpose in (*PURPOSES, "unknown"):
        for channel in CHANNELS:
            expected = [
                decide(reader.facts(s, purpose, channel), purpose=purpose, channel=channel, at=at)
                for s in asked
            ]
            answered = list(checker.bulk_check(asked, purpose, channel))
            assert [s for s, _ in answered] == asked
            assert [d for _, d in answered] == expected, (purpose, channel)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(state, day)
def test_a_check_on_the_event_loop_answers_as_on_a_thread(
    world: tuple[psycopg.Connection[Any], str],
    pg_dsn: str,
    projection: dict[str, Any],
    at: datetime,
) -> None:
    conn, schema = world
    _load(conn, schema, projection)
    config = CheckerConfig(schema=schema, max_lag=0)
    freshness = Freshness(ttl_s=60.0)
    on_thread = SendChecker(
        conn, head=lambda: 0, config=config, clock=lambda: at, freshness=freshness
    )
    on_loop = LoopSendChecks(
        pg_dsn, head=lambda: 0, config=config, freshness=freshness, size=2, clock=lambda: at
    )
    asked = [
        (s, p, c) for s in (*SUBJECTS, "nobody") for p in (*PURPOSES, "unknown") for c in CHANNELS
    ]

    async def on_the_loop() -> list[Any]:
        return [await on_loop.check(s, p, c) for s, p, c in asked]

    timed_before = _single_checks_timed()
    try:
        answered = asyncio.run(on_the_loop())
    finally:
        on_loop.close()
    assert None not in answered  # every one answered on the loop, none handed to a thread
    assert _single_checks_timed() - timed_before == len(asked)  # and each one counted
    assert answered == [on_thread.check(s, p, c) for s, p, c in asked]


def test_a_check_the_projection_does_not_cover_goes_to_a_thread(
    world: tuple[psycopg.Connection[Any], str], pg_dsn: str
) -> None:
    _, schema = world
    config = CheckerConfig(schema=schema, max_lag=0)
    on_loop = LoopSendChecks(
        pg_dsn, head=lambda: 0, config=config, freshness=Freshness(ttl_s=60.0), size=1
    )

    async def both() -> tuple[Any, Any]:
        covered = await on_loop.check("ann", "newsletter", min_position=0)
        ahead = await on_loop.check("ann", "newsletter", min_position=1)
        return covered, ahead

    try:
        covered, ahead = asyncio.run(both())
    finally:
        on_loop.close()
    assert covered is not None
    assert covered.covered == 0
    assert ahead is None


def test_a_broken_loop_connection_hands_the_check_over_and_is_replaced(
    world: tuple[psycopg.Connection[Any], str], pg_dsn: str
) -> None:
    conn, schema = world
    named = pg_dsn + ("&" if "?" in pg_dsn else "?") + "application_name=loop-check-test"
    on_loop = LoopSendChecks(
        named,
        head=lambda: 0,
        config=CheckerConfig(schema=schema, max_lag=0),
        freshness=Freshness(ttl_s=60.0),
        size=1,
    )

    async def around_a_lost_connection() -> list[Any]:
        first = await on_loop.check("ann", "newsletter")
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where application_name = 'loop-check-test'"
        )
        return [
            first,
            await on_loop.check("ann", "newsletter"),
            await on_loop.check("ann", "newsletter"),
        ]

    try:
        first, lost, again = asyncio.run(around_a_lost_connection())
    finally:
        on_loop.close()
    assert first is not None
    assert lost is None
    assert again == first


def _single_checks_timed() -> float:
    value = CHECKS_PART.get_sample_value(
        "consent_ledger_check_duration_seconds_count", {"kind": "single"}
    )
    return value or 0.0
