"""Building blocks several test modules share: an embedded ledger with a catalog."""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ledger.commands import PublishPolicyVersion, RegisterPurpose
from ledger.identity import SubjectHasher
from ledger.keystore import SQLiteDataKeyStore
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
