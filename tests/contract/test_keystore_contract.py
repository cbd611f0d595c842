"""The data-key store contract, written once and run against SQLite and PostgreSQL."""

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from ledger.domain.errors import ConfigurationError, StoreUnavailableError
from ledger.privacy.keystore import (
    DATA_KEY_BYTES,
    DataKey,
    DataKeyStore,
    PostgresDataKeyStore,
    SQLiteDataKeyStore,
)

MASTER_KEY = bytes(range(32))
OTHER_MASTER_KEY = bytes(range(1, 33))
BATCH = 300
WRITERS = 4
RACE_ROUNDS = 5
RACE_BATCH = 50
RACE_TIMEOUT = 30.0


class DataKeyStoreContract(ABC):
    """What every `DataKeyStore` adapter must do; subclasses say how to open one."""

    @abstractmethod
    def open_store(self, *, master_key: bytes = MASTER_KEY) -> DataKeyStore:
        """A new, migrated store instance over this test's storage (shared by every instance)."""

    @pytest.fixture
    def store(self) -> DataKeyStore:
        return self.open_store()

    def test_first_request_creates_generation_one(self, store: DataKeyStore) -> None:
        key = store.keys_for_writing(["alice"])["alice"]

        assert (key.subject, key.generation) == ("alice", 1)
        assert len(key.key) == DATA_KEY_BYTES

    def test_second_request_returns_the_same_key(self, store: DataKeyStore) -> None:
        first = store.keys_for_writing(["alice"])

        assert store.keys_for_writing(["alice"]) == first

    def test_migrate_twice_keeps_the_keys(self, store: DataKeyStore) -> None:
        first = store.keys_for_writing(["alice"])
        store.migrate()

        assert store.keys_for_writing(["alice"]) == first

    def test_a_batch_gives_each_subject_its_own_key(self, store: DataKeyStore) -> None:
        subjects = [f"person-{n}" for n in range(BATCH)]

        keys = store.keys_for_writing(subjects)

        assert set(keys) == set(subjects)
        assert all(keys[subject].subject == subject for subject in subjects)
        assert len({key.key_id for key in keys.values()}) == BATCH
        assert len({key.key for key in keys.values()}) == BATCH

    def test_a_batch_mixing_known_and_new_subjects_keeps_the_known_keys(
        self, store: DataKeyStore
    ) -> None:
        known = store.keys_for_writing([f"known-{n}" for n in range(BATCH // 2)])
        new = [f"new-{n}" for n in range(BATCH // 2)]

        keys = store.keys_for_writing([*known, *new])

        assert {subject: keys[subject] for subject in known} == known
        assert all(keys[subject].generation == 1 for subject in new)

    def test_a_subject_asked_for_twice_in_one_batch_gets_one_key(self, store: DataKeyStore) -> None:
        keys = store.keys_for_writing(["alice", "alice", "bob"])

        assert sorted(keys) == ["alice", "bob"]
        assert store.keys_for_writing(["alice"])["alice"] == keys["alice"]

    def test_empty_requests_touch_nothing(self, store: DataKeyStore) -> None:
        assert store.keys_for_writing([]) == {}
        assert store.keys([]) == {}

    def test_keys_returns_the_key_written_with(self, store: DataKeyStore) -> None:
        written = store.keys_for_writing(["alice", "bob"])

        found = store.keys([key.key_id for key in written.values()])

        assert found == {key.key_id: key.key for key in written.values()}

    def test_an_unknown_key_reads_as_none(self, store: DataKeyStore) -> None:
        alice = store.keys_for_writing(["alice"])["alice"]

        assert store.keys([alice.key_id, "no-such-key"]) == {
            alice.key_id: alice.key,
            "no-such-key": None,
        }

    def test_destroy_then_write_gives_a_new_generation(self, store: DataKeyStore) -> None:
        old = store.keys_for_writing(["alice"])["alice"]

        assert store.destroy("alice") == 1
        new = store.keys_for_writing(["alice"])["alice"]

        assert new.generation == 2
        assert (new.key_id, new.key) != (old.key_id, old.key)
        assert store.keys_for_writing(["alice"])["alice"] == new

    def test_a_destroyed_key_reads_as_none(self, store: DataKeyStore) -> None:
        old = store.keys_for_writing(["alice"])["alice"]
        store.destroy("alice")
        new = store.keys_for_writing(["alice"])["alice"]

        assert store.keys([old.key_id, new.key_id]) == {old.key_id: None, new.key_id: new.key}

    def test_destroy_leaves_other_subjects_alone(self, store: DataKeyStore) -> None:
        keys = store.keys_for_writing(["alice", "bob"])

        store.destroy("alice")

        assert store.keys([keys["bob"].key_id]) == {keys["bob"].key_id: keys["bob"].key}
        assert store.keys_for_writing(["bob"])["bob"] == keys["bob"]

    def test_destroy_counts_only_live_keys(self, store: DataKeyStore) -> None:
        store.keys_for_writing(["alice"])

        assert store.destroy("alice") == 1
        assert store.destroy("alice") == 0
        assert store.destroy("nobody") == 0

    def test_generations_keep_counting_after_each_erasure(self, store: DataKeyStore) -> None:
        for generation in (1, 2, 3):
            assert store.keys_for_writing(["alice"])["alice"].generation == generation
            store.destroy("alice")

    def test_keys_survive_a_new_store_instance(self, store: DataKeyStore) -> None:
        written = store.keys_for_writing(["alice", "bob"])
        store.destroy("bob")

        reopened = self.open_store()

        assert reopened.keys_for_writing(["alice"])["alice"] == written["alice"]
        assert reopened.keys([written["alice"].key_id, written["bob"].key_id]) == {
            written["alice"].key_id: written["alice"].key,
            written["bob"].key_id: None,
        }
        assert reopened.keys_for_writing(["bob"])["bob"].generation == 2

    def test_another_master_key_cannot_open_the_keys(self, store: DataKeyStore) -> None:
        alice = store.keys_for_writing(["alice"])["alice"]

        impostor = self.open_store(master_key=OTHER_MASTER_KEY)

        with pytest.raises(ConfigurationError, match="master key"):
            impostor.keys([alice.key_id])
        with pytest.raises(ConfigurationError, match="master key"):
            impostor.keys_for_writing(["alice"])

    def test_concurrent_writers_of_a_new_subject_get_the_same_key(self) -> None:
        # One store instance per thread, as separate processes would have.
        stores = [self.open_store() for _ in range(WRITERS)]
        for round_ in range(RACE_ROUNDS):
            subjects = [f"race-{round_}-{n}" for n in range(RACE_BATCH)]

            results = _race(stores, subjects)

            assert all(result == results[0] for result in results)
            assert set(results[0]) == set(subjects)
            assert all(key.generation == 1 for key in results[0].values())


class TestSQLiteDataKeyStore(DataKeyStoreContract):
    path: Path

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.path = tmp_path / "ledger.sqlite"

    def open_store(self, *, master_key: bytes = MASTER_KEY) -> DataKeyStore:
        store = SQLiteDataKeyStore(path=self.path, master_key=master_key)
        store.migrate()
        return store

    def test_a_lock_held_too_long_is_a_retryable_store_error(self) -> None:
        self.open_store()
        store = SQLiteDataKeyStore(path=self.path, master_key=MASTER_KEY, timeout=0.1)
        with closing(sqlite3.connect(self.path, isolation_level=None)) as other_writer:
            other_writer.execute("begin immediate")

            with pytest.raises(StoreUnavailableError) as failed:
                store.keys_for_writing(["alice"])

        assert failed.value.retryable

    def test_a_destroyed_key_leaves_no_copy_in_the_files(self) -> None:
        store = self.open_store()
        alice = store.keys_for_writing(["alice"])["alice"]
        # Another connection stays open, as the event store's does, so SQLite does not fold
        # the write-ahead log away on its own when the store's connection closes.
        with closing(sqlite3.connect(self.path)) as event_store:
            (wrapped,) = event_store.execute(
                "select wrapped from data_keys where key_id = ?", [alice.key_id]
            ).fetchone()

            store.destroy("alice")

            for file in self.path.parent.iterdir():
                assert wrapped not in file.read_bytes(), file.name

    def test_a_store_that_was_never_migrated_fails_loudly(self) -> None:
        store = SQLiteDataKeyStore(path=self.path, master_key=MASTER_KEY)

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            store.keys_for_writing(["alice"])


@pytest.mark.integration
class TestPostgresDataKeyStore(DataKeyStoreContract):
    dsn: str
    schema: str
    connect: str
    stores: list[DataKeyStore]
    pools: list[ConnectionPool[psycopg.Connection[tuple[object, ...]]]]

    # The store must work on a pool it opens from a DSN, and on one it is lent, whether that
    # pool's connections run in transactions or in autocommit.
    @pytest.fixture(autouse=True, params=["dsn", "pool", "autocommit-pool"])
    def _database(
        self, request: pytest.FixtureRequest, pg_dsn: str, unique_name: str
    ) -> Iterator[None]:
        self.dsn, self.schema, self.connect = pg_dsn, unique_name, request.param
        self.stores, self.pools = [], []
        schema = sql.Identifier(unique_name)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("create schema {}").format(schema))
        try:
            yield
        finally:
            for store in self.stores:
                store.close()
            for pool in self.pools:
                pool.close()
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema {} cascade").format(schema))

    def open_store(self, *, master_key: bytes = MASTER_KEY) -> DataKeyStore:
        if self.connect == "dsn":
            store = PostgresDataKeyStore(dsn=self.dsn, master_key=master_key, schema=self.schema)
        else:
            pool = ConnectionPool(
                self.dsn,
                min_size=1,
                max_size=2,
                kwargs={"autocommit": self.connect == "autocommit-pool"},
                open=True,
            )
            self.pools.append(pool)
            store = PostgresDataKeyStore(pool=pool, master_key=master_key, schema=self.schema)
        self.stores.append(store)
        store.migrate()
        return store


def _race(stores: list[DataKeyStore], subjects: list[str]) -> list[dict[str, DataKey]]:
    start = threading.Barrier(len(stores))

    def write(store: DataKeyStore) -> dict[str, DataKey]:
        start.wait(timeout=RACE_TIMEOUT)
        return store.keys_for_writing(subjects)

    with ThreadPoolExecutor(max_workers=len(stores)) as executor:
        return list(executor.map(write, stores))


def test_a_data_key_repr_leaves_the_key_out() -> None:
    key = DataKey(key_id="k", subject="alice", generation=1, key=b"\x01" * DATA_KEY_BYTES)

    assert repr(key) == "DataKey(key_id='k', subject='alice', generation=1)"


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_a_master_key_of_the_wrong_length_is_refused(tmp_path: Path, length: int) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        SQLiteDataKeyStore(path=tmp_path / "ledger.sqlite", master_key=b"k" * length)


def test_the_postgres_store_needs_a_dsn_or_a_pool() -> None:
    with pytest.raises(ConfigurationError, match="dsn or a pool"):
        PostgresDataKeyStore(master_key=MASTER_KEY)


def test_an_unreachable_postgres_server_is_a_retryable_store_error() -> None:
    pool = ConnectionPool("postgresql://nobody@127.0.0.1:1/none", timeout=0.5, open=False)
    store = PostgresDataKeyStore(pool=pool, master_key=MASTER_KEY)
    pool.open(wait=False)
    try:
        with pytest.raises(StoreUnavailableError) as failed:
            store.keys_for_writing(["alice"])
    finally:
        pool.close()

    assert failed.value.retryable
