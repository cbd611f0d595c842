"""What the contract suites share: every store a test opens is closed after it, and where the
adapters under test keep their data."""

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from ledger.audit.sealer import Sealer, SealerConfig
from ledger.audit.store import TreeStore
from ledger.audit.tlog.note import NoteSigner
from ledger.domain.identity import SubjectHasher
from ledger.privacy.keystore import DataKeyStore
from ledger.store.events import LedgerStore, StoreConfig
from ledger.write.group_commit import GroupCommitConfig
from ledger.write.service import Ledger, LedgerConfig


class Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound="Closable")


class ClosesWhatItOpens:
    """Mixin: ``self.opened`` holds the stores a test opened; each is closed after it."""

    opened: list[Closable]

    @pytest.fixture(autouse=True)
    def _closed_after(self) -> Iterator[None]:
        self.opened = []
        yield
        for store in self.opened:
            store.close()

    def kept(self, store: S) -> S:
        """``store``, to be closed after the test."""
        self.opened.append(store)
        return store


def audited_ledger(
    store: StoreConfig,
    keys: DataKeyStore,
    tree: TreeStore,
    *,
    signer: NoteSigner,
    sealing: SealerConfig,
    max_batch: int,
) -> tuple[Ledger, Sealer]:
    """A ledger on ``store`` (fixed test secret, group commit that does not wait for company)
    and the sealer of its audit ``tree``, both migrated."""
    keys.migrate()
    ledger = Ledger(
        store=LedgerStore(store),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
        config=LedgerConfig(group_commit=GroupCommitConfig(max_batch=max_batch, max_wait_s=0)),
    )
    tree.migrate()
    return ledger, Sealer(store=ledger.store, tree=tree, signer=signer, config=sealing)


class OnSQLiteFile:
    """Mixin: ``self.path`` is a SQLite file of the test's own."""

    path: Path

    @pytest.fixture(autouse=True)
    def _sqlite_file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "ledger.sqlite3"


class OnPostgresSchema:
    """Mixin: ``self.dsn`` and ``self.schema``, a PostgreSQL schema of the test's own."""

    dsn: str
    schema: str

    @pytest.fixture(autouse=True)
    def _postgres_schema(self, pg_dsn: str, schema: str) -> None:
        self.dsn = pg_dsn
        self.schema = schema
