"""The relay's topics: created, checked and corrected so that an acknowledged event survives.

The settings follow the cluster: min(3, brokers) copies of every partition, and on three or
more an acknowledgement (``acks=all``) needs two of them in sync, so one broker may die without
losing an acknowledged record or stopping writes. The relay refuses to run on a topic whose
live settings would lose acknowledged events: fewer copies than the cluster allows, too small an
in-sync minimum, unclean leader election, or a retention that deletes history.
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

logger = logging.getLogger(__name__)

MAX_REPLICATION = 3
REASSIGNMENT_TIMEOUT_S = 120.0
"""How long the relay waits at start for the copies it added to a topic to catch up."""
CHECKED = (
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "retention.ms",
    "cleanup.policy",
)


class UnsafeTopicError(Exception):
    """Topics whose live settings would lose acknowledged events; ``problems`` says how, per
    topic."""

    def __init__(self, problems: Mapping[str, list[str]]) -> None:
        super().__init__(
            "CONSENT_KAFKA_TOPIC: "
            + "; ".join(
                f"topic {topic} would lose acknowledged events: {', '.join(found)}"
                for topic, found in problems.items()
            )
        )
        self.problems = dict(problems)


class TopicsConfig(Protocol):
    """What of the relay's configuration its topics need."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def partitions(self) -> int: ...

    @property
    def events_topic(self) -> str: ...

    @property
    def dead_letter_topic(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    """The settings a topic of the ledger must have on a cluster of ``brokers``."""

    replication_factor: int
    min_insync_replicas: int

    @classmethod
    def for_cluster(cls, brokers: int) -> "TopicPolicy":
        replication = max(1, min(MAX_REPLICATION, brokers))
        # Two of three: one broker may be lost (or restarting) and writes go on, and every
        # acknowledged record is on at least two brokers. With two copies, an in-sync minimum
        # of two would stop every write while either broker is down.
        return cls(replication, 2 if replication >= MAX_REPLICATION else 1)

    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": "-1",
            "cleanup.policy": "delete",
            "min.insync.replicas": str(self.min_insync_replicas),
            "unclean.leader.election.enable": "false",
        }

    def problems(self, *, replication: int, configs: Mapping[str, str]) -> list[str]:
        """What in these live settings would lose acknowledged events (empty: nothing)."""
        found = []
        if replication < self.replication_factor:
            found.append(
                f"replication factor {replication}, the cluster allows {self.replication_factor}"
            )
        min_isr = int(configs.get("min.insync.replicas", "1"))
        if min_isr < self.min_insync_replicas:
            found.append(
                f"min.insync.replicas {min_isr}, needs {self.min_insync_replicas} "
                f"with {self.replication_factor} copies"
            )
        if configs.get("unclean.leader.election.enable", "false") != "false":
            found.append("unclean.leader.election.enable is true")
        if configs.get("retention.ms", "-1") != "-1":
            found.append(f"retention.ms {configs['retention.ms']} deletes history (needs -1)")
        if "compact" in configs.get("cleanup.policy", "delete"):
            found.append(f"cleanup.policy {configs['cleanup.policy']} deletes history")
        return found


def ensure_topics(config: TopicsConfig) -> TopicPolicy:
    """Create the event and dead-letter topics if missing, correct the settings of existing ones
    to the cluster's policy, and raise `UnsafeTopicError` if what is live would still lose
    acknowledged events."""
    admin = KafkaAdminClient(bootstrap_servers=config.bootstrap, client_id="consent-ledger-relay")
    try:
        policy = TopicPolicy.for_cluster(len(admin.describe_cluster()["brokers"]))
        names = (config.events_topic, config.dead_letter_topic)
        _create_missing(admin, config, policy, names)
        for name in names:
            _correct(admin, policy, name)
        if problems := _problems(admin, policy, names):
            raise UnsafeTopicError(problems)
        return policy
    finally:
        admin.close()


def topic_problems(bootstrap: str, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Per topic of ``names`` whose live settings would lose acknowledged events, how."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="consent-ledger-relay")
    try:
        policy = TopicPolicy.for_cluster(len(admin.describe_cluster()["brokers"]))
        return _problems(admin, policy, names)
    finally:
        admin.close()


def _problems(
    admin: KafkaAdminClient, policy: TopicPolicy, names: tuple[str, ...]
) -> dict[str, list[str]]:
    found = {}
    for name in names:
        replication, configs = _live(admin, name)
        if problems := policy.problems(replication=replication, configs=configs):
            found[name] = problems
    return found


def _create_missing(
    admin: KafkaAdminClient, config: TopicsConfig, policy: TopicPolicy, names: tuple[str, ...]
) -> None:
    existing = set(admin.list_topics())
    wanted = [
        NewTopic(
            name,
            num_partitions=config.partitions,
            replication_factor=policy.replication_factor,
            topic_configs=policy.configs(),
        )
        for name in names
        if name not in existing
    ]
    if wanted:
        try:
            admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            logger.info("relay: topics created meanwhile by another process")


def _live(admin: KafkaAdminClient, name: str) -> tuple[int, dict[str, str]]:
    """The smallest replica count of the topic's partitions, and its checked settings."""
    # A topic just created is described once its metadata spread to the broker answering.
    admin.wait_for_topics([name], timeout_ms=10_000)
    partitions = admin.describe_topics([name])[0]["partitions"]
    replication = min((len(p["replica_nodes"]) for p in partitions), default=0)
    resource = ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(CHECKED))
    found = admin.describe_configs([resource], config_filter="all")["topic"][name]
    return replication, {key: str(entry["value"]) for key, entry in found.items()}


def _correct(admin: KafkaAdminClient, policy: TopicPolicy, name: str) -> None:
    replication, configs = _live(admin, name)
    changes = {key: value for key, value in policy.configs().items() if configs.get(key) != value}
    # The policy counts the brokers alive now: a relay started while one of three is down must
    # not lower the in-sync minimum the topic has (it raises it, never lowers it).
    if int(configs.get("min.insync.replicas", "1")) >= policy.min_insync_replicas:
        changes.pop("min.insync.replicas", None)
    if changes:
        logger.warning("relay: topic %s: setting %s", name, ", ".join(sorted(changes)))
        # The broker checks the names itself; the client's own check asks a broker that may not
        # know of a topic created a moment ago, and refuses.
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, changes)],
            incremental=True,
            raise_on_unknown=False,
        )
    if replication < policy.replication_factor:
        _add_replicas(admin, policy, name)


def _add_replicas(admin: KafkaAdminClient, policy: TopicPolicy, name: str) -> None:
    """Give every partition of ``name`` the policy's number of copies, and wait for them."""
    brokers = sorted(b["broker_id"] for b in admin.describe_cluster()["brokers"])
    plan: dict[TopicPartition, list[int]] = {}
    for partition in admin.describe_topics([name])[0]["partitions"]:
        replicas: list[int] = list(partition["replica_nodes"])
        start = partition["partition_index"]
        for offset in range(len(brokers)):
            if len(replicas) >= policy.replication_factor:
                break
            candidate = brokers[(start + offset) % len(brokers)]
            if candidate not in replicas:
                replicas.append(candidate)
        if len(replicas) > len(partition["replica_nodes"]):
            plan[TopicPartition(name, partition["partition_index"])] = replicas
    if not plan:
        return
    logger.warning(
        "relay: topic %s: adding copies to %d partitions (replication factor %d)",
        name,
        len(plan),
        policy.replication_factor,
    )
    admin.alter_partition_reassignments(plan)
    deadline = time.monotonic() + REASSIGNMENT_TIMEOUT_S
    while time.monotonic() < deadline:
        pending: Any = admin.list_partition_reassignments(list(plan))
        if not pending:
            return
        time.sleep(0.5)
