"""The servers the test command starts are real: a PostgreSQL transaction and a Kafka group."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from psycopg import sql

from entrypoints.health import HealthCheck
from entrypoints.settings import Mode
from ledger.store.postgres import postgres_probe
from tests.conftest import free_port

pytestmark = pytest.mark.integration

MESSAGES = 10
FIRST_BATCH = 4
POLL_TIMEOUT_MS = 15_000


def _insert_in_one_transaction(
    conn: psycopg.Connection[tuple[int]], table: sql.Identifier, values: list[int]
) -> None:
    with conn.transaction():
        for value in values:
            conn.execute(sql.SQL("insert into {} values (%s)").format(table), [value])


def test_postgres_commits_and_rolls_back(pg_dsn: str, unique_name: str) -> None:
    table = sql.Identifier(unique_name)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create table {} (n int primary key)").format(table))
        try:
            with conn.transaction():
                conn.execute(sql.SQL("insert into {} values (1)").format(table))
            with pytest.raises(psycopg.errors.UniqueViolation):
                _insert_in_one_transaction(conn, table, [2, 1])
            rows = conn.execute(sql.SQL("select n from {} order by n").format(table)).fetchall()
        finally:
            conn.execute(sql.SQL("drop table {}").format(table))
    assert rows == [(1,)]


@pytest.fixture
def topic(kafka_bootstrap: str, unique_name: str) -> Iterator[str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(unique_name, num_partitions=1, replication_factor=1)])
    try:
        yield unique_name
    finally:
        admin.delete_topics([unique_name])
        admin.close()


def _consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=POLL_TIMEOUT_MS,
    )


def _take(consumer: KafkaConsumer, count: int) -> list[bytes]:
    values: list[bytes] = []
    for record in consumer:
        values.append(record.value)
        if len(values) == count:
            break
    return values


def test_kafka_group_resumes_after_committed_offset(kafka_bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    sent = [f"message-{n}".encode() for n in range(MESSAGES)]
    for value in sent:
        producer.send(topic, key=b"person", value=value)
    producer.flush()
    producer.close()
    group = f"{topic}-group"

    first = _consumer(kafka_bootstrap, topic, group)
    assert _take(first, FIRST_BATCH) == sent[:FIRST_BATCH]
    first.commit()
    committed = first.committed(TopicPartition(topic, 0))
    first.close()
    assert committed == FIRST_BATCH

    # A new member of the same group starts after the committed offset, not from the beginning.
    second = _consumer(kafka_bootstrap, topic, group)
    rest = _take(second, MESSAGES - FIRST_BATCH)
    second.close()
    assert rest == sent[FIRST_BATCH:]


def test_the_health_probe_keeps_one_connection_and_reports_a_dead_server(pg_dsn: str) -> None:
    name = f"health-test-{uuid.uuid4().hex[:8]}"
    probe = postgres_probe(pg_dsn, application_name=name)
    for _ in range(20):
        probe()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where application_name = %s",
            (name,),
        ).fetchone()
    assert row == (1,)

    dead_dsn = f"postgresql://127.0.0.1:{free_port()}/x"
    report = HealthCheck(mode=Mode.PRODUCTION, probe=postgres_probe(dead_dsn)).report()
    assert not report.ok
    assert report.details["store"] == "OperationalError"
