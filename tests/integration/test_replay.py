"""Rebuilding the projection from the store or the topic and swapping it in under consumers."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from kafka import KafkaProducer
from psycopg import sql

from consumers.runner import ConsumerRunner
from consumers.topic_rebuild import rebuild_from_kafka, skip_dead_letters
from ledger.domain.commands import GrantConsent, RecordObjection, Unsubscribe, WithdrawConsent
from ledger.write.service import Ledger
from projections.rebuild import RebuildTarget, projection_tables, rebuild_from_store, swap
from projections.store.postgres import migrate
from relay.positions import PostgresPositions
from tests import topics
from tests.helpers import projection_rows, replayed_rows, sqlite_ledger
from tests.topics import TOPIC_KEYS, consumer_config, publish_all, sqlite_relay, tracked_relay

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 1, tzinfo=UTC)
PEOPLE = 40


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = sqlite_ledger(tmp_path / "ledger.sqlite3", purposes=("newsletter", "offers"))
    yield ledger
    ledger.close()


def _some_history(ledger: Ledger, first: int, last: int) -> None:
    for n in range(first, last):
        subject = f"p{n}"
        ledger.execute(
            GrantConsent(subject=subject, purpose="newsletter", policy_version="v1", occurred_at=T0)
        )
        later = T0 + timedelta(minutes=n)
        if n % 3 == 0:
            ledger.execute(Unsubscribe(subject=subject, occurred_at=later))
        elif n % 3 == 1:
            ledger.execute(
                WithdrawConsent(subject=subject, purpose="newsletter", occurred_at=later)
            )
        if n % 7 == 0:
            ledger.execute(
                RecordObjection(subject=subject, all_direct_marketing=True, occurred_at=later)
            )


def _consumer(bootstrap: str, dsn: str, schema: str, topic: str) -> ConsumerRunner:
    return ConsumerRunner(consumer_config(bootstrap, dsn, schema, topic, max_records=25))


def _drain(runner: ConsumerRunner) -> None:
    idle = 0
    while idle < 3:
        idle = 0 if runner.run_once() else idle + 1


def _damage(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("delete from {}").format(sql.Identifier(schema, "suppression")))
        conn.execute(
            sql.SQL("update {} set status = 'granted', reason = null").format(
                sql.Identifier(schema, "consent_state")
            )
        )


def _applied_then_damaged(live: ConsumerRunner, dsn: str, schema: str, topic: str) -> RebuildTarget:
    """``live`` applies the whole topic, its projection is then damaged: the rebuild to make."""
    _drain(live)
    _damage(dsn, schema)
    return RebuildTarget(dsn=dsn, schema=schema, group=f"g-{topic}", topic=topic)


def test_rebuild_from_the_store_swaps_in_under_a_running_consumer(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}.v1"
    relay = sqlite_relay(
        tmp_path / "ledger.sqlite3",
        bootstrap=kafka_bootstrap,
        topic=topic,
        positions=PostgresPositions(dsn=pg_dsn, schema=schema),
    )
    _some_history(ledger, 0, PEOPLE)
    publish_all(relay)
    live = _consumer(kafka_bootstrap, pg_dsn, schema, topic)
    try:
        target = _applied_then_damaged(live, pg_dsn, schema, topic)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            result = rebuild_from_store(conn, target, ledger.store, up_to=ledger.store.head())
            assert result.events == ledger.store.head()
            # While the rebuilt tables wait, the ledger and the live consumer move on.
            _some_history(ledger, PEOPLE, PEOPLE + 20)
            publish_all(relay)
            _drain(live)
            tables = swap(conn, target)
            assert "consent_state" in tables
            assert "consumer_offsets" in tables
            assert projection_tables(conn, target.staging) == ()
        # The consumer finds the offsets moved, seeks back to them and re-applies the rest.
        _some_history(ledger, PEOPLE + 20, PEOPLE + 25)
        publish_all(relay)
        _drain(live)
    finally:
        live.close()
        relay.close()

    rebuilt = projection_rows(pg_dsn, schema, tables)
    assert rebuilt == replayed_rows(pg_dsn, schema, ledger.store)
    assert rebuilt["suppression"], "the damage was repaired, not preserved"


def test_rebuild_from_the_topic_sends_poison_to_the_dead_letters_once_and_swaps_in(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}.v1"
    relay = sqlite_relay(tmp_path / "ledger.sqlite3", bootstrap=kafka_bootstrap, topic=topic)
    _some_history(ledger, 0, PEOPLE)
    publish_all(relay)
    poison = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    poison.send(topic, key=b"p1", value=b"{not json").get(timeout=10)
    poison.close()
    live = _consumer(kafka_bootstrap, pg_dsn, schema, topic)
    dead_letters = f"{topic}.dlq"
    try:
        target = _applied_then_damaged(live, pg_dsn, schema, topic)
        assert len(topics.topic_records(kafka_bootstrap, dead_letters)) == 1
        # One the live group has not taken: the rebuild's to send, once.
        poison = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        poison.send(topic, key=b"p1", value=b"{forged too").get(timeout=10)
        poison.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            result = rebuild_from_kafka(
                conn,
                target,
                bootstrap=kafka_bootstrap,
                keys=TOPIC_KEYS,
                dead_letter_topic=f"{topic}.dlq",
            )
            tables = swap(conn, target)
        assert result.events == ledger.store.head() + 2
        assert sum(result.offsets.values()) == ledger.store.head() + 2
        _some_history(ledger, PEOPLE, PEOPLE + 5)
        publish_all(relay)
        _drain(live)
    finally:
        live.close()
        relay.close()
    # Each poison record dead-lettered once: by the live group, then by the rebuild.
    assert len(topics.topic_records(kafka_bootstrap, dead_letters)) == 2

    assert projection_rows(pg_dsn, schema, tables) == replayed_rows(pg_dsn, schema, ledger.store)


def test_a_swap_that_cannot_complete_leaves_the_live_tables_as_they_were(
    ledger: Ledger, pg_dsn: str, schema: str
) -> None:
    _some_history(ledger, 0, 10)
    target = RebuildTarget(dsn=pg_dsn, schema=schema, group="g", topic="t")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with conn.transaction():
            migrate(conn, schema=schema)
        conn.execute(
            sql.SQL("create view {} as select subject from {}").format(
                sql.Identifier(schema, "granted_view"), sql.Identifier(schema, "consent_state")
            )
        )
        # The ledger's relay keeps its watermarks in the same schema.
        conn.execute(
            sql.SQL("create table {} (position bigint, partition int, next_offset bigint)").format(
                sql.Identifier(schema, "relay_watermarks")
            )
        )
        rebuild_from_store(conn, target, ledger.store, up_to=ledger.store.head())
        tables = projection_tables(conn, target.staging)
        before = projection_rows(pg_dsn, schema, tables)

        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            swap(conn, target)

        assert projection_rows(pg_dsn, schema, tables) == before
        assert "consent_state" in projection_tables(conn, target.staging)


def test_rebuild_from_the_store_sends_no_dead_letter_twice(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    relay = tracked_relay(tmp_path, kafka_bootstrap, pg_dsn, schema, 2)
    topic = relay.config.events_topic
    _some_history(ledger, 0, 10)
    publish_all(relay)
    poison = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for partition in (0, 1):  # after the relay's last batch, where its watermarks stop
        poison.send(topic, key=b"p1", value=b"{forged", partition=partition).get(timeout=10)
    poison.close()
    live = _consumer(kafka_bootstrap, pg_dsn, schema, topic)
    try:
        target = _applied_then_damaged(live, pg_dsn, schema, topic)
        assert len(topics.topic_records(kafka_bootstrap, f"{topic}.dlq")) == 2
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            head = ledger.store.head()
            rebuild_from_store(
                conn,
                target,
                ledger.store,
                up_to=head,
                past_dead_letters=skip_dead_letters(
                    bootstrap=kafka_bootstrap, topic=topic, keys=TOPIC_KEYS, up_to=head
                ),
            )
            tables = swap(conn, target)
        _some_history(ledger, 10, 15)
        publish_all(relay)
        _drain(live)
    finally:
        live.close()
        relay.close()
    assert len(topics.topic_records(kafka_bootstrap, f"{topic}.dlq")) == 2
    assert projection_rows(pg_dsn, schema, tables) == replayed_rows(pg_dsn, schema, ledger.store)
