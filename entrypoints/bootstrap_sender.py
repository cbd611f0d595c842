"""Wiring of the sender's side: feedback intake (complaints, bounces) next to the ledger."""

from datetime import timedelta
from typing import TYPE_CHECKING

from entrypoints.bootstrap_keys import build_token_codec
from entrypoints.settings import Settings
from ledger.feedback.attribution import Attribution
from ledger.feedback.intake import FeedbackConfig, FeedbackIntake
from ledger.feedback.store import FeedbackStore
from ledger.sidecar import PostgresTables, SQLiteTables, Tables
from ledger.store.base import StoreConfig
from ledger.store.events import LedgerStore
from ledger.store.postgres import PostgresStoreConfig
from ledger.store.sqlite import SQLiteStoreConfig
from ledger.webhooks.store import WebhookStore
from ledger.write.service import Clock, Ledger, utc_now

if TYPE_CHECKING:
    from ledger.webhooks.dispatcher import Dispatcher


def build_tables(config: StoreConfig) -> Tables:
    """The side tables next to the event store of ``config``: the same SQLite file or schema."""
    if isinstance(config, SQLiteStoreConfig):
        return SQLiteTables(path=config.path)
    if isinstance(config, PostgresStoreConfig):
        return PostgresTables(dsn=config.dsn, schema=config.schema)
    msg = f"no side tables for {type(config).__name__}"
    raise TypeError(msg)


def build_feedback(settings: Settings, ledger: Ledger) -> FeedbackIntake:
    """The intake of complaints and bounces into ``ledger``; its store is migrated here."""
    store = FeedbackStore(build_tables(ledger.store.config))
    store.migrate()
    return FeedbackIntake(
        ledger=ledger,
        store=store,
        attribution=Attribution(
            hasher=ledger.hasher,
            tokens=build_token_codec(settings),
            known=lambda subject: ledger.person(subject) is not None,
        ),
        config=FeedbackConfig(
            soft_bounce_limit=settings.soft_bounce_limit,
            soft_bounce_window=timedelta(days=settings.soft_bounce_window_days),
        ),
        clock=utc_now,
    )


def build_webhook_store(config: StoreConfig) -> WebhookStore:
    """The registered endpoints and their deliveries, next to the store; migrated here."""
    store = WebhookStore(build_tables(config))
    store.migrate()
    return store


def build_dispatcher(
    settings: Settings, events: LedgerStore, *, clock: Clock = utc_now
) -> "Dispatcher":
    """Webhook delivery from the notification log of ``events``."""
    # Imported here: its HTTP client costs every other command a third of a second at start.
    from ledger.webhooks.dispatcher import DispatchConfig, Dispatcher  # noqa: PLC0415
    from ledger.webhooks.source import store_source  # noqa: PLC0415

    return Dispatcher(
        store=build_webhook_store(events.config),
        source=store_source(events),
        head=events.head,
        config=DispatchConfig(
            retry_start_s=settings.webhook_retry_start_s,
            retry_max_s=settings.webhook_retry_max_s,
            retry_for=timedelta(hours=settings.webhook_retry_hours),
            workers=settings.webhook_workers,
        ),
        clock=clock,
    )
