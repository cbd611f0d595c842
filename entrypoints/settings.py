"""Typed settings, read once from the environment (prefix ``CONSENT_``) by the entry points."""

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")
DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
SQLITE_FILE_NAME = "consent-ledger.sqlite3"
AUDIT_SIGNING_KEY_FILE = "audit-signing-key"
SUBJECT_SECRET_FILE = "subject-secret"  # noqa: S105 - a file name, not a secret
MASTER_KEY_FILE = "master-key"
UNSUBSCRIBE_KEY_FILE = "unsubscribe-key"
TOPIC_KEY_FILE = "topic-key"


class Mode(StrEnum):
    """Where the ledger keeps its data."""

    EMBEDDED = "embedded"
    """One SQLite file under the data directory; no servers."""
    PRODUCTION = "production"
    """PostgreSQL for the store and projections, Kafka between them."""


class Settings(BaseSettings):
    """Everything a process of the ledger can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_", extra="ignore", frozen=True)

    mode: Mode = Mode.EMBEDDED
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Embedded mode: where the SQLite file and generated secrets live.",
    )
    pg_dsn: str | None = Field(default=None, description="PostgreSQL DSN (production mode).")
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers, host:port[,host:port] (production)."
    )
    subject_secret: SecretStr | None = Field(
        default=None,
        description="Base64 of >= 32 random bytes: the key of the keyed hash of addresses. "
        "Required in production; generated under the data directory in embedded mode.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes: wraps every person's data key. "
        "Required in production; generated under the data directory in embedded mode.",
    )
    audit_origin: str = Field(
        default="consent-ledger",
        pattern=r"^[^\s+]{1,200}$",
        description="The checkpoints' origin line and signer name: names this ledger's log.",
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte Ed25519 seed that signs checkpoints. Required in "
        "production; generated under the data directory in embedded mode.",
    )
    audit_checkpoint_every_events: int = Field(default=1000, ge=1)
    audit_checkpoint_every_seconds: float = Field(default=60.0, gt=0)
    kafka_topic: str = Field(
        default="consent.events.v1",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="The event topic: the relay writes it, consumers read it, checks measure "
        "against it. Its dead letters go to the same name with .dlq before the version suffix.",
    )
    kafka_partitions: int = Field(
        default=6, ge=1, le=1000, description="Partitions of the event topic when created."
    )
    relay_batch: int = Field(default=2_000, ge=1, le=100_000)
    check_max_lag: int = Field(
        default=1_000,
        ge=0,
        description="Checks refuse when the projection is more events than this behind the head.",
    )
    check_max_staleness_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="Checks refuse to answer from a projection that misses an event the ledger "
        "had stored this long ago: an unsubscribe acknowledged longer ago is always enforced.",
    )
    check_wait_s: float = Field(
        default=2.0, ge=0, le=60, description="How long a check waits for a stale projection."
    )
    ledger_cache_size: int = Field(
        default=20_000,
        ge=0,
        description="People whose state the writer keeps in memory between commands.",
    )
    group_commit_max_batch: int = Field(default=256, ge=1, le=10_000)
    group_commit_max_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    pg_schema: str = Field(
        default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL schema."
    )
    pg_pool_size: int = Field(default=10, ge=1, le=200)
    http_host: str = DEFAULT_HTTP_HOST
    http_port: int = Field(default=DEFAULT_HTTP_PORT, ge=0, le=65535)
    check_freshness_ms: float = Field(
        default=10.0,
        ge=0,
        le=1000,
        description="serve: how long one read of the ledger head and the projection's covered "
        "position serves other checks (0: every check reads both).",
    )
    http_max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="serve: request line and headers of one request, in bytes, at most (431).",
    )
    http_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="serve: a connection whose request headers take longer is closed.",
    )
    http_checkers: int = Field(
        default=8, ge=1, le=256, description="Checks answered at once (one connection each)."
    )
    log_level: str = Field(
        default="info",
        pattern=r"^(debug|info|warning|error|critical)$",
        description="Log lines at this level and above (stderr, with time and level).",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port where relay, consume and audit seal --follow serve Prometheus "
        "metrics on /metrics (0: not served). serve exposes them on its own /metrics.",
    )
    metrics_host: str = Field(
        default=DEFAULT_HTTP_HOST, description="Address the metrics port listens on."
    )
    metrics_cache_s: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="How long serve reuses the projection counts behind its business gauges.",
    )
    unsubscribe_keys: SecretStr | None = Field(
        default=None,
        description="Keys of unsubscribe links: key_id:base64 of 32 random bytes, "
        "comma-separated, newest first (it signs new links; the others still verify old ones). "
        "Required in production; generated under the data directory in embedded mode.",
    )
    topic_keys: SecretStr | None = Field(
        default=None,
        description="Keys that authenticate the event topic's records: key_id:base64 of 32 "
        "random bytes, comma-separated, newest first (the relay MACs with the newest; consumers "
        "accept any). Required in production; generated under the data directory in embedded "
        "mode.",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Base URL of this API as recipients reach it, for unsubscribe links. "
        "Required in production, and https (RFC 8058); default http://127.0.0.1:<http_port>.",
    )
    unsubscribe_mailto: str | None = Field(
        default=None,
        pattern=r"^[^\s@<>,]+@[^\s@<>,]+$",
        description="An address that takes unsubscribe requests by mail, added to "
        "List-Unsubscribe as a fallback for mail clients without one-click.",
    )
    soft_bounce_limit: int = Field(
        default=3,
        ge=1,
        description="This many soft bounces (DSN 4.x.x) of one address within the window "
        "suppress it as undeliverable.",
    )
    soft_bounce_window_days: float = Field(
        default=7.0, gt=0, description="The window soft bounces are counted in, in days."
    )
    webhook_retry_start_s: float = Field(
        default=1.0, gt=0, description="The first pause before a failed webhook is sent again."
    )
    webhook_retry_max_s: float = Field(
        default=3600.0, gt=0, description="The longest pause between two webhook attempts."
    )
    webhook_retry_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an endpoint may keep failing before it is disabled.",
    )
    webhook_workers: int = Field(
        default=8, ge=1, description="Endpoints served side by side by `webhooks deliver`."
    )

    @property
    def sqlite_path(self) -> Path:
        """The embedded store: one SQLite file under the data directory."""
        return self.data_dir / SQLITE_FILE_NAME

    @property
    def link_base_url(self) -> str:
        """Where recipients reach this API: ``public_url``, else this machine's listener."""
        return self.public_url or f"http://{DEFAULT_HTTP_HOST}:{self.http_port}"


__all__ = ["Mode", "Settings"]
