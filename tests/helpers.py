"""Building blocks several test modules share: an embedded ledger with a catalog, a relay."""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ledger.commands import PublishPolicyVersion, RegisterPurpose
from ledger.identity import SubjectHasher
from ledger.keystore import SQLiteDataKeyStore
from ledger.positions import SQLitePositions
from ledger.relay import PositionStore, Relay, RelayConfig, ensure_topics
from ledger.service import Ledger
from ledger.store import LedgerStore, SQLiteStoreConfig

CATALOG_TIME = datetime(2024, 1, 1, tzinfo=UTC)
POLICY_SHA = "d" * 64


def sqlite_ledger(
    path: Path,
    *,
    purposes: Sequence[str] = ("newsletter",),
    policy_version: str = "v1",
    policy_sha256: str = POLICY_SHA,
) -> Ledger:
    """A ledger on one SQLite file, with these (direct-marketing) purposes and one policy."""
    keys = SQLiteDataKeyStore(path=path, master_key=b"k" * 32)
    keys.migrate()
    ledger = Ledger(
        store=LedgerStore(SQLiteStoreConfig(path=path)),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
    )
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
