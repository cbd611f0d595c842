"""The consumer runner: Kafka records into the projection tables, exactly once in effect.

Auto-commit is off. Each polled batch's projection rows and the next offset of every partition
it touched are written in one PostgreSQL transaction; on start and on every rebalance the
consumer seeks to the offsets stored there, so a crash between the two is impossible to see. A
record that cannot be decoded or validated goes to the dead-letter topic, with the error in a
header, and its partition moves on.

While PostgreSQL does not answer, the runner waits (with a growing pause) and connects again;
since a failed batch left Kafka's positions ahead of the stored offsets, it seeks back to those
before taking the next batch.
"""

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from consumers.metrics import CONSUMED_RECORDS, CONSUMER_LAG, DEAD_LETTERS, PROJECTION_POSITION
from ledger.domain.backoff import follow
from projections.errors import ProjectionUnavailableError
from projections.metrics import observe_unsubscribes
from projections.store.base import Tracking
from projections.store.postgres import PostgresProjectionStore
from schemas import DEAD_LETTER_TOPIC, EVENTS_TOPIC, Event, EventBase, SchemaError, parse_event
from schemas.record_auth import MAX_POSITION, RecordAuthenticationError, RecordKeys

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    ProjectionUnavailableError,
)
"""What PostgreSQL not answering raises (a restart, a lost connection): on our connections,
and from the projection store's readers, which name it `ProjectionUnavailableError`."""

logger = logging.getLogger(__name__)

MAX_ERROR_HEADER = 500
METADATA_MAX_AGE_MS = 5_000
SESSION_TIMEOUT_MS = 6_000

_CURRENT_EVENTS: TypeAdapter[EventBase] = TypeAdapter(Event)


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    bootstrap: str
    dsn: str
    keys: RecordKeys
    """The topic keys: a record without a valid MAC under one of them is a dead letter."""
    schema: str = "public"
    group: str = "consent-ledger-projections"
    topic: str = EVENTS_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    max_records: int = 2_000
    poll_timeout_ms: int = 500
    backoff_max_s: float = 5.0
    """The longest pause between attempts while PostgreSQL is down."""
    session_timeout_ms: int = SESSION_TIMEOUT_MS
    """How soon the group gives a dead member's partitions to the others. The client's
    default (45 s) leaves a crashed consumer's share of unsubscribes unapplied that long;
    6 s is the broker's least (``group.min.session.timeout.ms``)."""
    heartbeat_interval_ms: int = 2_000
    dead_lettered_below: Mapping[int, int] = field(default_factory=dict)
    """Per partition, the offset below which the records that fail are already on the
    dead-letter topic (a rebuild takes again what the live group took): not sent twice."""


class UndecodableRecordError(ValueError):
    """A record that is not a ledger event; ``reason`` holds no record content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(record: Any, *, topic: str, keys: RecordKeys) -> tuple[EventBase, int]:
    """The event a record of ``topic`` carries and its ledger position, or
    `UndecodableRecordError`: a record the relay did not authenticate never gets that far."""
    if record.key is None:
        raise UndecodableRecordError("record has no key")
    if record.value is None:
        raise UndecodableRecordError("record has no value")
    try:
        keys.verify(topic=topic, key=record.key, headers=record.headers or [], value=record.value)
    except RecordAuthenticationError as error:
        raise UndecodableRecordError(str(error)) from None
    try:
        # Nearly every record is a valid event of the current version: read and validated from
        # the bytes in one pass, it costs a third less than through `parse_event`.
        event = _CURRENT_EVENTS.validate_json(record.value)
    except ValidationError:
        # An older version to upcast, or a broken record: the registry upcasts it, or says what
        # is wrong with it (with no record content) for the dead letter.
        try:
            event = parse_event(record.value)
        except SchemaError as error:
            raise UndecodableRecordError(f"{type(error).__name__}: {error}") from None
    if event.position is None:
        raise UndecodableRecordError("event has no position")
    if not 0 < event.position <= MAX_POSITION:
        raise UndecodableRecordError("position out of range: not between 1 and 2^63 - 1")
    if record.key != event.subject.encode():
        raise UndecodableRecordError("record key is not the event's subject")
    return event, event.position


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: "ConsumerRunner") -> None:
        self._runner = runner

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        logger.info("consumer: %d partitions revoked", len(revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        try:
            self._runner.seek_to_stored(assigned)
        except DATABASE_UNAVAILABLE as error:
            # Raising would fail the poll (and the process); the runner seeks before its next
            # batch instead, once PostgreSQL answers.
            logger.warning(
                "consumer: stored offsets unreadable on assignment (%s); seeking later",
                type(error).__name__,
            )
            self._runner.seek_pending = True


class ConsumerRunner:
    """One member of the projections' consumer group."""

    def __init__(self, config: ConsumerConfig) -> None:
        self.config = config
        self.tracking = Tracking(config.group, config.topic)
        self.store = PostgresProjectionStore.connect(config.dsn, schema=config.schema)
        with self.store.transaction():
            self.store.migrate()
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.bootstrap,
            group_id=config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="consent-ledger-consumer",
            # A topic created after the consumer started is found within seconds, not after
            # the client's default five minutes of stale metadata.
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            # The relay creates the topic with its partitions; a consumer started first must
            # not have the broker create it with one partition instead.
            allow_auto_create_topics=False,
        )
        # kafka-python 3.0 does not pass that option on to the metadata its requests use.
        self.consumer._cluster.config["allow_auto_create_topics"] = False
        # Per partition, the next offset this consumer last read from or wrote to the tables
        # (None: nothing stored); a stored value that differs means the tables moved on.
        self._committed: dict[int, int | None] = {}
        self.seek_pending = False
        """Kafka's positions may be off the stored offsets (a batch failed, or an assignment
        found PostgreSQL down): every assigned partition is sought before the next batch."""
        self.consumer.subscribe([config.topic], listener=_SeekToStoredOffsets(self))
        self.dead_letters = KafkaProducer(
            bootstrap_servers=config.bootstrap, acks="all", enable_idempotence=True
        )
        self._lag: dict[int, Any] = {}
        self._applied_position = 0
        self._last_position: dict[int, int] = {}
        """Per partition, the position of the last record taken since the last seek."""

    def _connect(self) -> None:
        """Connect again if the connection was closed or broken (a server restart ends it)."""
        if self.store.conn.closed:
            # Closing a broken connection releases its libpq state now.
            self.store.close()
            self.store = PostgresProjectionStore.connect(self.config.dsn, schema=self.config.schema)

    def seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        """Start each partition where the projection tables say, not where Kafka says."""
        self._connect()
        with self.store.transaction():
            stored = self.store.offsets(self.tracking)
        for tp in partitions:
            self._committed[tp.partition] = stored.get(tp.partition)
            # Records after the stored offset may come again: they are in sequence again.
            self._last_position.pop(tp.partition, None)
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                self.consumer.seek_to_beginning(tp)
        # Offsets only: where each partition resumes, which the last commit of a member killed
        # before it could log "applied" (below) also proves was applied.
        logger.debug(
            "consumer: resumed offsets %s",
            " ".join(f"{p}:{stored.get(p, 0)}" for p in sorted(tp.partition for tp in partitions)),
        )

    def run_once(self) -> int:
        """Poll one batch and apply it; returns how many records it took.

        PostgreSQL's errors pass through (`DATABASE_UNAVAILABLE` when it is down): the batch is
        then not applied, and the next call seeks back to the stored offsets first.
        """
        if self.seek_pending:
            self.seek_to_stored(list(self.consumer.assignment()))
            self.seek_pending = False
        polled = self.consumer.poll(
            timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_records
        )
        if self.seek_pending:
            # An assignment during this poll could not be sought: what it fetched may start
            # anywhere. Dropped; the next call seeks and fetches again.
            return 0
        if not polled:
            self._measure_lag()
            return 0
        events: list[tuple[EventBase, int]] = []
        next_offsets: dict[int, int] = {}
        first_offsets: dict[int, int] = {}
        dead: list[tuple[Any, str]] = []
        for tp, records in polled.items():
            for record in records:
                try:
                    events.append(self._in_sequence(tp.partition, record))
                except UndecodableRecordError as error:
                    if record.offset >= self.config.dead_lettered_below.get(tp.partition, 0):
                        dead.append((record, error.reason))
            first_offsets[tp.partition] = records[0].offset
            next_offsets[tp.partition] = records[-1].offset + 1
        try:
            self._connect()
            with self.store.transaction():
                stored = self.store.offsets(self.tracking, lock=True)
                moved = any(stored.get(p) != self._committed.get(p) for p in next_offsets)
                if not moved:
                    # Only for a batch that is applied: one dropped because the offsets moved
                    # (a rebuild swapped in, which dead-lettered these) is not this one's.
                    self._send_dead_letters(dead)
                    self.store.apply(events)
                    self.store.save_offsets(self.tracking, next_offsets)
        except DATABASE_UNAVAILABLE:
            # Rolled back, or committed with the answer lost: either way Kafka's positions are
            # past this batch, and only the stored offsets say where to go on from.
            self.seek_pending = True
            raise
        if moved:
            # The stored offsets are no longer the ones this consumer wrote: the tables were
            # swapped for rebuilt ones (`consent-ledger replay`), or another member took the
            # partition. The batch is dropped and the consumer continues where the tables say:
            # the next call seeks there first.
            logger.info("consumer: stored offsets changed under us, seeking to them")
            self.seek_pending = True
            return 0
        self._committed.update(next_offsets)
        # Offsets only, no record content: a test holds the committed ranges of every member
        # of the group to tiling the topic (each record applied once, across rebalances).
        logger.debug(
            "consumer: applied offsets %s",
            " ".join(f"{p}:{first_offsets[p]}-{n}" for p, n in sorted(next_offsets.items())),
        )
        taken = sum(len(records) for records in polled.values())
        CONSUMED_RECORDS.inc(taken)
        if events:
            self._applied_position = max(self._applied_position, *(p for _, p in events))
            PROJECTION_POSITION.set(self._applied_position)
            observe_unsubscribes(event for event, _ in events)
        self._measure_lag()
        return taken

    def _in_sequence(self, partition: int, record: Any) -> tuple[EventBase, int]:
        """The record decoded, if its position follows the partition's last one: the relay
        publishes in ledger order, so an earlier position is a copy (a replay, or the relay
        publishing a batch again), never news."""
        event, position = decode(record, topic=self.config.topic, keys=self.config.keys)
        last = self._last_position.get(partition)
        if last is not None and position <= last:
            raise UndecodableRecordError(
                f"out of sequence: position {position} after position {last} on this partition"
            )
        self._last_position[partition] = position
        return event, position

    def _measure_lag(self) -> None:
        """Set each assigned partition's lag: the last fetch's high watermark minus the offset the
        tables hold (what a check can see), with no request to the broker."""
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            child = self._lag.get(tp.partition)
            if child is None:
                child = self._lag[tp.partition] = CONSUMER_LAG.labels(str(tp.partition))
            child.set(max(highwater - (self._committed.get(tp.partition) or 0), 0))

    def _send_dead_letters(self, dead: list[tuple[Any, str]]) -> None:
        # Sent and acknowledged before the batch commits: a crash in between re-sends them,
        # which duplicates a dead letter but never loses one.
        for record, reason in dead:
            headers = [
                *(record.headers or []),
                ("error", reason[:MAX_ERROR_HEADER].encode()),
                (
                    "source",
                    json.dumps(
                        {
                            "topic": record.topic,
                            "partition": record.partition,
                            "offset": record.offset,
                        }
                    ).encode(),
                ),
            ]
            self.dead_letters.send(
                self.config.dead_letter_topic, key=record.key, value=record.value, headers=headers
            )
            logger.warning(
                "consumer: record %s/%d/%d to the dead-letter topic: %s",
                record.topic,
                record.partition,
                record.offset,
                reason.split(":", 1)[0],
            )
        if dead:
            self.dead_letters.flush()
            DEAD_LETTERS.inc(len(dead))

    def run(self, stop: threading.Event) -> None:
        """Apply batches until ``stop``; the batch in hand is always finished first.

        While PostgreSQL or the broker does not answer, wait with a growing pause and try
        again, from the offsets stored with the tables.
        """
        follow(
            self.run_once,
            stop,
            transient=(*DATABASE_UNAVAILABLE, KafkaError, OSError),
            on_failure=self._failed,
            backoff_max_s=self.config.backoff_max_s,
        )

    def _failed(self, error: Exception, pause: float) -> None:
        # A poll or a dead-letter send the broker's absence broke applied nothing of its
        # batch, but Kafka's positions may be past it: go on from the stored ones.
        self.seek_pending = True
        logger.warning(
            "consumer: %s unavailable (%s); retrying in %.1f s",
            "database" if isinstance(error, DATABASE_UNAVAILABLE) else "broker",
            type(error).__name__,
            pause,
        )

    def close(self) -> None:
        self.consumer.close()
        self.dead_letters.close()
        self.store.close()
