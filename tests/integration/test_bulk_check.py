"""The bulk check on PostgreSQL: any subject comes back as sent, in order; it fails closed."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import GeneratorType
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

from ledger.domain.rules import CatalogFacts, Decision, PolicyFacts, Reason
from projections.checker import CheckerConfig, SendChecker, StaleProjectionError
from projections.facts import ProjectionReader
from projections.store.postgres import migrate
from relay.positions import PostgresPositions

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Characters COPY escapes, the text form of NULL, an empty string and a non-ASCII one.
ODD = ["tab\there", "new\nline", "back\\slash", "\\N", "", "crème", "cr\r"]


@pytest.fixture
def schema(pg_dsn: str) -> Iterator[str]:
    name = f"bulk_{uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
        migrate(conn, schema=name)
        PostgresPositions(dsn=pg_dsn, schema=name).close()
        s = sql.Identifier(name)
        conn.execute(
            sql.SQL(
                "insert into {}.purposes values ('newsletter', 'consent', null, true, 1)"
            ).format(s)
        )
        conn.execute(
            sql.SQL(
                "insert into {}.policy_versions values ('v1', 'x', %s, '{{}}', false, 2)"
            ).format(s),
            (T0,),
        )
        conn.cursor().executemany(
            sql.SQL(
                "insert into {}.consent_state (subject, purpose, channel, status, policy_version, "
                "since, last_position) values (%s, 'newsletter', 'email', 'granted', 'v1', %s, 3)"
            ).format(s),
            [(subject, T0) for subject in ODD[::2]],
        )
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


def _checker(conn: psycopg.Connection[Any], schema: str, *, head: int = 0) -> SendChecker:
    return SendChecker(
        conn,
        head=lambda: head,
        config=CheckerConfig(schema=schema, max_lag=0, wait_s=0.05, poll_s=0.01),
        clock=lambda: T0 + timedelta(days=1),
    )


def test_every_subject_comes_back_as_sent_and_in_order(pg_dsn: str, schema: str) -> None:
    asked = [*ODD, *reversed(ODD), "someone else"]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        checker = _checker(conn, schema)
        answered = list(checker.bulk_check(asked, "newsletter"))
        assert [s for s, _ in answered] == asked
        assert [d for _, d in answered] == [checker.check(s, "newsletter").decision for s in asked]
        assert [d.allowed for _, d in answered[: len(ODD)]] == [True, False] * 3 + [True]
        assert list(checker.bulk_check([], "newsletter")) == []


def test_a_stale_projection_refuses_before_reading_the_list(pg_dsn: str, schema: str) -> None:
    read: list[str] = []

    def subjects() -> Iterator[str]:
        for subject in ODD:
            read.append(subject)
            yield subject

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        answers = _checker(conn, schema, head=5).bulk_check(subjects(), "newsletter")
        with pytest.raises(StaleProjectionError) as stale:
            next(answers)
    assert (stale.value.covered, stale.value.required) == (0, 5)
    assert read == []


def test_an_unknown_purpose_denies_everyone_without_a_query_per_person(
    pg_dsn: str, schema: str
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        answered = list(_checker(conn, schema).bulk_check(ODD, "partners"))
    assert answered == [(s, Decision(allowed=False, reason=Reason.UNKNOWN_PURPOSE)) for s in ODD]


def test_an_abandoned_bulk_check_leaves_the_connection_clean(pg_dsn: str, schema: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        checker = _checker(conn, schema)
        answers = checker.bulk_check(ODD, "newsletter")
        next(answers)
        assert isinstance(answers, GeneratorType)
        answers.close()
        assert conn.info.transaction_status is TransactionStatus.IDLE
        temporary = conn.execute(
            "select count(*) from pg_class where relnamespace = pg_my_temp_schema()"
        ).fetchone()
        assert temporary == (0,)
        assert len(list(checker.bulk_check(ODD, "newsletter"))) == len(ODD)


def test_two_bulk_checks_in_the_callers_transaction(pg_dsn: str, schema: str) -> None:
    with psycopg.connect(pg_dsn) as conn, conn.transaction():
        checker = _checker(conn, schema)
        first = list(checker.bulk_check(ODD, "newsletter"))
        assert list(checker.bulk_check(ODD, "newsletter")) == first


def test_the_catalog_is_read_without_a_person(pg_dsn: str, schema: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        reader = ProjectionReader(conn, schema=schema)
        catalog = reader.catalog("newsletter")
        assert catalog.purpose is not None
        assert catalog.purpose.legal_basis == "consent"
        assert catalog.policies == (PolicyFacts("v1", T0, (), requires_reconsent=False),)
        assert reader.catalog("partners") == CatalogFacts(purpose=None)
