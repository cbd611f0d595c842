"""The API key store contract, written once and run against SQLite and PostgreSQL."""

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

import pytest

from access.apikeys import ApiKeyStore, PostgresApiKeyStore, Scope, SQLiteApiKeyStore
from tests.contract.opened import ClosesWhatItOpens, OnPostgresSchema, OnSQLiteFile


class ApiKeyStoreContract(ClosesWhatItOpens, ABC):
    """What every `ApiKeyStore` adapter must do; subclasses say how to open one."""

    @abstractmethod
    def new_store(self) -> ApiKeyStore:
        """A new store over this test's storage (shared by every instance)."""

    def open_store(self) -> ApiKeyStore:
        store = self.kept(self.new_store())
        store.migrate()
        return store

    @pytest.fixture
    def store(self) -> ApiKeyStore:
        return self.open_store()

    def test_a_new_key_authenticates_with_its_scopes(self, store: ApiKeyStore) -> None:
        before = datetime.now(UTC)
        key, token = store.create("sender", [Scope.CHECK, Scope.WRITE])

        found = store.authenticate(token)

        assert found == key
        assert found.scopes == frozenset({Scope.CHECK, Scope.WRITE})
        assert found.active
        assert before - timedelta(seconds=1) <= found.created_at <= datetime.now(UTC)
        assert token.startswith(f"clk_{key.key_id}_")

    def test_another_instance_on_the_same_storage_knows_the_key(self, store: ApiKeyStore) -> None:
        key, token = store.create("auditor", [Scope.AUDIT])

        assert self.open_store().authenticate(token) == key

    def test_a_wrong_secret_or_a_malformed_token_is_refused(self, store: ApiKeyStore) -> None:
        key, token = store.create("sender", [Scope.CHECK])

        assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert store.authenticate(f"clk_{key.key_id}_") is None
        assert store.authenticate("clk_nosuchkey_secret") is None
        assert store.authenticate("not-a-token") is None

    def test_list_gives_every_key_oldest_first_and_revoke_marks_it(
        self, store: ApiKeyStore
    ) -> None:
        first, _ = store.create("one", [Scope.ADMIN])
        second, _ = store.create("two", [Scope.CHECK])

        assert store.revoke(first.key_id)

        listed = store.list()
        assert [k.key_id for k in listed] == [first.key_id, second.key_id]
        assert [k.active for k in listed] == [False, True]
        assert listed[0].revoked_at is not None

    def test_a_revoked_key_no_longer_authenticates(self, store: ApiKeyStore) -> None:
        key, token = store.create("sender", [Scope.WRITE])
        assert store.authenticate(token) == key

        assert store.revoke(key.key_id)

        # Revoking through this instance drops its cache: refused at once.
        assert store.authenticate(token) is None
        assert self.open_store().authenticate(token) is None

    def test_revoking_twice_or_an_unknown_key_says_so(self, store: ApiKeyStore) -> None:
        key, _ = store.create("sender", [Scope.WRITE])

        assert store.revoke(key.key_id)
        assert not store.revoke(key.key_id)
        assert not store.revoke("nosuchkey")

    def test_a_key_needs_a_scope(self, store: ApiKeyStore) -> None:
        with pytest.raises(ValueError, match="scope"):
            store.create("nothing", [])
        assert store.list() == []

    def test_migrate_twice_keeps_the_keys(self, store: ApiKeyStore) -> None:
        key, token = store.create("sender", [Scope.CHECK])
        store.migrate()

        assert store.authenticate(token) == key


class TestSQLiteApiKeyStore(OnSQLiteFile, ApiKeyStoreContract):
    def new_store(self) -> ApiKeyStore:
        return SQLiteApiKeyStore(path=self.path)


@pytest.mark.integration
class TestPostgresApiKeyStore(OnPostgresSchema, ApiKeyStoreContract):
    def new_store(self) -> ApiKeyStore:
        return PostgresApiKeyStore(dsn=self.dsn, schema=self.schema)
