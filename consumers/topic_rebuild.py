"""Rebuilding the projection from the event topic, read from its beginning by a private group."""

import uuid
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from consumers.runner import ConsumerConfig, ConsumerRunner
from projections.rebuild import Progress, RebuildResult, RebuildTarget, rebuild_into_staging
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
    assignment is left alone.
    """

    def fill() -> tuple[int, dict[int, int]]:
        ends = topic_ends(bootstrap, target.topic)
        runner = ConsumerRunner(
            ConsumerConfig(
                bootstrap=bootstrap,
                dsn=target.dsn,
                keys=keys,
                schema=target.staging,
                group=f"{target.group}.rebuild.{uuid.uuid4().hex[:12]}",
                topic=target.topic,
                dead_letter_topic=dead_letter_topic,
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
