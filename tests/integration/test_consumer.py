"""Command -> store -> relay -> Kafka -> consumer -> projection, on the real broker and server."""

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaConnectionError
from psycopg import sql

from consumers.metrics import CONSUMER
from consumers.runner import ConsumerRunner
from ledger.domain.commands import (
    AcceptPolicy,
    GrantConsent,
    LiftRestriction,
    OpenRightsRequest,
    RecordObjection,
    RestrictProcessing,
    Unsubscribe,
    WithdrawConsent,
)
from ledger.domain.rules import Decision, Reason, decide
from ledger.write.service import Ledger
from projections.checker import CheckerConfig, SendChecker, StaleProjectionError
from projections.facts import ProjectionReader
from projections.store.postgres import PostgresProjectionStore, migrate
from relay.positions import PostgresPositions, SQLitePositions
from schemas import parse_event
from tests import topics
from tests.helpers import projection_rows, sqlite_ledger
from tests.topics import TOPIC_KEYS, consumer_config, publish_all, sqlite_relay, tracked_relay

pytestmark = pytest.mark.integration
T0 = datetime(2026, 4, 1, tzinfo=UTC)
TABLES = (
    "consent_state",
    "suppression",
    "policy_acceptance",
    "rights_requests",
    "purposes",
    "policy_versions",
    "restriction",
    "interaction",
)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = sqlite_ledger(tmp_path / "ledger.sqlite3", purposes=("newsletter", "offers"))
    yield ledger
    ledger.close()


def _history(ledger: Ledger) -> None:
    later = T0 + timedelta(hours=1)
    for subject in ("ann", "bob", "cat"):
        for purpose in ("newsletter", "offers"):
            ledger.execute(
                GrantConsent(subject=subject, purpose=purpose, policy_version="v1", occurred_at=T0)
            )
    ledger.execute(Unsubscribe(subject="ann", occurred_at=later))
    ledger.execute(WithdrawConsent(subject="bob", purpose="offers", occurred_at=later))
    ledger.execute(RecordObjection(subject="cat", all_direct_marketing=True, occurred_at=later))
    ledger.execute(AcceptPolicy(subject="cat", version="v1", occurred_at=later))
    ledger.execute(OpenRightsRequest(subject="bob", right="access", occurred_at=later))
    ledger.execute(
        GrantConsent(
            subject="ann",
            purpose="newsletter",
            policy_version="v1",
            occurred_at=later + timedelta(1),
        )
    )


def _drain(runner: ConsumerRunner, expected: int) -> int:
    taken = 0
    for _ in range(60):
        taken += runner.run_once()
        if taken >= expected:
            break
    return taken


def test_end_to_end_projection_and_a_poison_record(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}"
    path = tmp_path / "ledger.sqlite3"
    relay = sqlite_relay(path, bootstrap=kafka_bootstrap, topic=topic)
    _history(ledger)
    while relay.publish_once():
        pass
    poison = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    poison.send(topic, key=b"ann", value=b"{not json").get(timeout=10)
    poison.send(topic, key=None, value=b'{"event_type": "Nope"}').get(timeout=10)
    poison.close()
    ledger.execute(Unsubscribe(subject="bob", purpose="newsletter", occurred_at=T0 + timedelta(2)))
    while relay.publish_once():
        pass
    relay.close()
    published = ledger.store.head()

    runner = ConsumerRunner(consumer_config(kafka_bootstrap, pg_dsn, schema, topic))
    try:
        assert _drain(runner, published + 2) == published + 2
    finally:
        runner.close()

    tables = projection_rows(pg_dsn, schema, TABLES)
    consents = {(r[0], r[1], r[2]): (r[3], r[4]) for r in tables["consent_state"]}
    assert consents[("ann", "newsletter", "email")] == ("granted", None)
    assert consents[("ann", "offers", "email")] == ("withdrawn", "unsubscribed")
    assert consents[("bob", "offers", "email")] == ("withdrawn", "user_request")
    assert consents[("bob", "newsletter", "email")] == ("withdrawn", "unsubscribed")
    suppressions = {(r[0], r[1]): r[2] for r in tables["suppression"]}
    assert suppressions == {
        ("ann", "*"): "unsubscribed",
        ("bob", "newsletter"): "unsubscribed",
        ("cat", "*"): "objection",
    }
    assert [r[:2] for r in tables["policy_acceptance"]] == [("cat", "v1")]
    assert [(r[1], r[2]) for r in tables["rights_requests"]] == [("bob", "access")]

    letters = topics.topic_records(kafka_bootstrap, f"{topic}.dlq", limit=2, wait_ms=10_000)
    assert len(letters) == 2
    errors = sorted(dict(letter.headers)["error"].decode() for letter in letters)
    # Unauthenticated, the bad JSON is refused before it is read.
    assert errors == ["record has no key", "record is not authenticated (no mac header)"]


def test_a_restarted_consumer_resumes_from_the_stored_offsets(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}"
    path = tmp_path / "ledger.sqlite3"
    relay = sqlite_relay(path, bootstrap=kafka_bootstrap, topic=topic, partitions=1)
    _history(ledger)
    publish_all(relay)
    config = consumer_config(kafka_bootstrap, pg_dsn, schema, topic, max_records=5)
    first = ConsumerRunner(config)
    taken = _drain(first, 5)
    first.close()
    assert taken == 5
    second = ConsumerRunner(config)
    rest = _drain(second, ledger.store.head() - 5)
    assert second.run_once() == 0
    second.close()
    relay.close()
    assert rest == ledger.store.head() - 5


def test_the_broker_failing_under_polls_does_not_end_the_consumer(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    """kafka-python raises from a poll when the broker vanishes (its coordinator lookup)."""
    topic = f"events-{uuid4().hex[:8]}"
    relay = sqlite_relay(tmp_path / "ledger.sqlite3", bootstrap=kafka_bootstrap, topic=topic)
    _history(ledger)
    publish_all(relay)
    runner = ConsumerRunner(consumer_config(kafka_bootstrap, pg_dsn, schema, topic, max_records=3))
    real_poll = runner.consumer.poll
    polls = 0

    def poll_failing_twice(**kwargs: Any) -> Any:
        nonlocal polls
        polls += 1
        if polls in {2, 4}:  # between batches, as when the broker dies under a consumer
            raise KafkaConnectionError("111 ECONNREFUSED")
        return real_poll(**kwargs)

    runner.consumer.poll = poll_failing_twice
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,), name="consumer")
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while _applied(pg_dsn, schema, f"g-{topic}") < ledger.store.head():
            assert time.monotonic() < deadline, "the consumer stopped applying"
            time.sleep(0.2)
        assert polls > 4
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=30)
        runner.close()
        relay.close()
    assert len(projection_rows(pg_dsn, schema, TABLES)["consent_state"]) == 6


def _applied(dsn: str, schema: str, group: str) -> int:
    """Records applied, by the offsets stored with the tables."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            sql.SQL(
                "select coalesce(sum(next_offset), 0) from {} where consumer_group = %s"
            ).format(sql.Identifier(schema, "consumer_offsets")),
            (group,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_applying_twice_or_interleaved_gives_the_same_tables(
    ledger: Ledger, pg_dsn: str, schema: str
) -> None:
    _history(ledger)
    events = [
        (parse_event(n.state), n.id)
        for n in ledger.store.notifications(after=0, limit=1000)
        if not n.topic.startswith(("PurposeRegistered", "PolicyVersionPublished"))
    ]
    with psycopg.connect(pg_dsn) as conn, conn.transaction():
        migrate(conn, schema=schema)
        PostgresProjectionStore(conn, schema=schema).apply(events)
    once = projection_rows(pg_dsn, schema, TABLES)

    by_subject: dict[str, list[Any]] = {}
    for event, position in events:
        by_subject.setdefault(event.subject, []).append((event, position))
    rng = random.Random(7)
    for _ in range(3):
        # Partitions keep each person's order but interleave people arbitrarily.
        queues = [list(q) for q in by_subject.values()]
        interleaved = []
        while any(queues):
            queue = rng.choice([q for q in queues if q])
            interleaved.append(queue.pop(0))
        with psycopg.connect(pg_dsn) as conn, conn.transaction():
            conn.execute(
                sql.SQL("truncate {}").format(
                    sql.SQL(", ").join(sql.Identifier(schema, t) for t in TABLES)
                )
            )
            store = PostgresProjectionStore(conn, schema=schema)
            store.apply(interleaved)
            store.apply(interleaved)
        assert projection_rows(pg_dsn, schema, TABLES) == once


def _project(ledger: Ledger, pg_dsn: str, schema: str, *, twice: bool = False) -> None:
    events = [
        (parse_event(n.state), n.id) for n in ledger.store.notifications(after=0, limit=10_000)
    ]
    with psycopg.connect(pg_dsn) as conn, conn.transaction():
        migrate(conn, schema=schema)
        store = PostgresProjectionStore(conn, schema=schema)
        store.apply(events)
        if twice:
            store.apply(events)


def test_decisions_read_from_the_projection(ledger: Ledger, pg_dsn: str, schema: str) -> None:
    _history(ledger)
    later = T0 + timedelta(days=3)
    ledger.execute(RestrictProcessing(subject="bob", purposes=("newsletter",), occurred_at=later))
    ledger.execute(
        GrantConsent(
            subject="dan",
            purpose="offers",
            policy_version="v1",
            double_opt_in="pending",
            occurred_at=later,
        )
    )
    _project(ledger, pg_dsn, schema, twice=True)
    at = T0 + timedelta(days=10)
    expected = {
        ("ann", "newsletter"): Decision(allowed=True),
        ("ann", "offers"): Decision(allowed=False, reason=Reason.UNSUBSCRIBED),
        ("bob", "newsletter"): Decision(allowed=False, reason=Reason.RESTRICTED),
        ("bob", "offers"): Decision(allowed=False, reason=Reason.WITHDRAWN),
        ("cat", "offers"): Decision(allowed=False, reason=Reason.OBJECTED),
        ("dan", "offers"): Decision(allowed=False, reason=Reason.DOUBLE_OPT_IN_PENDING),
        ("eve", "offers"): Decision(allowed=False, reason=Reason.NEVER_GRANTED),
        ("ann", "partners"): Decision(allowed=False, reason=Reason.UNKNOWN_PURPOSE),
    }
    with psycopg.connect(pg_dsn) as conn:
        reader = ProjectionReader(conn, schema=schema)
        answers = {
            (subject, purpose): decide(
                reader.facts(subject, purpose, "email"), purpose=purpose, channel="email", at=at
            )
            for subject, purpose in expected
        }
    assert answers == expected

    # The bulk path gives every answer the single path gives, in the order asked.
    PostgresPositions(dsn=pg_dsn, schema=schema).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        checker = SendChecker(
            conn,
            head=ledger.store.head,
            config=CheckerConfig(schema=schema, max_lag=10**9, max_staleness_s=math.inf),
            clock=lambda: at,
        )
        for purpose in ("newsletter", "offers", "partners"):
            subjects = ["eve", "dan", "cat", "bob", "ann", "ann"]
            bulk = list(checker.bulk_check(subjects, purpose))
            assert [s for s, _ in bulk] == subjects
            assert [d for _, d in bulk] == [checker.check(s, purpose).decision for s in subjects]


def test_a_lifted_restriction_stays_lifted_when_an_old_record_comes_again(
    ledger: Ledger, pg_dsn: str, schema: str
) -> None:
    ledger.execute(RestrictProcessing(subject="fay", occurred_at=T0))
    ledger.execute(LiftRestriction(subject="fay", occurred_at=T0))
    _project(ledger, pg_dsn, schema)
    restrict = [
        (parse_event(n.state), n.id)
        for n in ledger.store.notifications(after=0, limit=100)
        if n.topic.startswith("ProcessingRestricted")
    ]
    with psycopg.connect(pg_dsn) as conn, conn.transaction():
        PostgresProjectionStore(conn, schema=schema).apply(restrict)
    with psycopg.connect(pg_dsn) as conn:
        facts = ProjectionReader(conn, schema=schema).facts("fay", "newsletter", "email")
    assert facts.restrictions == frozenset()


def test_checks_fail_closed_until_the_projection_covers_the_write(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}"
    path = tmp_path / "ledger.sqlite3"
    relay = sqlite_relay(
        path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        positions=PostgresPositions(dsn=pg_dsn, schema=schema),
    )
    _history(ledger)
    publish_all(relay)
    runner = ConsumerRunner(consumer_config(kafka_bootstrap, pg_dsn, schema, topic))
    conn = psycopg.connect(pg_dsn, autocommit=True)
    checker = SendChecker(
        conn,
        head=ledger.store.head,
        config=CheckerConfig(schema=schema, group=f"g-{topic}", topic=topic, max_lag=0, wait_s=0.3),
        clock=lambda: T0 + timedelta(days=5),
    )
    try:
        with pytest.raises(StaleProjectionError) as stale:
            checker.check("ann", "newsletter")
        assert stale.value.required == ledger.store.head()
        _drain(runner, ledger.store.head())
        fresh = checker.check("ann", "newsletter")
        assert fresh.decision == Decision(allowed=True)
        assert fresh.covered == ledger.store.head()

        click = ledger.execute(
            Unsubscribe(subject="ann", purpose="newsletter", occurred_at=T0 + timedelta(days=4))
        )
        while relay.publish_once():
            pass
        relaxed = SendChecker(
            conn,
            head=ledger.store.head,
            config=CheckerConfig(
                schema=schema, group=f"g-{topic}", topic=topic, max_lag=10, wait_s=0.3
            ),
        )
        with pytest.raises(StaleProjectionError):
            relaxed.check("ann", "newsletter", min_position=click.position)
        _drain(runner, 1)
        after = relaxed.check("ann", "newsletter", min_position=click.position)
        assert after.decision == Decision(allowed=False, reason=Reason.UNSUBSCRIBED)
    finally:
        runner.close()
        relay.close()
        conn.close()


def test_a_range_published_twice_changes_nothing(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}"
    path = tmp_path / "ledger.sqlite3"
    positions = SQLitePositions(path=path)
    relay = sqlite_relay(
        path, bootstrap=kafka_bootstrap, topic=topic, partitions=2, positions=positions
    )
    _history(ledger)
    publish_all(relay)
    config = consumer_config(kafka_bootstrap, pg_dsn, schema, topic)
    runner = ConsumerRunner(config)
    published = ledger.store.head()
    assert _drain(runner, published) == published
    once = projection_rows(pg_dsn, schema, TABLES)

    # As after a relay crash between the broker's ack and storing the position.
    positions.save(relay.config.name, 3)
    while relay.publish_once():
        pass
    assert _drain(runner, published - 3) == published - 3
    runner.close()
    relay.close()
    assert projection_rows(pg_dsn, schema, TABLES) == once


def test_the_check_command_single_and_bulk(
    ledger: Ledger, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    _history(ledger)
    _project(ledger, pg_dsn, schema)
    PostgresPositions(dsn=pg_dsn, schema=schema).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env |= {"CONSENT_MODE": "production", "CONSENT_PG_DSN": pg_dsn, "CONSENT_PG_SCHEMA": schema}
    cli = str(Path(sys.executable).parent / "consent-ledger")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, "check", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    single = run("--subject", "bob", "--purpose", "offers")
    assert single.returncode == 0, single.stderr
    assert json.loads(single.stdout) == {
        "subject": "bob",
        "allowed": False,
        "reason": "withdrawn",
        "covered": 0,
    }
    bulk = run("--purpose", "newsletter", "--bulk", "-", stdin="ann\ncat\nzed\n")
    assert bulk.returncode == 0, bulk.stderr
    answers = [json.loads(line) for line in bulk.stdout.splitlines()]
    assert [(a["subject"], a["allowed"], a["reason"]) for a in answers] == [
        ("ann", True, None),
        ("cat", False, "objected"),
        ("zed", False, "never_granted"),
    ]
    stale = run("--subject", "ann", "--purpose", "newsletter", "--min-position", "999999")
    assert stale.returncode == 3
    assert "stale" in stale.stderr


def test_a_consumer_started_before_the_topic_exists_does_not_create_it(
    kafka_bootstrap: str, pg_dsn: str, schema: str
) -> None:
    topic = f"events-{uuid4().hex[:8]}"
    runner = ConsumerRunner(consumer_config(kafka_bootstrap, pg_dsn, schema, topic))
    try:
        for _ in range(3):
            runner.run_once()
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            assert topic not in admin.list_topics()
        finally:
            admin.close()
    finally:
        runner.close()


def test_forged_altered_and_out_of_range_records_are_dead_letters_and_change_no_answer(
    ledger: Ledger, kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    relay = tracked_relay(tmp_path, kafka_bootstrap, pg_dsn, schema, 1)
    topic = relay.config.events_topic
    _history(ledger)  # ann: granted offers, then unsubscribed from everything
    publish_all(relay)
    grant = next(
        r
        for r in topics.topic_records(kafka_bootstrap, topic)
        if r.key == b"ann" and b'"purpose":"offers"' in r.value and b"ConsentGranted" in r.value
    )
    real = json.loads(grant.value)
    forged_value = json.dumps(real | {"subject": "zed", "position": 5}).encode()

    def resigned(value: bytes) -> list[tuple[str, bytes]]:
        # A relay bug (or a stolen key) makes an authentic record with any position.
        mac = TOPIC_KEYS.mac(topic=topic, key=b"ann", headers=grant.headers, value=value)
        return [*(h for h in grant.headers if h[0] != "mac"), ("mac", mac)]

    huge = json.dumps(real | {"position": 2**70}).encode()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    poisons = [
        (b"zed", forged_value, [], "no mac header"),
        (b"ann", json.dumps(real | {"position": 10**15}).encode(), grant.headers, "forged"),
        (b"ann", huge, grant.headers, "forged"),
        (b"ann", huge, resigned(huge), "position out of range"),
        (b"ann", grant.value, grant.headers, "out of sequence"),
    ]
    for key, value, headers, _ in poisons:
        producer.send(topic, key=key, value=value, headers=headers).get(timeout=10)
    producer.close()
    ledger.execute(
        GrantConsent(subject="dan", purpose="offers", policy_version="v1", occurred_at=T0)
    )
    publish_all(relay)
    relay.close()
    head = ledger.store.head()

    for _ in range(2):  # a restart goes on past them too
        runner = ConsumerRunner(consumer_config(kafka_bootstrap, pg_dsn, schema, topic))
        try:
            _drain(runner, head + len(poisons))
            assert runner.run_once() == 0
        finally:
            runner.close()
    assert _applied(pg_dsn, schema, f"g-{topic}") == head + len(poisons)
    assert CONSUMER.get_sample_value("consent_ledger_projection_position") == head

    letters = topics.topic_records(kafka_bootstrap, f"{topic}.dlq", limit=5, wait_ms=10_000)
    errors = [dict(letter.headers)["error"].decode() for letter in letters]
    assert len(errors) == len(poisons)
    for error, (*_, why) in zip(errors, poisons, strict=True):
        assert why in error

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        checker = SendChecker(
            conn,
            head=ledger.store.head,
            config=CheckerConfig(schema=schema, group=f"g-{topic}", topic=topic, max_lag=0),
        )
        answers = {s: checker.check(s, "offers").decision for s in ("ann", "zed", "dan")}
    assert answers == {
        "ann": Decision(allowed=False, reason=Reason.UNSUBSCRIBED),
        "zed": Decision(allowed=False, reason=Reason.NEVER_GRANTED),
        "dan": Decision(allowed=True),
    }
