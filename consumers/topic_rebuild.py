"""Rebuilding the projection from the event topic, read from its beginning by a private group."""

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from consumers.runner import ConsumerConfig, ConsumerRunner, UndecodableRecordError, decode
from projections.rebuild import Progress, RebuildResult, RebuildTarget, rebuild_into_staging
from projections.store.base import Tracking
from projections.store.postgres import PostgresProjectionStore
from schemas.record_auth import RecordKeys


def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of every partition of ``topic`` now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="consent-ledger-rebuild")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        consumer.close()


def skip_dead_letters(
    *, bootstrap: str, topic: str, keys: RecordKeys, up_to: int
) -> Callable[[Mapping[int, int], Mapping[int, int]], Mapping[int, int]]:
    """Where the live consumers go on after a rebuild from the store up to ``up_to``.

    Per partition, between the relay's watermark and the offset the live group had reached,
    lie records the group already took: relayed events after ``up_to`` (not in the rebuilt
    tables: they must be taken again) and records it dead-lettered (forged, altered, out of
    range or sequence: taken again, they would be dead letters twice). The live group goes on
    from the first authentic record after ``up_to`` in that range, else from where it was.
    """

    def continue_at(relayed: Mapping[int, int], taken: Mapping[int, int]) -> Mapping[int, int]:
        offsets = dict(relayed)
        ranges = {
            p: (relayed.get(p, 0), end) for p, end in taken.items() if end > relayed.get(p, 0)
        }
        if not ranges:
            return offsets
        reader = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            client_id="consent-ledger-rebuild",
        )
        try:
            for partition, (start, end) in ranges.items():
                offsets[partition] = _first_relayed_after(
                    reader, TopicPartition(topic, partition), start, end, keys=keys, up_to=up_to
                )
        finally:
            reader.close()
        return offsets

    return continue_at


def _first_relayed_after(
    reader: KafkaConsumer,
    tp: TopicPartition,
    start: int,
    end: int,
    *,
    keys: RecordKeys,
    up_to: int,
) -> int:
    reader.assign([tp])
    reader.seek(tp, start)
    while (offset := reader.position(tp)) < end:
        records = reader.poll(timeout_ms=1_000).get(tp, [])
        if not records and reader.position(tp) == offset:
            break
        for record in records:
            if record.offset >= end:
                return end
            try:
                _, position = decode(record, topic=tp.topic, keys=keys)
            except UndecodableRecordError:
                continue
            if position > up_to:
                return int(record.offset)
    return end


def rebuild_from_kafka(
    conn: psycopg.Connection[Any],
    target: RebuildTarget,
    *,
    bootstrap: str,
    keys: RecordKeys,
    dead_letter_topic: str,
    progress: Progress | None = None,
) -> RebuildResult:
    """Fill the staging tables from the topic's beginning up to its end offsets at the start.

    The records go through the consumers' own runner (same decoding, same dead-letter topic,
    same batches and offsets in one transaction), under a group of its own so the live group's
    assignment is left alone. A record that fails and that the live group had taken is on the
    dead-letter topic already: it is skipped, not sent again.
    """

    def fill() -> tuple[int, dict[int, int]]:
        ends = topic_ends(bootstrap, target.topic)
        # The live group dead-lettered what failed of the records it took: not sent again.
        live = PostgresProjectionStore(conn, schema=target.schema)
        with live.transaction():
            already = live.offsets(Tracking(target.group, target.topic))
        runner = ConsumerRunner(
            ConsumerConfig(
                bootstrap=bootstrap,
                dsn=target.dsn,
                keys=keys,
                schema=target.staging,
                group=f"{target.group}.rebuild.{uuid.uuid4().hex[:12]}",
                topic=target.topic,
                dead_letter_topic=dead_letter_topic,
                dead_lettered_below=already,
            )
        )
        events = 0
        try:
            while True:
                with runner.store.transaction():
                    stored = runner.store.offsets(runner.tracking)
                if all(stored.get(p, 0) >= end for p, end in ends.items()):
                    break
                taken = runner.run_once()
                events += taken
                if progress is not None and taken:
                    progress(taken)
        finally:
            runner.close()
        return events, {p: max(stored.get(p, 0), end) for p, end in ends.items()}

    return rebuild_into_staging(conn, target, fill)
