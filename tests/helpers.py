"""Building blocks several test modules share: an embedded ledger, a relay, projection rows."""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from consumers.runner import ConsumerConfig
from ledger.domain.commands import PublishPolicyVersion, RegisterPurpose
from ledger.domain.identity import SubjectHasher
from ledger.privacy.keystore import SQLiteDataKeyStore
from ledger.store.events import LedgerStore, SQLiteStoreConfig
from ledger.write.service import Ledger
from projections.rebuild import projection_tables
from projections.writer import ProjectionWriter, apply, migrate
from relay.positions import SQLitePositions
from relay.publisher import PositionStore, Relay, RelayConfig, ensure_topics
from schemas import parse_event

CATALOG_TIME = datetime(2024, 1, 1, tzinfo=UTC)
POLICY_SHA = "d" * 64


def empty_sqlite_ledger(path: Path) -> Ledger:
    """A ledger on one SQLite file, nothing recorded yet (fixed test secrets)."""
    keys = SQLiteDataKeyStore(path=path, master_key=b"k" * 32)
    keys.migrate()
    return Ledger(
        store=LedgerStore(SQLiteStoreConfig(path=path)),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
    )


def sqlite_ledger(
    path: Path,
    *,
    purposes: Sequence[str] = ("newsletter",),
    policy_version: str = "v1",
    policy_sha256: str = POLICY_SHA,
) -> Ledger:
    """A ledger on one SQLite file, with these (direct-marketing) purposes and one policy."""
    ledger = empty_sqlite_ledger(path)
    for purpose in purposes:
        ledger.execute(
            RegisterPurpose(
                purpose=purpose,
                legal_basis="consent",
                description=purpose,
                direct_marketing=True,
                occurred_at=CATALOG_TIME,
            )
        )
    ledger.execute(
        PublishPolicyVersion(
            version=policy_version,
            text_sha256=policy_sha256,
            effective_at=CATALOG_TIME,
            purposes=tuple(purposes),
            occurred_at=CATALOG_TIME,
        )
    )
    return ledger


def sqlite_relay(
    path: Path,
    *,
    bootstrap: str,
    topic: str,
    partitions: int = 3,
    positions: PositionStore | None = None,
    flush_timeout_s: float = 30.0,
    create_topics: bool = True,
) -> Relay:
    """A relay of the embedded ledger at ``path`` to a topic of the test's own."""
    config = RelayConfig(
        bootstrap=bootstrap,
        partitions=partitions,
        events_topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        flush_timeout_s=flush_timeout_s,
    )
    relay = Relay(
        store=LedgerStore(SQLiteStoreConfig(path=path)),
        positions=positions or SQLitePositions(path=path),
        config=config,
    )
    if create_topics:
        ensure_topics(config)
    return relay


def publish_all(relay: Relay) -> None:
    while relay.publish_once():
        pass


def consumer_config(
    bootstrap: str, dsn: str, schema: str, topic: str, *, max_records: int = 2_000
) -> ConsumerConfig:
    """A consumer of ``topic`` (as `sqlite_relay` fills it) into ``schema``, its own group."""
    # The relay helper creates "<topic>.dlq"; the consumer sends its dead letters there.
    return ConsumerConfig(
        bootstrap=bootstrap,
        dsn=dsn,
        schema=schema,
        group=f"g-{topic}",
        topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        max_records=max_records,
    )


def topic_positions(bootstrap: str, topic: str) -> list[int]:
    """The ledger position in the headers of every record on ``topic``, partition by partition."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5_000)
    partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    positions = [int(dict(record.headers)["position"]) for record in reader]
    reader.close()
    return positions


def projection_rows(
    dsn: str, schema: str, tables: Sequence[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of these projection tables, in a stable order (offsets left out)."""
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(
                sql.SQL("select * from {} order by 1, 2, 3").format(sql.Identifier(schema, table))
            ).fetchall()
            for table in tables
            if table != "consumer_offsets"
        }


def replayed_rows(dsn: str, schema: str, store: LedgerStore) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a projection holds after applying every stored event once, in ledger order.

    Built in a new schema ``<schema>_expected``, which the caller drops with ``schema``.
    """
    reference = f"{schema}_expected"
    events = [(parse_event(state), position) for position, *_, state in store.stream_rows()]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(reference)))
        with conn.transaction():
            migrate(conn, schema=reference)
            apply(conn, ProjectionWriter(schema=reference), events)
        tables = projection_tables(conn, reference)
    return projection_rows(dsn, reference, tables)
