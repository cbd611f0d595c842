"""The one place where settings become wired components: store, data keys, hasher, ledger."""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
from prometheus_client import start_http_server

from access.apikeys import ApiKeyStore, PostgresApiKeyStore, SQLiteApiKeyStore
from entrypoints.bootstrap_keys import (
    build_hasher,
    build_token_codec,
    build_topic_keys,
    deployment_secret,
    prepare_data_dir,
)
from entrypoints.bootstrap_sender import build_feedback, build_webhook_store
from entrypoints.health import HealthCheck
from entrypoints.http.services import ApiServices, CheckerPool
from entrypoints.metrics import Part, process_registry
from entrypoints.settings import (
    AUDIT_SIGNING_KEY_FILE,
    MASTER_KEY_FILE,
    Mode,
    Settings,
)
from ledger.audit.sealer import Sealer, SealerConfig
from ledger.audit.store import PostgresTreeStore, SQLiteTreeStore, TreeStore
from ledger.audit.tlog.note import NoteSigner, signer_from_seed
from ledger.domain.errors import ConfigurationError
from ledger.privacy.files import private_file
from ledger.privacy.keystore import DataKeyStore, PostgresDataKeyStore, SQLiteDataKeyStore
from ledger.store.base import StoreConfig
from ledger.store.events import LedgerStore
from ledger.store.postgres import PostgresStoreConfig, postgres_probe
from ledger.store.sqlite import SQLiteStoreConfig, sqlite_probe
from ledger.write.group_commit import GroupCommitConfig
from ledger.write.service import Clock, Ledger, LedgerConfig, utc_now
from projections.checker import CheckerConfig, SendChecker
from projections.counts import store_counts
from projections.embedded import EmbeddedChecker, EmbeddedProjection
from projections.freshness import Freshness
from projections.loop_checker import LoopSendChecks
from projections.metrics import BusinessMetrics
from projections.rights import OpenRequest
from projections.store.base import ProjectionStore
from projections.store.postgres import PostgresProjectionStore
from projections.store.postgres import migrate as migrate_projection
from projections.store.sqlite import SQLiteProjectionStore
from relay.positions import PostgresPositions, SQLitePositions
from relay.publisher import PositionStore, Relay, RelayConfig
from schemas import dead_letter_topic_for

MIN_DATABASE_WAIT_S = 1.0


def sqlite_file(settings: Settings) -> Path:
    """The embedded SQLite file, in its private directory, readable by its owner only."""
    prepare_data_dir(settings.data_dir)
    return private_file(settings.sqlite_path)


def build_ledger(settings: Settings, *, clock: Clock = utc_now) -> Ledger:
    """Wire the write side for this mode; a missing secret is a `ConfigurationError`."""
    hasher = build_hasher(settings)
    master_key = deployment_secret(
        settings,
        file_name=MASTER_KEY_FILE,
        value=settings.master_key,
        setting="CONSENT_MASTER_KEY",
    )
    store = build_store(settings)
    keys: DataKeyStore
    if settings.mode is Mode.EMBEDDED:
        keys = SQLiteDataKeyStore(path=sqlite_file(settings), master_key=master_key)
    else:
        keys = PostgresDataKeyStore(
            dsn=str(settings.pg_dsn),
            master_key=master_key,
            schema=settings.pg_schema,
            wait_s=database_wait_s(settings),
        )
    keys.migrate()
    config = LedgerConfig(
        cache_size=settings.ledger_cache_size,
        group_commit=GroupCommitConfig(
            max_batch=settings.group_commit_max_batch,
            max_wait_s=settings.group_commit_max_wait_ms / 1000,
        ),
    )
    return Ledger(
        store=store,
        keys=keys,
        hasher=hasher,
        config=config,
        clock=clock,
    )


def database_wait_s(settings: Settings) -> float:
    """How long a call waits for PostgreSQL before failing closed: a check's bound, so that a
    read of the ledger (HTTP, CLI, a check's head) is not held longer than a check while the
    database is down; at least 1 s, the time a pool opening at start takes to connect."""
    return max(settings.check_wait_s, MIN_DATABASE_WAIT_S)


def store_config(settings: Settings) -> StoreConfig:
    """The event store adapter of this mode: the one choice every other component follows."""
    if settings.mode is Mode.EMBEDDED:
        return SQLiteStoreConfig(path=sqlite_file(settings))
    if not settings.pg_dsn:
        msg = "production mode needs CONSENT_PG_DSN"
        raise ConfigurationError(msg)
    return PostgresStoreConfig(
        dsn=settings.pg_dsn,
        pool_size=settings.pg_pool_size,
        schema=settings.pg_schema,
        read_wait_s=database_wait_s(settings),
    )


def build_store(settings: Settings) -> LedgerStore:
    """The event store alone, for readers (audit, replay) that append nothing."""
    return LedgerStore(store_config(settings))


def build_health(settings: Settings) -> HealthCheck:
    """The probe of this mode's database behind ``GET /healthz``."""
    if settings.mode is Mode.PRODUCTION:
        if not settings.pg_dsn:
            msg = "production mode needs CONSENT_PG_DSN"
            raise ValueError(msg)
        return HealthCheck(mode=settings.mode, probe=postgres_probe(settings.pg_dsn))
    return HealthCheck(mode=settings.mode, probe=sqlite_probe(sqlite_file(settings)))


@dataclass(frozen=True, slots=True)
class Audit:
    """The audit side of one ledger: its event store, tree, signer and sealer."""

    store: LedgerStore
    tree: TreeStore
    signer: NoteSigner
    sealer: Sealer

    def close(self) -> None:
        self.tree.close()
        self.store.close()


def build_audit(settings: Settings) -> Audit:
    """Wire the audit tree next to the event store; a missing key is a `ConfigurationError`."""
    signer = signer_from_seed(
        settings.audit_origin,
        deployment_secret(
            settings,
            file_name=AUDIT_SIGNING_KEY_FILE,
            value=settings.audit_signing_key,
            setting="CONSENT_AUDIT_SIGNING_KEY",
        ),
    )
    store = build_store(settings)
    tree: TreeStore
    if settings.mode is Mode.EMBEDDED:
        tree = SQLiteTreeStore(path=sqlite_file(settings))
    else:
        tree = PostgresTreeStore(dsn=str(settings.pg_dsn), schema=settings.pg_schema)
    tree.migrate()
    sealer = Sealer(
        store=store,
        tree=tree,
        signer=signer,
        config=SealerConfig(
            origin=settings.audit_origin,
            checkpoint_every_events=settings.audit_checkpoint_every_events,
            checkpoint_every_seconds=settings.audit_checkpoint_every_seconds,
        ),
    )
    return Audit(store=store, tree=tree, signer=signer, sealer=sealer)


def build_api_keys(settings: Settings) -> ApiKeyStore:
    """The API keys of this deployment, next to its events."""
    config = store_config(settings)
    keys: ApiKeyStore = (
        PostgresApiKeyStore(dsn=config.dsn, schema=config.schema)
        if isinstance(config, PostgresStoreConfig)
        else SQLiteApiKeyStore(path=sqlite_file(settings))
    )
    keys.migrate()
    return keys


def checker_config(settings: Settings) -> CheckerConfig:
    """How checks judge the projection fresh enough, from the settings."""
    return CheckerConfig(
        schema=settings.pg_schema,
        topic=settings.kafka_topic,
        max_lag=settings.check_max_lag,
        max_staleness_s=settings.check_max_staleness_s,
        wait_s=settings.check_wait_s,
    )


def build_checkers(settings: Settings, ledger: Ledger) -> CheckerPool:
    """Checkers over this mode's projection, one per concurrent request at most."""
    config = checker_config(settings)
    # Shared by the pool's checkers: one freshness read serves the checks of a few ms.
    freshness = Freshness(
        ttl_s=settings.check_freshness_ms / 1000, keep_s=settings.check_max_staleness_s
    )
    if settings.mode is Mode.EMBEDDED:
        projection = EmbeddedProjection(path=sqlite_file(settings))
        return CheckerPool(
            lambda: EmbeddedChecker(
                projection, store=ledger.store, config=config, freshness=freshness
            ),
            size=settings.http_checkers,
            wait_s=settings.check_wait_s,
        )
    dsn = str(settings.pg_dsn)
    # The tables checks read belong to the relay and the consumers; made here too (each once,
    # taking turns with them), so that checks before those first ran are refused as not fresh.
    PostgresPositions(dsn=dsn, schema=settings.pg_schema).close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate_projection(conn, schema=settings.pg_schema)

    return CheckerPool(
        lambda: SendChecker(
            psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s(settings)),
            head=ledger.store.head,
            config=config,
            freshness=freshness,
        ),
        size=settings.http_checkers,
        wait_s=settings.check_wait_s,
        on_loop=LoopSendChecks(
            dsn,
            head=ledger.store.head,
            config=config,
            freshness=freshness,
            size=settings.http_checkers,
        ),
    )


def connect_timeout_s(settings: Settings) -> int:
    """libpq's connect_timeout for this process: whole seconds, at least 2 (libpq's least)."""
    return max(2, math.ceil(database_wait_s(settings)))


def bound_database_connects(settings: Settings) -> None:
    """Every PostgreSQL connection this process opens gives up within `connect_timeout_s`.

    libpq's default is to wait as long as the network does (psycopg's: 130 s): a command line
    against a server that accepts connections and never answers hung that long. A DSN that
    names its own ``connect_timeout`` keeps it.
    """
    os.environ.setdefault("PGCONNECT_TIMEOUT", str(connect_timeout_s(settings)))


def build_api(settings: Settings) -> ApiServices:
    """Everything the HTTP API serves from; a missing secret is a `ConfigurationError`."""
    ledger = build_ledger(settings)
    audit = build_audit(settings)
    keys = build_api_keys(settings)
    checkers = build_checkers(settings, ledger)
    feedback = build_feedback(settings, ledger)
    webhooks = build_webhook_store(ledger.store.config)
    return ApiServices(
        ledger=ledger,
        hasher=ledger.hasher,
        keys=keys,
        checkers=checkers,
        audit=audit,
        tokens=build_token_codec(settings),
        link_base_url=_link_base_url(settings),
        unsubscribe_mailto=settings.unsubscribe_mailto,
        open_requests=build_open_requests(ledger.store.config),
        request_subject=build_request_subject(ledger.store.config),
        feedback=feedback,
        webhooks=webhooks,
        closers=(
            checkers.close,
            keys.close,
            feedback.store.close,
            webhooks.close,
            audit.close,
            ledger.close,
        ),
    )


def _link_base_url(settings: Settings) -> str | None:
    """Where links lead; None in production without an https public URL (no links issued)."""
    try:
        return unsubscribe_base_url(settings)
    except ConfigurationError:
        return None


def build_relay(settings: Settings) -> Relay:
    """The Kafka relay of this ledger; it needs CONSENT_KAFKA_BOOTSTRAP."""
    if not settings.kafka_bootstrap:
        msg = "the relay needs CONSENT_KAFKA_BOOTSTRAP"
        raise ConfigurationError(msg)
    store = build_store(settings)
    positions: PositionStore
    if settings.mode is Mode.EMBEDDED:
        positions = SQLitePositions(path=sqlite_file(settings))
    else:
        positions = PostgresPositions(dsn=str(settings.pg_dsn), schema=settings.pg_schema)
    return Relay(
        store=store,
        positions=positions,
        config=RelayConfig(
            bootstrap=settings.kafka_bootstrap,
            keys=build_topic_keys(settings),
            partitions=settings.kafka_partitions,
            batch=settings.relay_batch,
            events_topic=settings.kafka_topic,
            dead_letter_topic=dead_letter_topic_for(settings.kafka_topic),
        ),
    )


def unsubscribe_base_url(settings: Settings) -> str:
    """The base of unsubscribe links; production needs an https CONSENT_PUBLIC_URL (RFC 8058)."""
    if settings.mode is Mode.PRODUCTION and not (settings.public_url or "").startswith("https://"):
        msg = "production mode needs CONSENT_PUBLIC_URL, an https:// URL recipients can reach"
        raise ConfigurationError(msg)
    return settings.link_base_url


COUNTS_SQLITE_TIMEOUT_S = 5.0
T = TypeVar("T")


def build_business_metrics(settings: Settings) -> BusinessMetrics:
    """Gauges counted from this mode's projection tables at scrape, cached.

    Registered by `serve` only: one process of a deployment is enough to count them.
    """
    dsn, schema = str(settings.pg_dsn), settings.pg_schema
    open_store: Callable[[], ProjectionStore]
    if settings.mode is Mode.EMBEDDED:
        path = sqlite_file(settings)
        open_store = lambda: SQLiteProjectionStore(path, timeout_s=COUNTS_SQLITE_TIMEOUT_S)  # noqa: E731
    else:
        open_store = lambda: PostgresProjectionStore.connect(dsn, schema=schema, autocommit=True)  # noqa: E731
    return BusinessMetrics(store_counts(open_store), ttl_s=settings.metrics_cache_s)


def open_projection(config: StoreConfig) -> ProjectionStore:
    """The projection next to the event store of ``config`` (the same SQLite file or schema),
    on a connection of its own: close it."""
    if isinstance(config, SQLiteStoreConfig):
        return SQLiteProjectionStore(config.path)
    if isinstance(config, PostgresStoreConfig):
        return PostgresProjectionStore.connect(config.dsn, schema=config.schema)
    msg = f"no projection store for {type(config).__name__}"
    raise TypeError(msg)


def serve_metrics(settings: Settings, *parts: Part) -> None:
    """Serve the metrics of the parts this process runs on CONSENT_METRICS_PORT (in a thread),
    unless it is 0."""
    if settings.metrics_port:
        start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=process_registry(parts)
        )


def build_embedded_projection(settings: Settings) -> EmbeddedProjection | None:
    """The projection fed from the store (embedded); None in production (Kafka feeds it)."""
    if settings.mode is Mode.EMBEDDED:
        return EmbeddedProjection(path=sqlite_file(settings))
    return None


def projection_reader(config: StoreConfig) -> Callable[[Callable[[ProjectionStore], T]], T]:
    """Runs one read on the projection next to the store (same file or schema), on a
    connection of its own; a database that does not answer raises `ProjectionUnavailableError`."""

    def read(query: Callable[[ProjectionStore], T]) -> T:
        projection = open_projection(config)
        try:
            return query(projection)
        finally:
            projection.close()

    return read


def build_open_requests(config: StoreConfig) -> Callable[[], list[OpenRequest]]:
    """The open rights requests of the projection next to the store."""
    read = projection_reader(config)
    return lambda: read(lambda projection: projection.open_requests())


def build_request_subject(config: StoreConfig) -> Callable[[str], str | None]:
    """The person of a rights request (open or closed), from the projection."""
    read = projection_reader(config)
    return lambda request_id: read(lambda projection: projection.request_subject(request_id))
