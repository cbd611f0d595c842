"""Unsubscribe to enforced: from the unsubscribe's acknowledgement to the check answering "denied".

    python bench/enforce_bench.py --seconds 30 --rate 1000 --runs 3

The whole pipeline runs on the real servers: the ledger on PostgreSQL, the relay publishing to a
fresh topic, a consumer applying it, while a background load of `--rate` other events per second
flows. Every 100 ms one person who had consented unsubscribes; a checker then asks, with the
unsubscribe's position as `min_position`, until the answer is "denied". The latency counted is
from the unsubscribe command's return (its acknowledgement) to that answer. The baseline, in the
same run, is the same check on a person already projected: the floor any latency sits on.
"""

import json
import math
import statistics
import threading
import time
from dataclasses import replace
from uuid import uuid4

import psycopg
from common import (
    BENCH_TOPIC_KEYS,
    T0,
    bench_parser,
    consumer_config,
    fresh_schema,
    from_env,
    median_of_runs,
    postgres_ledger,
    publish_newsletter,
)

from consumers.runner import ConsumerRunner
from ledger.domain.commands import GrantConsent, Unsubscribe
from ledger.store.events import LedgerStore, PostgresStoreConfig
from projections.checker import CheckerConfig, SendChecker, StaleProjectionError
from relay.positions import PostgresPositions
from relay.publisher import Relay, RelayConfig
from relay.topics import ensure_topics

PEOPLE = 2_000


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run(dsn: str, bootstrap: str, *, seconds: float, rate: float) -> dict[str, float]:
    with fresh_schema(dsn) as schema:
        return _measure(dsn, bootstrap, schema, seconds=seconds, rate=rate)


def _measure(  # noqa: PLR0915
    dsn: str, bootstrap: str, schema: str, *, seconds: float, rate: float
) -> dict[str, float]:
    topic = f"bench-{uuid4().hex[:8]}.v1"
    ledger = postgres_ledger(dsn, schema, max_batch=256)
    relay = Relay(
        store=LedgerStore(PostgresStoreConfig(dsn=dsn, schema=schema, pool_size=2)),
        positions=PostgresPositions(dsn=dsn, schema=schema),
        config=RelayConfig(
            bootstrap=bootstrap,
            keys=BENCH_TOPIC_KEYS,
            partitions=6,
            events_topic=topic,
            dead_letter_topic=f"{topic}.d",
        ),
    )
    stop = threading.Event()
    threads: list[threading.Thread] = []
    runner: ConsumerRunner | None = None
    try:
        ensure_topics(relay.config)
        publish_newsletter(ledger)
        ledger.record_many(
            [
                GrantConsent(
                    subject=f"p{n}", purpose="newsletter", policy_version="v1", occurred_at=T0
                )
                for n in range(PEOPLE)
            ]
        )
        runner = ConsumerRunner(
            replace(
                consumer_config(bootstrap, dsn, schema, topic, max_records=2_000),
                poll_timeout_ms=20,
            )
        )
        threads = [
            threading.Thread(
                target=relay.run, args=(stop,), kwargs={"poll_s": 0.005}, name="relay"
            ),
            threading.Thread(target=runner.run, args=(stop,), name="consumer"),
        ]

        sent = [0]

        def background() -> None:
            interval = 1 / rate
            n = 0
            next_at = time.perf_counter()
            while not stop.is_set():
                ledger.submit(
                    Unsubscribe(subject=f"load-{n % 5000}", list_id=f"l{n}", occurred_at=T0)
                )
                n += 1
                sent[0] = n
                next_at += interval
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)

        load = threading.Thread(target=background, name="load")
        for thread in threads:
            thread.start()
        conn = psycopg.connect(dsn, autocommit=True)
        checker = SendChecker(
            conn,
            head=ledger.store.head,
            config=CheckerConfig(
                schema=schema,
                group=f"g-{topic}",
                topic=topic,
                max_lag=10**9,
                max_staleness_s=math.inf,
                wait_s=5,
                poll_s=0.005,
            ),
        )
        # Wait (the consumer joins its group first) for the grants to be projected.
        warm_until = time.monotonic() + 120
        while checker.covered() < PEOPLE + 2:
            if time.monotonic() > warm_until:
                alive = {t.name: t.is_alive() for t in threads}
                msg = (
                    f"the pipeline did not project the initial grants in 120 s: covered "
                    f"{checker.covered()}, relayed {relay.position}, head {ledger.store.head()}, "
                    f"threads {alive}"
                )
                raise RuntimeError(msg)
            time.sleep(0.1)
        # The load starts once the consumer has joined its group and caught up: in one
        # process, a saturated interpreter was seen to keep the group join from completing.
        threads.append(load)
        load.start()
        latencies: list[float] = []
        floor: list[float] = []
        measured_from, sent_before = time.monotonic(), sent[0]
        deadline = measured_from + seconds
        person = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            checker.check("p0", "newsletter")
            floor.append(time.perf_counter() - started)
            result = ledger.execute(Unsubscribe(subject=f"p{person + 1}", occurred_at=T0))
            acknowledged = time.perf_counter()
            while True:
                try:
                    answer = checker.check(
                        f"p{person + 1}", "newsletter", min_position=result.position
                    )
                except StaleProjectionError:
                    continue
                if not answer.decision.allowed:
                    break
            latencies.append(time.perf_counter() - acknowledged)
            person = (person + 1) % (PEOPLE - 1)
            time.sleep(0.1)
        load_rate = (sent[0] - sent_before) / (time.monotonic() - measured_from)
        conn.close()
        return {
            "background_events_per_s": load_rate,
            "unsubscribes": float(len(latencies)),
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * _p99(latencies),
            "max_ms": 1000 * max(latencies),
            "check_floor_p99_ms": 1000 * _p99(floor),
        }
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if runner is not None:
            runner.close()
        ledger.close()
        relay.close()


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    dsn, bootstrap = from_env(parser, "CONSENT_PG_DSN", "CONSENT_KAFKA_BOOTSTRAP")
    median = median_of_runs(
        args.runs, lambda: run(dsn, bootstrap, seconds=args.seconds, rate=args.rate)
    )
    print(json.dumps({"rate": args.rate, "runs": args.runs, "median": median}, indent=2))


if __name__ == "__main__":
    main()
