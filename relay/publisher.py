"""The relay: publishes every stored event, in ledger order, to Kafka.

It reads the notification log after its tracked position, publishes each event keyed by subject
with an idempotent producer (acks=all), waits for the broker's acknowledgement of the whole
batch, and only then stores the new position. Delivery is at least once: after a crash the last
unacknowledged batch is published again, and consumers make duplicates harmless.
"""

import itertools
import json
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ledger.audit.tlog.entry import Entry
from ledger.audit.tlog.verify import leaf_hash
from ledger.domain.backoff import follow
from ledger.store.events import STORE_UNAVAILABLE, LedgerStore
from relay.metrics import RELAY_BACKLOG, RELAY_ERRORS, RELAY_POSITION, RELAY_PUBLISHED
from schemas import DEAD_LETTER_TOPIC, EVENTS_TOPIC
from schemas.record_auth import MAC_HEADER, RecordKeys

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    bootstrap: str
    keys: RecordKeys
    """The topic keys: every record carries a MAC under the newest (`schemas.record_auth`)."""
    partitions: int = 6
    batch: int = 2_000
    flush_timeout_s: float = 30.0
    backoff_max_s: float = 5.0
    name: str = "kafka"
    """Whose position this is: one tracked position per relay name."""
    events_topic: str = EVENTS_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC


class PositionStore(Protocol):
    """Where the relay keeps the position it has published up to (and including)."""

    def load(self, name: str) -> int: ...

    def save(
        self, name: str, position: int, watermark: Mapping[int, int] | None = None
    ) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def record_for(row: tuple[Any, ...], *, topic: str, keys: RecordKeys) -> Record:
    """The Kafka record of one stored event row (position, originator, version, topic, state)
    for ``topic``, authenticated with ``keys``."""
    entry = Entry(*row)
    envelope = entry.event()
    envelope["position"] = entry.position
    key = str(envelope["subject"]).encode()
    value = json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
    headers = [
        ("event_type", str(envelope["event_type"]).encode()),
        ("schema_version", str(envelope["schema_version"]).encode()),
        ("position", str(entry.position).encode()),
        ("leaf_hash", leaf_hash(entry.encode()).hex().encode()),
    ]
    mac = keys.mac(topic=topic, key=key, headers=headers, value=value)
    return Record(key=key, value=value, headers=[*headers, (MAC_HEADER, mac)])


class Relay:
    """Publishes the ledger to Kafka; `run` follows it, `publish_once` does one batch."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        positions: PositionStore,
        config: RelayConfig,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self.store = store
        self.positions = positions
        self.config = config
        self._producer_factory = producer_factory or self._new_producer
        self._producer: KafkaProducer | None = None

    def _new_producer(self) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.config.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            # Bounded so that a dead broker turns into a retry (with backoff), not a hang.
            max_block_ms=int(self.config.flush_timeout_s * 1000),
            bootstrap_timeout_ms=int(self.config.flush_timeout_s * 1000),
            client_id="consent-ledger-relay",
        )

    @property
    def position(self) -> int:
        return self.positions.load(self.config.name)

    def backlog(self) -> int:
        """Stored events not yet acknowledged by the broker."""
        backlog = max(self.store.head() - self.position, 0)
        RELAY_BACKLOG.set(backlog)
        return backlog

    def publish_once(self) -> int:
        """Publish the next batch; store the position once the broker acknowledged all of it."""
        position = self.position
        with closing(self.store.stream_rows(after=position)) as stream:
            rows = list(itertools.islice(stream, self.config.batch))
        if not rows:
            # Nothing after the position: the head is there too, no query needed.
            RELAY_POSITION.set(position)
            RELAY_BACKLOG.set(0)
            return 0
        if self._producer is None:
            self._producer = self._producer_factory()
        futures = []
        for row in rows:
            record = record_for(row, topic=self.config.events_topic, keys=self.config.keys)
            futures.append(
                self._producer.send(
                    self.config.events_topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                )
            )
        self._producer.flush(timeout=self.config.flush_timeout_s)
        watermark: dict[int, int] = {}
        for future in futures:
            # Raises if the broker refused or did not acknowledge a record.
            metadata = future.get(timeout=0)
            watermark[metadata.partition] = max(
                watermark.get(metadata.partition, 0), metadata.offset + 1
            )
        self.positions.save(self.config.name, rows[-1][0], watermark)
        RELAY_PUBLISHED.inc(len(rows))
        RELAY_POSITION.set(rows[-1][0])
        RELAY_BACKLOG.set(max(self.store.head() - rows[-1][0], 0))
        return len(rows)

    def run(self, stop: threading.Event, *, poll_s: float = 0.1) -> None:
        """Follow the ledger until ``stop``; back off (and never skip) while the broker or the
        database is down."""
        follow(
            self.publish_once,
            stop,
            transient=(KafkaError, OSError, *STORE_UNAVAILABLE),
            on_failure=self._failed,
            backoff_max_s=self.config.backoff_max_s,
            poll_s=poll_s,
        )

    def _failed(self, error: Exception, pause: float) -> None:
        if isinstance(error, (KafkaError, OSError)):
            RELAY_ERRORS.inc()
            logger.warning(
                "relay: broker unavailable (%s); %s events waiting; retrying in %.1f s",
                type(error).__name__,
                self._waiting(),
                pause,
            )
            self._close_producer()
            return
        # Every batch starts from the stored position: a batch whose position was not saved
        # is published again (consumers drop what they already hold), never skipped.
        self.store.heal()
        logger.warning(
            "relay: database unavailable (%s); retrying in %.1f s", type(error).__name__, pause
        )

    def _waiting(self) -> str:
        """The backlog for a log line, unless the database is down too."""
        try:
            return str(self.backlog())
        except STORE_UNAVAILABLE:
            return "an unknown number of"

    def _close_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except KafkaError:
                # With records still pending (the broker is gone), kafka-python's close gives
                # up in its flush, before stopping its sender thread: without this, every
                # outage would leave a producer thread behind, reconnecting for ever. Those
                # records are published again from the stored position.
                sender = getattr(self._producer, "_sender", None)
                if sender is not None:
                    sender.force_close()
                logger.info("relay: producer closed with records unsent (published again)")
            self._producer = None

    def close(self) -> None:
        """Stop producing and release the store and positions this relay was given."""
        self._close_producer()
        self.positions.close()
        self.store.close()
