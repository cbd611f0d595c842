"""The topic settings follow the cluster, and settings that lose acknowledged events are named."""

import pytest

from entrypoints.cli.opening import startup_problem
from relay.topics import TopicPolicy, UnsafeTopicError

SAFE = {
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "retention.ms": "-1",
    "cleanup.policy": "delete",
}


@pytest.mark.parametrize(
    ("brokers", "replication", "min_isr"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_replication_is_min_3_brokers_and_two_of_three_acknowledge(
    brokers: int, replication: int, min_isr: int
) -> None:
    policy = TopicPolicy.for_cluster(brokers)
    assert (policy.replication_factor, policy.min_insync_replicas) == (replication, min_isr)
    assert policy.configs()["min.insync.replicas"] == str(min_isr)
    assert policy.configs()["unclean.leader.election.enable"] == "false"


def test_the_safe_settings_of_a_three_broker_cluster_have_no_problem() -> None:
    assert TopicPolicy.for_cluster(3).problems(replication=3, configs=SAFE) == []


@pytest.mark.parametrize(
    ("replication", "changed", "named"),
    [
        (1, {}, "replication factor 1, the cluster allows 3"),
        (3, {"min.insync.replicas": "1"}, "min.insync.replicas 1, needs 2 with 3 copies"),
        (3, {"unclean.leader.election.enable": "true"}, "unclean.leader.election.enable is true"),
        (3, {"retention.ms": "604800000"}, "retention.ms 604800000 deletes history"),
        (3, {"cleanup.policy": "compact"}, "cleanup.policy compact deletes history"),
    ],
)
def test_each_setting_that_would_lose_acknowledged_events_is_named(
    replication: int, changed: dict[str, str], named: str
) -> None:
    problems = TopicPolicy.for_cluster(3).problems(replication=replication, configs=SAFE | changed)
    assert len(problems) == 1
    assert problems[0].startswith(named)


def test_the_relay_refusing_to_start_names_the_setting_and_the_topic() -> None:
    error = UnsafeTopicError(
        {"consent.events.v1": ["min.insync.replicas 1, needs 2 with 3 copies"]}
    )
    assert startup_problem(error) == (
        "CONSENT_KAFKA_TOPIC: topic consent.events.v1 would lose acknowledged events: "
        "min.insync.replicas 1, needs 2 with 3 copies"
    )
