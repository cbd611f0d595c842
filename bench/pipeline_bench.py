"""Pipeline benchmarks against the real broker: relay publish rate and consumer apply rate.

    python bench/pipeline_bench.py --events 200000 --runs 3

Fills a fresh PostgreSQL event table with N events by COPY (real envelopes), then times, in
the same run: the relay publishing all of them to a fresh topic (acks=all, idempotent), with as
baseline a bare kafka-python producer sending the same values; and the consumer runner applying
them to fresh projection tables, with as baselines a raw COPY of the same number of rows into
a table of the same shape, and a bare kafka-python consumer fetching and going through the
same records (the most any consumer built on that client can reach).
"""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
from common import (
    BENCH_TOPIC_KEYS,
    bench_parser,
    consumer_config,
    fill_events,
    fresh_schema,
    from_env,
    median_of_runs,
)
from kafka import KafkaConsumer, KafkaProducer
from psycopg import sql

from consumers.runner import ConsumerConfig, ConsumerRunner
from relay.positions import PostgresPositions
from relay.publisher import Relay, RelayConfig, record_for
from relay.topics import ensure_topics

MAX_RECORDS = 5_000
IDLE_POLLS = 3
POLL_MS = 500


def _state(n: int) -> bytes:
    envelope = {
        "actor": "api",
        "channel": "email",
        "command_id": str(uuid4()),
        "double_opt_in": "not_applicable",
        "event_id": str(uuid4()),
        "event_type": "ConsentGranted",
        "evidence": None,
        "occurred_at": "2026-01-01T00:00:00Z",
        "personal": None,
        "policy_version": "v1",
        "position": None,
        "purpose": "newsletter",
        "recorded_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "schema_version": 2,
        "source": "api",
        "subject": f"p-{n}",
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def _records(polled: dict[Any, list[Any]]) -> int:
    # Each record's value is read, as the runner reads it.
    return sum(1 for records in polled.values() for record in records if record.value)


def _until_idle(poll: Callable[[], int]) -> tuple[int, float]:
    """What ``poll`` takes until IDLE_POLLS polls in a row take nothing, and the seconds from
    now to the last poll that took something (the empty polls that tell the end don't count)."""
    started = finished = time.perf_counter()
    taken = 0
    idle = 0
    while idle < IDLE_POLLS:
        polled = poll()
        taken += polled
        if polled:
            idle = 0
            finished = time.perf_counter()
        else:
            idle += 1
    return taken, finished - started


def _bare_consume(bootstrap: str, topic: str, events: int) -> float:
    """Records per second of a bare kafka-python consumer going through the topic, timed as the
    runner is below: from the end of the first poll (joining) to the last record."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bare-{topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.subscribe([topic])

    def poll() -> int:
        return _records(consumer.poll(timeout_ms=POLL_MS, max_records=MAX_RECORDS))

    first = poll()
    taken, seconds = _until_idle(poll)
    consumer.close()
    if first + taken != events:
        msg = f"the bare consumer read {first + taken} records, not {events}"
        raise RuntimeError(msg)
    return taken / seconds


def _apply_all(config: ConsumerConfig) -> tuple[int, int, float]:
    """The consumer runner applying the whole topic: records of the first poll, records after
    it, and the seconds these took.

    Joining the group is not applying: the clock starts once the first poll has returned, and
    stops when the last event is in (the empty polls that tell the end don't count).
    """
    runner = ConsumerRunner(config)
    first = runner.run_once()
    applied, seconds = _until_idle(runner.run_once)
    runner.close()
    return first, applied, seconds


def run(dsn: str, bootstrap: str, events: int) -> dict[str, float]:
    topic = f"bench-{uuid4().hex[:8]}.v1"
    with fresh_schema(dsn) as schema:
        store = fill_events(dsn, schema, "ConsentGranted/v2", (_state(n) for n in range(events)))

        relay = Relay(
            store=store,
            positions=PostgresPositions(dsn=dsn, schema=schema),
            config=RelayConfig(
                bootstrap=bootstrap,
                keys=BENCH_TOPIC_KEYS,
                partitions=6,
                events_topic=topic,
                dead_letter_topic=f"{topic}.d",
                batch=10_000,
            ),
        )
        ensure_topics(relay.config)
        records = [
            record_for(row, topic=topic, keys=BENCH_TOPIC_KEYS) for row in store.stream_rows()
        ]
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )
        started = time.perf_counter()
        for record in records:
            producer.send(
                f"{topic}.baseline", key=record.key, value=record.value, headers=record.headers
            )
        producer.flush()
        bare_s = time.perf_counter() - started
        producer.close()
        del records

        started = time.perf_counter()
        while relay.publish_once():
            pass
        relay_s = time.perf_counter() - started

        bare_consumer_per_s = _bare_consume(bootstrap, topic, events)
        first, applied, consume_s = _apply_all(
            consumer_config(bootstrap, dsn, schema, topic, max_records=MAX_RECORDS)
        )
        with psycopg.connect(dsn) as conn:
            count = conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema, "consent_state"))
            ).fetchone()
            if count is None or count[0] != events or first + applied != events:
                msg = f"the projection has {count} rows, not {events}"
                raise RuntimeError(msg)
            conn.execute(
                sql.SQL("create table {} (like {} including all)").format(
                    sql.Identifier(schema, "copy_baseline"), sql.Identifier(schema, "consent_state")
                )
            )
            started = time.perf_counter()
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    sql.SQL(
                        "COPY {} (subject, purpose, channel, status, since, last_position) "
                        "FROM STDIN"
                    ).format(sql.Identifier(schema, "copy_baseline"))
                ) as copy,
            ):
                now = datetime.now(UTC)
                for n in range(events):
                    copy.write_row((f"p-{n}", "newsletter", "email", "granted", now, n + 1))
            conn.commit()
            copy_s = time.perf_counter() - started
        relay.close()
        return {
            "relay_events_per_s": events / relay_s,
            "bare_producer_events_per_s": events / bare_s,
            "consumer_events_per_s": applied / consume_s,
            "bare_consumer_records_per_s": bare_consumer_per_s,
            "raw_copy_rows_per_s": events / copy_s,
            # Against the baselines of the same run, then the median of the runs' ratios.
            "consumer_over_raw_copy": applied / consume_s / (events / copy_s),
            "consumer_over_bare_consumer": applied / consume_s / bare_consumer_per_s,
        }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.events <= 2 * MAX_RECORDS:
        # The consumers are timed from their first poll on: a run must outlast it.
        parser.error(f"--events must be more than {2 * MAX_RECORDS} (two polls)")
    dsn, bootstrap = from_env(parser, "CONSENT_PG_DSN", "CONSENT_KAFKA_BOOTSTRAP")
    median = median_of_runs(args.runs, lambda: run(dsn, bootstrap, args.events))
    median["relay_over_bare_producer"] = (
        median["relay_events_per_s"] / median["bare_producer_events_per_s"]
    )
    print(json.dumps({"events": args.events, "runs": args.runs, "median": median}, indent=2))


if __name__ == "__main__":
    main()
