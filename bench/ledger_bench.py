"""Ledger write-side benchmarks on PostgreSQL: throughput by callers, latency at a fixed rate.

    python bench/ledger_bench.py throughput --runs 3 --seconds 10
    python bench/ledger_bench.py latency --rate 2000 --seconds 10 --runs 3

Needs CONSENT_PG_DSN (``scripts/services.sh up && source var/services/env``). Each run works in
a fresh PostgreSQL schema. The baseline is the same ledger with group commit off (a batch of
one: one ``save()`` per command), measured in the same process right before.
"""

import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from uuid import uuid4

from common import T0, bench_parser, fresh_schema, from_env, postgres_ledger, publish_newsletter

from ledger.domain.commands import Command, GrantConsent, Unsubscribe
from ledger.write.service import CommandResult, Ledger

EXISTING = 5_000


@contextmanager
def fresh_ledger(dsn: str, *, max_batch: int) -> Iterator[Ledger]:
    with fresh_schema(dsn) as schema:
        ledger = postgres_ledger(dsn, schema, max_batch=max_batch)
        try:
            publish_newsletter(ledger)
            seeded = ledger.record_many([_grant(f"old-{n}") for n in range(EXISTING)])
            if not all(isinstance(r, CommandResult) for r in seeded):
                msg = "seeding the existing persons failed"
                raise RuntimeError(msg)
            yield ledger
        finally:
            ledger.close()


def _grant(subject: str) -> GrantConsent:
    return GrantConsent(subject=subject, purpose="newsletter", policy_version="v1", occurred_at=T0)


class Mix:
    """Half new persons (a grant), half existing ones (an unsubscribe from a list)."""

    def __init__(self) -> None:
        self._n = count()
        self._lock = threading.Lock()

    def next(self) -> Command:
        with self._lock:
            n = next(self._n)
        if n % 2:
            return _grant(f"new-{uuid4().hex}")
        return Unsubscribe(subject=f"old-{n % EXISTING}", list_id=f"l{n}", occurred_at=T0)


@dataclass
class Throughput:
    callers: int
    commands_per_s: float
    p50_ms: float
    p99_ms: float


def closed_loop(ledger: Ledger, *, callers: int, seconds: float) -> Throughput:
    mix = Mix()
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(callers)]

    def caller(mine: list[float]) -> None:
        while time.monotonic() < stop:
            command = mix.next()
            started = time.perf_counter()
            ledger.execute(command)
            mine.append(time.perf_counter() - started)

    threads = [threading.Thread(target=caller, args=(lat,)) for lat in latencies]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    flat = sorted(x for lat in latencies for x in lat)
    return Throughput(
        callers=callers,
        commands_per_s=len(flat) / elapsed,
        p50_ms=1000 * flat[len(flat) // 2],
        p99_ms=1000 * flat[int(len(flat) * 0.99)],
    )


def open_loop(ledger: Ledger, *, rate: float, seconds: float) -> dict[str, float]:
    """Submit at a fixed rate whatever the answers; latency counts from the scheduled time."""
    mix = Mix()
    latencies: list[float] = []
    lock = threading.Lock()
    total = int(rate * seconds)
    done = threading.Semaphore(0)

    def finished(scheduled: float) -> Callable[[Future[CommandResult]], None]:
        def record(future: Future[CommandResult]) -> None:
            future.result()
            with lock:
                latencies.append(time.perf_counter() - scheduled)
            done.release()

        return record

    began = time.perf_counter()
    for n in range(total):
        scheduled = began + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ledger.submit(mix.next()).add_done_callback(finished(scheduled))
    for _ in range(total):
        done.acquire(timeout=60)
    elapsed = time.perf_counter() - began
    flat = sorted(latencies)
    return {
        "rate_asked": rate,
        "rate_achieved": len(flat) / elapsed,
        "p50_ms": 1000 * flat[len(flat) // 2],
        "p99_ms": 1000 * flat[int(len(flat) * 0.99)],
    }


def _median(values: list[float]) -> float:
    return statistics.median(values)


def throughput(
    dsn: str, *, runs: int, seconds: float, callers: list[int]
) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, list[float]]] = {}
    for run in range(runs):
        for label, batch in (("baseline (batch of 1)", 1), ("group commit", 256)):
            with fresh_ledger(dsn, max_batch=batch) as ledger:
                for n in callers:
                    result = closed_loop(ledger, callers=n, seconds=seconds)
                    row = rows.setdefault(f"{label}, {n} callers", {"cps": [], "p99": []})
                    row["cps"].append(result.commands_per_s)
                    row["p99"].append(result.p99_ms)
                    print(
                        f"run {run + 1}: {label:22} {n:3} callers "
                        f"{result.commands_per_s:9.0f} commands/s p99 {result.p99_ms:7.1f} ms",
                        file=sys.stderr,
                    )
    summary = {
        key: {"median_commands_per_s": _median(v["cps"]), "median_p99_ms": _median(v["p99"])}
        for key, v in rows.items()
    }
    for n in callers:
        base = summary[f"baseline (batch of 1), {n} callers"]["median_commands_per_s"]
        grouped = summary[f"group commit, {n} callers"]["median_commands_per_s"]
        summary[f"ratio, {n} callers"] = {"group_commit_over_baseline": grouped / base}
    return summary


def latency(dsn: str, *, runs: int, seconds: float, rate: float) -> dict[str, object]:
    results = []
    for run in range(runs):
        with fresh_ledger(dsn, max_batch=256) as ledger:
            result = open_loop(ledger, rate=rate, seconds=seconds)
        print(f"run {run + 1}: {result}", file=sys.stderr)
        results.append(result)
    return {
        "median_rate_achieved": _median([r["rate_achieved"] for r in results]),
        "median_p50_ms": _median([r["p50_ms"] for r in results]),
        "median_p99_ms": _median([r["p99_ms"] for r in results]),
        "runs": results,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    tp = sub.add_parser("throughput", help="commands/s at 1, 16 and 64 callers vs. batch of 1")
    tp.add_argument("--runs", type=int, default=3)
    tp.add_argument("--seconds", type=float, default=10)
    tp.add_argument("--callers", type=int, nargs="+", default=[1, 16, 64])
    lt = sub.add_parser("latency", help="p99 latency at a fixed offered rate")
    lt.add_argument("--runs", type=int, default=3)
    lt.add_argument("--seconds", type=float, default=10)
    lt.add_argument("--rate", type=float, default=2000)
    args = parser.parse_args()
    (dsn,) = from_env(parser, "CONSENT_PG_DSN")
    summary: Mapping[str, object]
    if args.what == "throughput":
        summary = throughput(dsn, runs=args.runs, seconds=args.seconds, callers=args.callers)
    else:
        summary = latency(dsn, runs=args.runs, seconds=args.seconds, rate=args.rate)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
