"""Two `consume` processes share the partitions; one killed, then back: each record once.

While the relay publishes steadily to six partitions, one of the two members of the group is
killed with SIGKILL and, later, started again (it joins). No partition waits for a member longer
than the session timeout (plus one poll and commit), the batches both processes committed tile
the topic (nothing applied twice, nothing skipped), and the projection equals a replay.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from consumers.runner import SESSION_TIMEOUT_MS
from projections.store.postgres import migrate
from tests.applied import committed_ranges, resumed_offsets, tiling
from tests.helpers import (
    grant_then_maybe_unsubscribe,
    projection_rows,
    replayed_rows,
)
from tests.topics import ledger_and_relay, production_env

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, tzinfo=UTC)
CLI = str(Path(sys.executable).parent / "consent-ledger")
PARTITIONS = 6
SESSION_TIMEOUT_S = SESSION_TIMEOUT_MS / 1000
TAKEOVER_MARGIN_S = 3.0
"""Beyond the session timeout: the rebalance, the survivor's seek, poll and commit."""
ALONE_S = 10.0
TOGETHER_AGAIN_S = 4.0
CATCH_UP_S = 90.0


def _consume(env: dict[str, str], topic: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [CLI, "consume", "--group", f"g-{topic}", "--topic", topic, "--batch", "100"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )


class _Offsets:
    """Polls the stored offsets; the longest any partition went without advancing."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._query = sql.SQL("select partition, next_offset from {}").format(
            sql.Identifier(schema, "consumer_offsets")
        )
        self._dsn = dsn
        self.seen: dict[int, int] = {}
        self._moved: dict[int, float] = {}
        self.longest_wait_s = 0.0
        self.watching = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                now = time.monotonic()
                for partition, offset in conn.execute(self._query).fetchall():
                    if offset != self.seen.get(partition):
                        self.seen[partition] = offset
                        self._moved[partition] = now
                if self.watching.is_set():
                    waits = [now - t for t in self._moved.values()]
                    self.longest_wait_s = max(self.longest_wait_s, *waits)
                time.sleep(0.1)


def test_a_member_killed_then_joining_again_applies_every_record_once(
    kafka_bootstrap: str, pg_dsn: str, schema: str, tmp_path: Path
) -> None:
    topic, ledger, relay = ledger_and_relay(
        tmp_path, bootstrap=kafka_bootstrap, partitions=PARTITIONS
    )
    env = production_env(pg_dsn, schema, kafka_bootstrap, CONSENT_LOG_LEVEL="debug")
    logs = [tmp_path / "consume-1.log", tmp_path / "consume-2.log"]
    with psycopg.connect(pg_dsn) as conn, conn.transaction():
        migrate(conn, schema=schema)  # the tables the offsets are watched in
    offsets = _Offsets(pg_dsn, schema)
    stop = threading.Event()
    threads = [
        threading.Thread(target=relay.run, args=(stop,), name="relay"),
        threading.Thread(target=offsets.run, name="offsets"),
    ]
    for thread in threads:
        thread.start()
    members = [_consume(env, topic, log) for log in logs]
    count = 0

    def write_for(seconds: float) -> None:
        nonlocal count
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            grant_then_maybe_unsubscribe(ledger, count, unsubscribe_every=3, at=T0)
            count += 1
            time.sleep(0.01)

    try:
        deadline = time.monotonic() + 60
        while len(offsets.seen) < PARTITIONS and time.monotonic() < deadline:
            write_for(0.5)
        assert len(offsets.seen) == PARTITIONS, "the group never applied every partition"
        offsets.watching.set()
        write_for(2.0)
        os.killpg(members[0].pid, signal.SIGKILL)
        members[0].wait(timeout=10)
        write_for(ALONE_S)
        before = sum(map(len, committed_ranges(logs[:1]).values()))
        members[0] = _consume(env, topic, logs[0])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            sum(map(len, committed_ranges(logs[:1]).values())) == before
        ):
            write_for(0.5)
        joined = sum(map(len, committed_ranges(logs[:1]).values())) > before
        write_for(TOGETHER_AGAIN_S)
        offsets.watching.clear()
        head = ledger.store.head()
        probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
        deadline = time.monotonic() + CATCH_UP_S
        ends: dict[int, int] = {}
        while time.monotonic() < deadline:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            ends = {tp.partition: o for tp, o in probe.end_offsets(partitions).items()}
            if relay.position == head and offsets.seen == ends:
                break
            time.sleep(0.5)
        probe.close()
    finally:
        for member in members:
            member.send_signal(signal.SIGTERM)
        exits = [member.wait(timeout=30) for member in members]
        stop.set()
        offsets.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        relay.close()

    assert joined, "the restarted member never took a partition back"
    assert exits == [0, 0]
    assert offsets.seen == ends, "the group did not apply the whole topic"
    assert offsets.longest_wait_s <= SESSION_TIMEOUT_S + TAKEOVER_MARGIN_S, (
        f"a partition waited {offsets.longest_wait_s:.1f} s for a member"
    )
    applied = tiling(committed_ranges(logs), ends, resumed_offsets(logs))
    assert (applied.twice, applied.missing) == (0, 0), applied
    # One SIGKILL: at most its last batch (one range per partition) committed but not logged.
    assert applied.unlogged <= PARTITIONS, applied
    expected = replayed_rows(pg_dsn, schema, ledger.store)
    assert projection_rows(pg_dsn, schema, tuple(expected)) == expected
    ledger.close()
