"""A test's own topic: the embedded ledger's relay to it, a consumer of it, what is on it."""

import base64
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

from kafka import KafkaConsumer, TopicPartition

from consumers.runner import ConsumerConfig, ConsumerRunner
from ledger.store.events import LedgerStore, SQLiteStoreConfig
from ledger.write.service import Ledger
from relay.positions import PostgresPositions, SQLitePositions
from relay.publisher import PositionStore, Relay, RelayConfig
from relay.topics import ensure_topics
from schemas.record_auth import RecordKeys
from tests.helpers import sqlite_ledger

TOPIC_KEYS = RecordKeys({"test": b"t" * 32})
"""The topic keys of the tests' relays and consumers."""
TOPIC_KEYS_SETTING = "test:" + base64.b64encode(b"t" * 32).decode()
"""The same keys as ``CONSENT_TOPIC_KEYS``, for the processes a test starts."""


def sqlite_relay(
    path: Path,
    *,
    bootstrap: str,
    topic: str,
    partitions: int = 3,
    positions: PositionStore | None = None,
    flush_timeout_s: float = 30.0,
    create_topics: bool = True,
) -> Relay:
    """A relay of the embedded ledger at ``path`` to a topic of the test's own."""
    config = RelayConfig(
        bootstrap=bootstrap,
        keys=TOPIC_KEYS,
        partitions=partitions,
        events_topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        flush_timeout_s=flush_timeout_s,
    )
    relay = Relay(
        store=LedgerStore(SQLiteStoreConfig(path=path)),
        positions=positions or SQLitePositions(path=path),
        config=config,
    )
    if create_topics:
        ensure_topics(config)
    return relay


def ledger_and_relay(
    home: Path, *, bootstrap: str, **relay_options: Any
) -> tuple[str, Ledger, Relay]:
    """A fresh topic's name, the embedded ledger ``home/ledger.sqlite3`` (tests.helpers'
    catalog) and its relay to that topic."""
    path = home / "ledger.sqlite3"
    topic = f"events-{uuid4().hex[:8]}.v1"
    return (
        topic,
        sqlite_ledger(path),
        sqlite_relay(path, bootstrap=bootstrap, topic=topic, **relay_options),
    )


def tracked_relay(home: Path, bootstrap: str, dsn: str, schema: str, partitions: int) -> Relay:
    """A relay of the embedded ledger ``home/ledger.sqlite3`` to a fresh topic of the test's
    own, its position and watermarks kept in PostgreSQL (as checks and rebuilds read them)."""
    return sqlite_relay(
        home / "ledger.sqlite3",
        bootstrap=bootstrap,
        topic=f"events-{uuid4().hex[:8]}.v1",
        partitions=partitions,
        positions=PostgresPositions(dsn=dsn, schema=schema),
    )


def publish_all(relay: Relay) -> None:
    while relay.publish_once():
        pass


def consumer_config(
    bootstrap: str, dsn: str, schema: str, topic: str, *, max_records: int = 2_000
) -> ConsumerConfig:
    """A consumer of ``topic`` (as `sqlite_relay` fills it) into ``schema``, its own group."""
    # The relay helper creates "<topic>.dlq"; the consumer sends its dead letters there.
    return ConsumerConfig(
        bootstrap=bootstrap,
        dsn=dsn,
        keys=TOPIC_KEYS,
        schema=schema,
        group=f"g-{topic}",
        topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        max_records=max_records,
    )


def topic_records(
    bootstrap: str, topic: str, *, limit: int | None = None, wait_ms: int = 5_000
) -> list[Any]:
    """The records on ``topic`` from its beginning: ``limit`` of them, or all that come before
    ``wait_ms`` passes without one."""
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=wait_ms,
    )
    try:
        return list(itertools.islice(reader, limit))
    finally:
        reader.close()


def topic_positions(bootstrap: str, topic: str) -> list[int]:
    """The ledger position in the headers of every record on ``topic``, partition by partition."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5_000)
    partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    positions = [int(dict(record.headers)["position"]) for record in reader]
    reader.close()
    return positions


@contextmanager
def following(relay: Relay, consumer: ConsumerRunner) -> Iterator[list[threading.Thread]]:
    """The relay and the consumer following, each on a thread, until the block ends; then both
    stopped, joined and closed. Yields the threads."""
    stop = threading.Event()
    workers = [
        threading.Thread(target=relay.run, args=(stop,), name="relay"),
        threading.Thread(target=consumer.run, args=(stop,), name="consumer"),
    ]
    for worker in workers:
        worker.start()
    try:
        yield workers
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        consumer.close()
        relay.close()


def production_env(dsn: str, schema: str, bootstrap: str, **settings: str) -> dict[str, str]:
    """The environment of a `consent-ledger` process of a test: production mode on ``schema``
    and ``bootstrap``, the tests' topic keys, no other ``CONSENT_*`` of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    return env | {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": dsn,
        "CONSENT_PG_SCHEMA": schema,
        "CONSENT_KAFKA_BOOTSTRAP": bootstrap,
        "CONSENT_TOPIC_KEYS": TOPIC_KEYS_SETTING,
        **settings,
    }
