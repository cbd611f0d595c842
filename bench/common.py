"""What the benchmarks share: their command line, a schema per run, a ledger or events, medians."""

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from consumers.runner import ConsumerConfig
from ledger.domain.commands import PublishPolicyVersion, RegisterPurpose
from ledger.domain.identity import SubjectHasher
from ledger.privacy.keystore import PostgresDataKeyStore
from ledger.store.events import LedgerStore, PostgresStoreConfig
from ledger.write.group_commit import GroupCommitConfig
from ledger.write.service import Ledger, LedgerConfig
from schemas.record_auth import RecordKeys

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BENCH_TOPIC_KEYS = RecordKeys({"bench": b"b" * 32})
"""The topic keys of the benchmarks' relays and consumers."""
SERVICES_HINT = "scripts/services.sh up && source var/services/env"


def bench_parser(description: str | None) -> argparse.ArgumentParser:
    """A bench script's command line, its help the script's docstring with examples as written."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def from_env(parser: argparse.ArgumentParser, *names: str) -> list[str]:
    """The value of each named variable; a usage error naming those not set."""
    values = [os.environ.get(name, "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        parser.error(f"{' and '.join(missing)} must be set ({SERVICES_HINT})")
    return values


def consumer_config(
    bootstrap: str, dsn: str, schema: str, topic: str, *, max_records: int
) -> ConsumerConfig:
    """A consumer of a run's own ``topic`` into ``schema``: its own group and dead letters."""
    return ConsumerConfig(
        bootstrap=bootstrap,
        dsn=dsn,
        keys=BENCH_TOPIC_KEYS,
        schema=schema,
        group=f"g-{topic}",
        topic=topic,
        dead_letter_topic=f"{topic}.d",
        max_records=max_records,
    )


@contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A new PostgreSQL schema for one run, dropped with everything in it afterwards."""
    schema = f"bench_{uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def postgres_ledger(dsn: str, schema: str, *, max_batch: int) -> Ledger:
    """A ledger in ``schema``, its group commit taking up to ``max_batch`` commands at once."""
    keys = PostgresDataKeyStore(dsn=dsn, master_key=b"m" * 32, schema=schema)
    keys.migrate()
    return Ledger(
        store=LedgerStore(PostgresStoreConfig(dsn=dsn, schema=schema, pool_size=4)),
        keys=keys,
        hasher=SubjectHasher(secret=b"s" * 32),
        config=LedgerConfig(group_commit=GroupCommitConfig(max_batch=max_batch, max_wait_s=0.002)),
    )


def publish_newsletter(ledger: Ledger) -> None:
    """The purpose "newsletter" under policy "v1", both from T0: what the load consents to."""
    ledger.execute(
        RegisterPurpose(
            purpose="newsletter", legal_basis="consent", description="n", occurred_at=T0
        )
    )
    ledger.execute(
        PublishPolicyVersion(
            version="v1",
            text_sha256="e" * 64,
            effective_at=T0,
            purposes=("newsletter",),
            occurred_at=T0,
        )
    )


def fill_events(dsn: str, schema: str, topic: str, states: Iterable[bytes]) -> LedgerStore:
    """A store on ``schema`` whose event table holds one event of ``topic`` per state, each its
    own aggregate, written by COPY: many events in seconds, without the ledger's cost."""
    store = LedgerStore(PostgresStoreConfig(dsn=dsn, schema=schema, pool_size=2))
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        copy_sql = sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(sql.Identifier(schema, "ledger_events"))
        with cursor.copy(copy_sql) as copy:
            for state in states:
                copy.write_row((uuid4(), 1, topic, state))
        conn.commit()
    return store


def median_of_runs(runs: int, run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Each figure's median over ``runs`` runs; every run's figures go to stderr as it ends."""
    results = []
    for number in range(runs):
        result = run()
        print(f"run {number + 1}: {json.dumps(result)}", file=sys.stderr)
        results.append(result)
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


LATENCY_KEYS = ("p50_ms", "p99_ms", "max_ms", "rate_achieved")


def open_loop_parser(
    description: str | None, *, targets: Sequence[str], rate: float
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The parser of an open-loop HTTP benchmark: its options, and the hidden ``_load``
    subcommand a run starts once per target (returned second, for extra load options)."""
    parser = bench_parser(description)
    sub = parser.add_subparsers(dest="what")
    load = sub.add_parser("_load", help=argparse.SUPPRESS)
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--target", choices=list(targets), required=True)
    load.add_argument("--rate", type=float, required=True)
    load.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, default=rate)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=["production", "embedded"], default="production")
    return parser, load


def latency_medians(
    runs: Sequence[dict[str, Any]], targets: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Each target's latency figures, the median over ``runs``."""
    return {
        target: {
            key: float(statistics.median(run[target][key] for run in runs)) for key in LATENCY_KEYS
        }
        for target in targets
    }
