"""The one place where settings become wired components: store, data keys, hasher, ledger."""

from pathlib import Path

from entrypoints.settings import MASTER_KEY_FILE, SUBJECT_SECRET_FILE, Mode, Settings
from ledger.errors import ConfigurationError
from ledger.group_commit import GroupCommitConfig
from ledger.identity import SubjectHasher
from ledger.keystore import DataKeyStore, PostgresDataKeyStore, SQLiteDataKeyStore
from ledger.secrets import decode_secret, load_or_create_secret
from ledger.service import Clock, Ledger, LedgerConfig, utc_now
from ledger.store import LedgerStore, PostgresStoreConfig, SQLiteStoreConfig


def prepare_data_dir(path: Path) -> Path:
    """The embedded data directory, private to the user running the ledger."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _secrets(settings: Settings) -> tuple[bytes, bytes]:
    if settings.mode is Mode.EMBEDDED:
        data_dir = prepare_data_dir(settings.data_dir)
        return (
            load_or_create_secret(data_dir / SUBJECT_SECRET_FILE),
            load_or_create_secret(data_dir / MASTER_KEY_FILE),
        )
    return (
        decode_secret(
            settings.subject_secret.get_secret_value() if settings.subject_secret else None,
            name="CONSENT_SUBJECT_SECRET",
        ),
        decode_secret(
            settings.master_key.get_secret_value() if settings.master_key else None,
            name="CONSENT_MASTER_KEY",
        ),
    )


def build_ledger(settings: Settings, *, clock: Clock = utc_now) -> Ledger:
    """Wire the write side for this mode; a missing secret is a `ConfigurationError`."""
    subject_secret, master_key = _secrets(settings)
    store: LedgerStore
    keys: DataKeyStore
    if settings.mode is Mode.EMBEDDED:
        store = LedgerStore(SQLiteStoreConfig(path=settings.sqlite_path))
        keys = SQLiteDataKeyStore(path=settings.sqlite_path, master_key=master_key)
    else:
        if not settings.pg_dsn:
            msg = "production mode needs CONSENT_PG_DSN"
            raise ConfigurationError(msg)
        store = LedgerStore(
            PostgresStoreConfig(
                dsn=settings.pg_dsn, pool_size=settings.pg_pool_size, schema=settings.pg_schema
            )
        )
        keys = PostgresDataKeyStore(
            dsn=settings.pg_dsn, master_key=master_key, schema=settings.pg_schema
        )
    keys.migrate()
    config = LedgerConfig(
        group_commit=GroupCommitConfig(
            max_batch=settings.group_commit_max_batch,
            max_wait_s=settings.group_commit_max_wait_ms / 1000,
        )
    )
    return Ledger(
        store=store,
        keys=keys,
        hasher=SubjectHasher(secret=subject_secret),
        config=config,
        clock=clock,
    )
