"""The soak: steady mixed load on the whole pipeline while its parts are killed, then proof.

    python -m tests.reliability.soak --duration 600 --report var/reliability/report.json

During the load the broker is killed (SIGKILL) and restarted, the relay and one consumer are
killed (SIGKILL) and restarted, and PostgreSQL is restarted once; with ``--brokers 3`` (a
three-node KRaft cluster) the partition leader's node is killed and restarted 30 s later, then
the active controller's, then a consumer, then PostgreSQL restarts. Then the hostile inputs are
sent. Then, checked automatically: every acknowledged command is in the store exactly once;
every stored event is on the topic; the consumers' committed offsets cover the topic once (no
record applied twice); the projection equals a replay of the store (each event
applied once) and its consumers have read the whole topic; `audit verify` passes; no check
answered "allowed" for a person whose unsubscribe had been acknowledged more than the
fail-closed bound (CONSENT_CHECK_MAX_STALENESS_S) before the check was sent. The report
(printed, and written as JSON) says what was injected and what was verified, the worst
unsubscribe-to-enforced latency (median, p99, worst; overall and per fault) and the recovery
time after each fault.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from entrypoints.bootstrap import build_store
from entrypoints.bootstrap_keys import build_hasher, build_token_codec, build_topic_keys
from entrypoints.settings import Settings
from ledger.domain.identity import SubjectHasher
from ledger.links.tokens import UnsubscribeTokenCodec
from schemas import dead_letter_topic_for
from tests.applied import committed_ranges, resumed_offsets, tiling
from tests.helpers import projection_rows, replayed_rows
from tests.reliability.load import POLICY, PURPOSE, MixedLoad, Rates, Seen
from tests.reliability.stack import ROOT, TOPIC, Stack

STALENESS_BOUND_S = 1.0
"""CONSENT_CHECK_MAX_STALENESS_S of the run (the default)."""
DRAIN_TIMEOUT_S = 180.0
SCHEMA = "public"
NOT_PROJECTED = {"relay_watermarks", "follower_positions"}
"""Tables in the projection's schema that the relay writes, not the consumers."""


@dataclass
class FaultRecord:
    name: str
    injected_at: float
    restored_at: float = 0.0
    recovered_at: float | None = None
    probes_failed: int = 0
    worst_enforce_s: float | None = None
    median_enforce_s: float | None = None
    p99_enforce_s: float | None = None
    clicks: int = 0
    """Clicks acknowledged from the fault's injection to its recovery (or the next fault)."""

    @property
    def recovery_s(self) -> float | None:
        """From the restart to the end of the first probe started after it that got through."""
        return None if self.recovered_at is None else self.recovered_at - self.restored_at


@dataclass
class Verdict:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    duration_s: float
    started: str
    brokers: int = 1
    faults: list[FaultRecord] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    latency: dict[str, float | None] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    hostile: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    """Per `TIMELINE_STEP_S` of load: probes through / failed, clicks, worst enforcement."""

    @property
    def passed(self) -> bool:
        return all(v.ok for v in self.verdicts) and all(h["ok"] for h in self.hostile)

    def text(self) -> str:
        lines = [
            f"soak: {self.duration_s:.0f} s of load on {self.brokers} broker(s), "
            f"started {self.started}",
            "",
            "faults:",
        ]
        for fault in self.faults:
            recovery = "never" if fault.recovery_s is None else f"{fault.recovery_s:.2f} s"
            down = fault.restored_at - fault.injected_at
            enforced = "/".join(
                "-" if v is None else f"{v:.2f}"
                for v in (fault.median_enforce_s, fault.p99_enforce_s, fault.worst_enforce_s)
            )
            lines.append(
                f"  {fault.name:<22} down {down:5.1f} s, recovered {recovery} after restart, "
                f"{fault.probes_failed} probes failed, click-to-enforced p50/p99/worst "
                f"{enforced} s over {fault.clicks} clicks"
            )
        lines += ["", "timeline (s from the start of the load):"]
        for row in self.timeline:
            lines.append(
                f"  {row['t']:>5.0f} {row['faults']:<20} probes through {row['probes_ok']:>3}/"
                f"{row['probes']:<3} head {row['head']:>6} relayed {row['relayed']:>6} "
                f"applied {row['applied_records']:>6} clicks {row['clicks']:>3}, worst enforced "
                + ("-" if row["worst_enforce_s"] is None else f"{row['worst_enforce_s']:.2f} s")
            )
        lines += ["", "counts:"]
        lines += [f"  {name:<34} {value}" for name, value in self.counts.items()]
        lines += ["", "unsubscribe to enforced (s):"]
        lines += [
            f"  {name:<34} {'-' if value is None else f'{value:.3f}'}"
            for name, value in self.latency.items()
        ]
        lines += ["", "answers by stream and status:"]
        lines += [f"  {name:<34} {value}" for name, value in sorted(self.statuses.items())]
        lines += ["", "hostile input:"]
        for finding in self.hostile:
            mark = "ok  " if finding["ok"] else "FAIL"
            lines.append(
                f"  {mark} {finding['name']} ({finding['injected']} sent): {finding['detail']}"
            )
        lines += ["", "verified:"]
        for verdict in self.verdicts:
            lines.append(f"  {'ok  ' if verdict.ok else 'FAIL'} {verdict.name}: {verdict.detail}")
        lines += ["", "PASSED" if self.passed else "FAILED"]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for fault, record in zip(data["faults"], self.faults, strict=True):
            fault["recovery_s"] = record.recovery_s
        data["passed"] = self.passed
        return data


def _log(message: str) -> None:
    print(f"soak {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# --- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    at: float
    """When, as a fraction of the load's duration."""
    inject: Callable[[Stack], None]
    restore: Callable[[Stack], None]
    down_s: float


def _restart_postgres(stack: Stack) -> None:
    stack.postgres.restart()


def _process_faults() -> list[Fault]:
    """The faults of both modes after Kafka's: a consumer killed, PostgreSQL restarted."""
    return [
        Fault(
            "consumer SIGKILL",
            0.60,
            lambda s: s.consumers[0].kill(),
            lambda s: s.consumers[0].start(),
            3.0,
        ),
        Fault("postgres restart", 0.78, _restart_postgres, lambda s: None, 0.0),
    ]


LEADER_DOWN_S = 30.0
CONTROLLER_DOWN_S = 10.0


class _NodeKill:
    """SIGKILL of the cluster node ``pick`` names when the fault starts; its restart waits until
    every replica of the topics is in sync again, so the next fault finds two copies."""

    def __init__(self, pick: Callable[[Stack], int]) -> None:
        self._pick = pick
        self.node = 0

    def inject(self, stack: Stack) -> None:
        assert stack.cluster is not None
        self.node = self._pick(stack)
        _log(f"killing node {self.node}")
        stack.cluster.node(self.node).kill()

    def restore(self, stack: Stack) -> None:
        assert stack.cluster is not None
        stack.cluster.node(self.node).start()
        if not stack.cluster.wait_in_sync([TOPIC, dead_letter_topic_for(TOPIC)]):
            _log(f"node {self.node}: replicas not all in sync after its restart")


def _cluster_faults() -> list[Fault]:
    def leader(stack: Stack) -> int:
        assert stack.cluster is not None
        return stack.cluster.leader_of(TOPIC, 0)

    def controller(stack: Stack) -> int:
        assert stack.cluster is not None
        return stack.cluster.active_controller()

    leader_kill, controller_kill = _NodeKill(leader), _NodeKill(controller)
    return [
        Fault("leader SIGKILL", 0.05, leader_kill.inject, leader_kill.restore, LEADER_DOWN_S),
        Fault(
            "controller SIGKILL",
            0.40,
            controller_kill.inject,
            controller_kill.restore,
            CONTROLLER_DOWN_S,
        ),
        *_process_faults(),
    ]


def _broker_faults() -> list[Fault]:
    def kill(stack: Stack) -> None:
        assert stack.broker is not None
        stack.broker.kill()

    def start(stack: Stack) -> None:
        assert stack.broker is not None
        stack.broker.start()

    return [
        Fault("broker SIGKILL", 0.05, kill, start, 5.0),
        Fault("relay SIGKILL", 0.45, lambda s: s.relay.kill(), lambda s: s.relay.start(), 3.0),
        *_process_faults(),
    ]


async def _inject(
    stack: Stack, faults: list[Fault], duration: float, t0: float
) -> list[FaultRecord]:
    records = []
    for fault in faults:
        await asyncio.sleep(max(0.0, t0 + fault.at * duration - time.monotonic()))
        _log(f"fault: {fault.name}")
        record = FaultRecord(fault.name, injected_at=time.monotonic())
        await asyncio.to_thread(fault.inject, stack)
        await asyncio.sleep(fault.down_s)
        await asyncio.to_thread(fault.restore, stack)
        record.restored_at = time.monotonic()
        _log(f"restored: {fault.name}")
        records.append(record)
    return records


async def _supervise(stack: Stack, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(stack.supervise)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


TIMELINE_STEP_S = 5.0


def _timeline(
    records: list[FaultRecord], seen: Seen, t0: float, duration: float
) -> list[dict[str, Any]]:
    rows = []
    step = TIMELINE_STEP_S
    for index in range(int(duration // step) + 1):
        start, end = t0 + index * step, t0 + (index + 1) * step
        probes = [p for p in seen.probes if start <= p.started < end]
        clicks = [c for c in seen.clicks.values() if start <= c.acked_at < end]
        latencies = [c.enforced_at - c.acked_at for c in clicks if c.enforced_at is not None]
        active = [
            r.name
            for r in records
            if r.injected_at < end and (r.recovered_at or r.restored_at) >= start
        ]
        samples = [p for p in seen.pipeline if p[0] < end]
        _, head, relayed, applied = samples[-1] if samples else (0.0, 0, 0, 0)
        rows.append(
            {
                "t": index * step,
                "head": head,
                "relayed": relayed,
                "applied_records": applied,
                "faults": ",".join(name.split()[0] for name in active),
                "probes": len(probes),
                "probes_ok": sum(p.ok for p in probes),
                "clicks": len(clicks),
                "worst_enforce_s": max(latencies, default=None),
            }
        )
    return rows


def _score_faults(records: list[FaultRecord], seen: Seen) -> None:
    for index, record in enumerate(records):
        later = [p for p in seen.probes if p.started >= record.restored_at and p.ok]
        record.recovered_at = min((p.ended for p in later), default=None)
        until = record.recovered_at or record.restored_at
        record.probes_failed = sum(
            1 for p in seen.probes if record.injected_at <= p.started <= until and not p.ok
        )
        window_end = records[index + 1].injected_at if index + 1 < len(records) else until
        latencies = sorted(
            c.enforced_at - c.acked_at
            for c in seen.clicks.values()
            if c.enforced_at is not None
            and record.injected_at <= c.acked_at <= max(until, window_end)
        )
        record.clicks = len(latencies)
        if latencies:
            record.median_enforce_s = statistics.median(latencies)
            record.p99_enforce_s = latencies[int(len(latencies) * 0.99)]
            record.worst_enforce_s = latencies[-1]


# --- the run ----------------------------------------------------------------------------------


async def _load(
    stack: Stack, load: MixedLoad, duration: float, people: int
) -> tuple[list[FaultRecord], Seen, float]:
    await load.setup(people)
    _log(f"setup done: {people} consents; load for {duration:.0f} s")
    stop = asyncio.Event()
    watch_stop = asyncio.Event()
    t0 = time.monotonic()
    watcher = asyncio.create_task(load.watch(watch_stop))
    supervisor = asyncio.create_task(_supervise(stack, watch_stop))
    streams = asyncio.create_task(load.run(stop))
    faults = await _inject(
        stack, _broker_faults() if stack.cluster is None else _cluster_faults(), duration, t0
    )
    await asyncio.sleep(max(0.0, t0 + duration - time.monotonic()))
    stop.set()
    await streams
    _log("load stopped")
    return faults, await _finish(watcher, supervisor, watch_stop, load), t0


async def _finish(
    watcher: asyncio.Task[None],
    supervisor: asyncio.Task[None],
    watch_stop: asyncio.Event,
    load: MixedLoad,
) -> Seen:
    # The watcher keeps looking until every click is enforced (or the drain time is out).
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline and any(
        c.enforced_at is None for c in load.seen.clicks.values()
    ):
        await asyncio.sleep(0.2)
    watch_stop.set()
    await watcher
    await supervisor
    return load.seen


def _settings(stack: Stack) -> Settings:
    values: dict[str, Any] = {
        k.removeprefix("CONSENT_").lower(): v for k, v in stack.settings.items()
    }
    return Settings.model_validate(values)


def _drain(stack: Stack) -> int:
    """Wait until the relay, the consumers and the sealer have all reached the head."""
    store = build_store(_settings(stack))
    head = store.head()
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            stack.supervise()
            row = conn.execute(
                "select (select coalesce(max(idx) + 1, 0) from audit_leaves),"
                " (select coalesce(max(position), 0) from follower_positions where name = 'kafka')"
            ).fetchone()
            sealed, relayed = row if row else (0, 0)
            if relayed >= head and sealed >= head:
                break
            time.sleep(0.5)
    return head


def _topic_positions(bootstrap: str, topic: str) -> tuple[Counter[int], dict[int, int]]:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5_000)
    partitions = [
        TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())
    ]
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    ends = {tp.partition: offset for tp, offset in reader.end_offsets(partitions).items()}
    positions: Counter[int] = Counter()
    for record in reader:
        header = dict(record.headers or []).get("position", b"")
        if header.isdigit():
            positions[int(header)] += 1
    reader.close()
    return positions, ends


def _count_topic(bootstrap: str, topic: str) -> int:
    reader = KafkaConsumer(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
    total: int = sum(reader.end_offsets(partitions).values()) - sum(
        reader.beginning_offsets(partitions).values()
    )
    reader.close()
    return total


def _verify(stack: Stack, seen: Seen, report: Report) -> None:
    settings = _settings(stack)
    store = build_store(settings)
    head = _drain(stack)
    # Caught up? The consumers' offsets against the topic's end offsets.
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    positions, ends = _topic_positions(stack.bootstrap, TOPIC)
    offsets: dict[int, int] = {}
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            offsets = dict(
                conn.execute(
                    "select partition, next_offset from consumer_offsets where topic = %s", (TOPIC,)
                ).fetchall()
            )
            if all(offsets.get(p, 0) >= end for p, end in ends.items()):
                break
            stack.supervise()
            time.sleep(0.5)
    report.verdicts.append(
        Verdict(
            "consumers read the whole topic",
            all(offsets.get(p, 0) >= end for p, end in ends.items()),
            f"end offsets {ends}, consumer offsets {offsets}",
        )
    )

    by_command: dict[str, list[str]] = {}
    stored = 0
    for _position, _id, _version, _topic, state in store.stream_rows():
        envelope = json.loads(state)
        by_command.setdefault(envelope["command_id"], []).append(envelope["event_id"])
        stored += 1
    # The store holds the keyed hash of each caller's id, never the id itself.
    stored_id = build_hasher(settings).command_id_for
    missing = [
        a
        for a in seen.acked
        if sorted(by_command.get(stored_id(a.command_id), [])) != sorted(a.event_ids)
    ]
    clicks_wrong = [
        c for c in seen.clicks.values() if len(by_command.get(stored_id(c.command_id), [])) != 1
    ]
    report.verdicts.append(
        Verdict(
            "every acknowledged command in the store exactly once",
            not missing and not clicks_wrong,
            f"{len(seen.acked)} commands and {len(seen.clicks)} one-click unsubscribes "
            f"acknowledged; {len(missing)} commands and {len(clicks_wrong)} clicks not stored "
            "exactly once with their event ids",
        )
    )
    unpublished = set(range(1, head + 1)) - set(positions)
    report.verdicts.append(
        Verdict(
            "every stored event on the topic",
            not unpublished and stored == head,
            f"{head} stored, {len(positions)} distinct positions on the topic "
            f"({sum(positions.values()) - len(positions)} published twice after a crash), "
            f"{len(unpublished)} missing"
            + (f", e.g. {sorted(unpublished)[:5]}" if unpublished else ""),
        )
    )

    logs = sorted(stack.logs.glob("consume-*.log"))
    applied = tiling(committed_ranges(logs), ends, resumed_offsets(logs))
    report.verdicts.append(
        Verdict(
            "every record on the topic applied exactly once",
            applied.twice == 0 and applied.missing == 0,
            f"{applied.batches} committed batches of every consumer and rebalance cover "
            f"{sum(ends.values())} records: {applied.twice} applied twice, "
            f"{applied.missing} never ({applied.unlogged} last batches of killed consumers "
            "committed before they could log them, proven by the offset resumed from)",
        )
    )

    expected = replayed_rows(stack.postgres.dsn, SCHEMA, store)
    tables = tuple(t for t in expected if t not in NOT_PROJECTED)
    actual = projection_rows(stack.postgres.dsn, SCHEMA, tables)
    differing = [t for t in tables if actual[t] != expected[t]]
    report.verdicts.append(
        Verdict(
            "projection equals a replay of the store",
            not differing,
            f"{len(tables)} tables compared row by row"
            + (f"; differing: {differing}" if differing else ""),
        )
    )

    stack.cli("audit", "checkpoint")
    try:
        stack.cli("audit", "verify", timeout=600)
        report.verdicts.append(Verdict("audit verify", True, f"{head} leaves, every checkpoint"))
    except RuntimeError as error:
        report.verdicts.append(Verdict("audit verify", False, str(error)[-500:]))

    after_bound = [
        (sent, subject, allowed)
        for sent, subject, allowed in seen.answers
        if sent > seen.clicks[subject].acked_at + STALENESS_BOUND_S
    ]
    violations = [a for a in after_bound if a[2]]
    report.verdicts.append(
        Verdict(
            "no 'allowed' after an acknowledged unsubscribe",
            not violations,
            f"{len(after_bound)} answers about people whose click was acknowledged more than "
            f"{STALENESS_BOUND_S:.0f} s before the check was sent; {len(violations)} said allowed",
        )
    )
    crashed = {s.name: s.exits for s in stack.services if s.exits}
    report.verdicts.append(
        Verdict(
            "no process exited by itself",
            not crashed,
            f"exits: {crashed}" if crashed else f"{len(stack.services)} processes ran throughout",
        )
    )
    server_errors = {k: v for k, v in seen.statuses.items() if k.endswith(" 500")}
    report.verdicts.append(
        Verdict(
            "no 500 answer and no well-formed command refused",
            not server_errors and not seen.refused,
            f"500s: {server_errors}; refused: {seen.refused[:3]}",
        )
    )
    report.counts |= {
        "commands acknowledged": len(seen.acked),
        "one-click unsubscribes acknowledged": len(seen.clicks),
        "commands given up (never acknowledged)": sum(seen.given_up.values()),
        "events stored": stored,
        "positions published": len(positions),
        "records on the topic": sum(ends.values()),
        "records projected (consumer offsets)": sum(offsets.values()),
        "records applied twice (committed batches)": applied.twice,
        "dead letters": _count_topic(stack.bootstrap, dead_letter_topic_for(TOPIC)),
        "checks answered": seen.checks_answered,
        "probes": len(seen.probes),
        "ticks skipped (back-pressure)": sum(seen.skipped.values()),
    }
    report.statuses = dict(seen.statuses)


def _latency(seen: Seen, report: Report) -> None:
    latencies = sorted(c.enforced_at - c.acked_at for c in seen.clicks.values() if c.enforced_at)
    report.latency = {
        "median": statistics.median(latencies) if latencies else None,
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else None,
        "worst": latencies[-1] if latencies else None,
        "never enforced": float(sum(1 for c in seen.clicks.values() if c.enforced_at is None)),
    }


def _fuzz(examples: int) -> Verdict:
    env = os.environ | {"CONSENT_FUZZ_EXAMPLES": str(examples)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/e2e/test_http_fuzz.py",
        ],
        check=False,  # a failure is what the verdict reports
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    return Verdict(f"API fuzzing, {examples} examples per operation", done.returncode == 0, tail)


def _hostile(
    stack: Stack, tokens: UnsubscribeTokenCodec, hasher: SubjectHasher, rounds: int
) -> list[dict[str, Any]]:
    from tests.reliability.hostile import HostileTarget, run_hostile  # noqa: PLC0415

    findings = run_hostile(
        HostileTarget(
            api=stack.api,
            keys=stack.keys,
            bootstrap=stack.bootstrap,
            topic=TOPIC,
            topic_keys=build_topic_keys(_settings(stack)),
            tokens=tokens,
            hasher=hasher,
            purpose=PURPOSE,
            policy_version=POLICY,
        ),
        rounds=rounds,
    )
    return [asdict(f) for f in findings]


def run(
    *, duration: float, people: int, rounds: int, fuzz_examples: int, home: Path, brokers: int = 1
) -> Report:
    libs = Path(os.environ["KAFKA_TEST_LIBS"])
    stack = Stack(home, libs=libs, brokers=brokers)
    report = Report(
        duration_s=duration,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        brokers=brokers,
    )
    try:
        _log(f"starting the stack under {home}")
        stack.start()
        settings = _settings(stack)
        tokens = build_token_codec(settings)
        hasher = build_hasher(settings)

        async def main() -> tuple[list[FaultRecord], Seen, float]:
            async with MixedLoad(
                api=stack.api,
                keys=stack.keys,
                dsn=stack.postgres.dsn,
                schema=SCHEMA,
                tokens=tokens,
                hasher=hasher,
                rates=Rates(),
            ) as load:
                return await _load(stack, load, duration, people)

        faults, seen, t0 = asyncio.run(main())
        _score_faults(faults, seen)
        report.faults = faults
        report.timeline = _timeline(faults, seen, t0, duration)
        _latency(seen, report)
        if rounds:
            _log("hostile input")
            report.hostile = _hostile(stack, tokens, hasher, rounds)
        _log("verifying")
        _verify(stack, seen, report)
        if fuzz_examples:
            _log("fuzzing the API")
            report.verdicts.append(_fuzz(fuzz_examples))
    finally:
        stack.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.soak",
        description="Soak the whole pipeline under faults and hostile input, then verify.",
    )
    parser.add_argument("--duration", type=float, default=600.0, help="Seconds of load.")
    parser.add_argument("--people", type=int, default=300, help="Consents before the load.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Hostile inputs of each kind, times (0: none)."
    )
    parser.add_argument(
        "--fuzz-examples", type=int, default=0, help="Also fuzz the API, this many per operation."
    )
    parser.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="Kafka nodes: 1, or a three-node KRaft cluster with its own faults.",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "var" / "reliability" / "report.json")
    parser.add_argument("--keep", action="store_true", help="Keep the run's data and logs.")
    args = parser.parse_args(argv)
    (ROOT / "var" / "reliability").mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT / "var" / "reliability"))
    report = run(
        duration=args.duration,
        people=args.people,
        rounds=args.rounds,
        fuzz_examples=args.fuzz_examples,
        home=home,
        brokers=args.brokers,
    )
    text = report.text()
    print(text)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    args.report.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    if report.passed and not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"data and logs kept in {home}", file=sys.stderr)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
