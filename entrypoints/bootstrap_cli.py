"""The bootstrap of command-line processes: what `serve`, `check`, `consume` and `rights` run on.

Built from `entrypoints.bootstrap`'s components, whose choice of adapters it follows.
"""

import threading
from contextlib import ExitStack, closing

import psycopg

from consumers.runner import ConsumerConfig, ConsumerRunner
from entrypoints.bootstrap import (
    build_audit,
    build_embedded_projection,
    build_store,
    checker_config,
)
from entrypoints.bootstrap_keys import build_topic_keys
from entrypoints.settings import Settings
from ledger.domain.errors import ConfigurationError
from ledger.store.events import LedgerStore
from projections.checker import Checker, SendChecker
from projections.embedded import EmbeddedChecker, EmbeddedProjection
from schemas import dead_letter_topic_for


def catch_up(settings: Settings) -> None:
    """Embedded: feed the projection what the store holds beyond it, as a command line that
    reads the projection must (no feed runs beside it). Production: the consumers do."""
    if (projection := build_embedded_projection(settings)) is not None:
        with closing(projection), closing(build_store(settings)) as store:
            _feed(projection, store)


def _feed(projection: EmbeddedProjection, store: LedgerStore) -> None:
    while projection.feed_once(store):
        pass


def build_cli_checker(settings: Settings, store: LedgerStore, resources: ExitStack) -> Checker:
    """One checker for a command line, released with ``resources``: embedded, over the
    projection it feeds from the store first; in production, over one connection."""
    config = checker_config(settings)
    projection = build_embedded_projection(settings)
    if projection is not None:
        resources.callback(projection.close)
        _feed(projection, store)
        return EmbeddedChecker(projection, store=store, config=config)
    conn = resources.enter_context(psycopg.connect(str(settings.pg_dsn), autocommit=True))
    return SendChecker(conn, head=store.head, config=config)


def start_embedded_followers(settings: Settings, stop: threading.Event) -> str:
    """Where ``serve`` keeps its data. Embedded, no Kafka nor other processes: start a feed of
    the projection from the store, and a sealer of its own (own connections)."""
    projection = build_embedded_projection(settings)
    if projection is None:
        return "production mode, data in PostgreSQL (CONSENT_PG_DSN)"
    store = build_store(settings)
    sealing = build_audit(settings)
    for name, target, args in (
        ("embedded-feed", projection.follow, (store, stop)),
        ("embedded-sealer", sealing.sealer.follow, (stop,)),
    ):
        threading.Thread(target=target, args=args, name=name, daemon=True).start()
    return f"embedded mode, data in {settings.sqlite_path.resolve()}"


def build_consumer(settings: Settings, *, group: str, topic: str, batch: int) -> ConsumerRunner:
    """The Kafka consumer of the projection tables in PostgreSQL (production mode)."""
    if not (settings.pg_dsn and settings.kafka_bootstrap):
        msg = "consume needs CONSENT_PG_DSN and CONSENT_KAFKA_BOOTSTRAP"
        raise ConfigurationError(msg)
    return ConsumerRunner(
        ConsumerConfig(
            bootstrap=settings.kafka_bootstrap,
            dsn=settings.pg_dsn,
            keys=build_topic_keys(settings),
            schema=settings.pg_schema,
            group=group,
            topic=topic,
            dead_letter_topic=dead_letter_topic_for(topic),
            max_records=batch,
        )
    )
