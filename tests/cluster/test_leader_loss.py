"""Three Kafka nodes, a leader killed while the relay publishes: nothing lost, no long pause.

The cluster is this module's own (it kills a node), started from the jars scripts/services.sh
fetched: three JVMs take most of a minute to start here, so these tests run by
`make test-cluster`, not `make test`.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from consumers.runner import ConsumerRunner
from relay.publisher import record_for
from relay.topics import ensure_topics, topic_problems
from tests.broker import PrivateCluster
from tests.conftest import _required_env
from tests.helpers import (
    grant_then_maybe_unsubscribe,
    projection_rows,
    wait_projected,
)
from tests.topics import consumer_config, following, ledger_and_relay, sqlite_relay, topic_records

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
T0 = datetime(2026, 6, 1, tzinfo=UTC)
COMMANDS = 900
KILL_AT = 200
CATCH_UP_S = 120.0
PAUSE_BOUND_S = 10.0
"""The longest the relay may stop publishing while the leader is gone."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    libs = Path(_required_env("KAFKA_TEST_LIBS"))
    cluster = PrivateCluster(libs=libs, home=tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.kill()


def test_an_unsafe_topic_is_named_then_corrected_to_three_copies_two_in_sync(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}.v1"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=3,
                    replication_factor=1,
                    topic_configs={"min.insync.replicas": "1", "retention.ms": "3600000"},
                )
                for name in (topic, f"{topic}.dlq")
            ]
        )
        admin.wait_for_topics([topic, f"{topic}.dlq"], timeout_ms=30_000)
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic, {"unclean.leader.election.enable": "true"}
                )
            ],
            incremental=True,
        )
    finally:
        admin.close()
    found = topic_problems(cluster.bootstrap, (topic,))[topic]
    assert any(p.startswith("replication factor 1, the cluster allows 3") for p in found), found
    assert any(p.startswith("min.insync.replicas 1, needs 2") for p in found), found
    assert "unclean.leader.election.enable is true" in found
    assert any(p.startswith("retention.ms 3600000") for p in found), found

    relay = sqlite_relay(
        tmp_path / "ledger.sqlite3", bootstrap=cluster.bootstrap, topic=topic, create_topics=False
    )
    try:
        policy = ensure_topics(relay.config)
    finally:
        relay.close()
    assert (policy.replication_factor, policy.min_insync_replicas) == (3, 2)
    assert topic_problems(cluster.bootstrap, (topic, f"{topic}.dlq")) == {}


def test_a_leader_killed_while_the_relay_publishes_loses_nothing(
    cluster: PrivateCluster, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic, ledger, relay = ledger_and_relay(tmp_path, bootstrap=cluster.bootstrap)
    consumer = ConsumerRunner(
        consumer_config(cluster.bootstrap, pg_dsn, schema, topic, max_records=100)
    )
    killed = 0
    caught_up_while_down = False
    with following(relay, consumer) as workers:
        for n in range(COMMANDS):
            if n == KILL_AT:
                killed = cluster.leader_of(topic, 0)
                cluster.node(killed).kill()
            grant_then_maybe_unsubscribe(ledger, n, unsubscribe_every=4, at=T0)
            time.sleep(0.01)
        # Still two of three nodes: the relay goes on publishing without the killed one.
        head = ledger.store.head()
        deadline = time.monotonic() + PAUSE_BOUND_S
        while time.monotonic() < deadline and not caught_up_while_down:
            caught_up_while_down = relay.position == head
            time.sleep(0.2)
        cluster.node(killed).start()
        expected = wait_projected(
            lambda: relay.position, ledger.store, dsn=pg_dsn, schema=schema, timeout_s=CATCH_UP_S
        )

    assert killed in (1, 2, 3)
    assert caught_up_while_down, "the relay stopped publishing while one node of three was down"
    assert not any(worker.is_alive() for worker in workers)
    assert relay.position == head
    # Every stored position on the topic once, byte for byte the record the relay made of it.
    on_topic = topic_records(cluster.bootstrap, topic)
    by_position = {int(dict(r.headers)["position"]): r for r in on_topic}
    assert len(on_topic) == len(by_position) == head
    for row in ledger.store.stream_rows():
        made = record_for(row, topic=topic, keys=relay.config.keys)
        record = by_position[row[0]]
        assert (record.key, record.value, list(record.headers)) == (
            made.key,
            made.value,
            made.headers,
        )
    assert projection_rows(pg_dsn, schema, tuple(expected)) == expected
    ledger.close()
