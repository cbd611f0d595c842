"""Unit tests of sealing personal data under each person's data key, and of erasure."""

import base64
from collections.abc import Collection
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.privacy.keystore import DataKey, DataKeyStore, SQLiteDataKeyStore
from ledger.privacy.personal import PersonalCipher, PersonalDataTamperedError
from schemas.personal import ErasedPersonalData, PersonalData, SealedPersonalData

MASTER_KEY = b"m" * 32
ALICE = PersonalData(address="alice@example.org", ip="192.0.2.10", user_agent="Firefox/140")
BOB = PersonalData(address="bob@example.org", note="asked by phone")
BATCH = 200


class CountingStore(DataKeyStore):
    """A real store that counts the calls made to it, to show batches cost one call."""

    def __init__(self, store: DataKeyStore) -> None:
        self.store = store
        self.writes = 0
        self.reads = 0

    def migrate(self) -> None:
        self.store.migrate()

    def keys_for_writing(self, subjects: Collection[str]) -> dict[str, DataKey]:
        self.writes += 1
        return self.store.keys_for_writing(subjects)

    def keys(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        self.reads += 1
        return self.store.keys(key_ids)

    def destroy(self, subject: str) -> int:
        return self.store.destroy(subject)


class OneKeyStore(DataKeyStore):
    """A key source that gives the same key under every id, so only the id tells them apart."""

    def __init__(self) -> None:
        self.key = b"k" * 32

    def migrate(self) -> None:
        """Nothing to create."""

    def keys_for_writing(self, subjects: Collection[str]) -> dict[str, DataKey]:
        return {
            subject: DataKey(key_id=f"{subject}/1", subject=subject, generation=1, key=self.key)
            for subject in subjects
        }

    def keys(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        return dict.fromkeys(key_ids, self.key)

    def destroy(self, subject: str) -> int:
        return 0


def _open_store(path: Path) -> SQLiteDataKeyStore:
    store = SQLiteDataKeyStore(path=path / "ledger.sqlite", master_key=MASTER_KEY)
    store.migrate()
    return store


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(_open_store(tmp_path))


@pytest.fixture
def cipher(store: CountingStore) -> PersonalCipher:
    return PersonalCipher(store=store)


def _flip_first_byte(encoded: str) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[0] ^= 0x01
    return base64.b64encode(raw).decode()


def test_sealed_data_opens_to_what_was_sealed(cipher: PersonalCipher) -> None:
    sealed = cipher.seal_many([("alice", ALICE), ("bob", BOB)])

    assert cipher.open_many(sealed) == [ALICE, BOB]


def test_one_record_seals_and_opens(cipher: PersonalCipher) -> None:
    assert cipher.open(cipher.seal("alice", ALICE)) == ALICE


def test_a_sealed_record_does_not_show_the_data(cipher: PersonalCipher) -> None:
    sealed = cipher.seal("alice", ALICE)
    stored = sealed.model_dump_json().encode() + base64.b64decode(sealed.ciphertext)

    assert b"alice@example.org" not in stored
    assert b"192.0.2.10" not in stored


def test_a_batch_costs_one_key_store_call_each_way(
    cipher: PersonalCipher, store: CountingStore
) -> None:
    items = [(f"person-{n % (BATCH // 2)}", ALICE) for n in range(BATCH)]

    sealed = cipher.seal_many(items)
    opened = cipher.open_many(sealed)

    assert (store.writes, store.reads) == (1, 1)
    assert opened == [ALICE] * BATCH


def test_records_of_one_person_in_one_batch_share_a_key(cipher: PersonalCipher) -> None:
    first, second, other = cipher.seal_many([("alice", ALICE), ("alice", BOB), ("bob", BOB)])

    assert first.key_id == second.key_id != other.key_id


def test_empty_batches_call_no_store(cipher: PersonalCipher, store: CountingStore) -> None:
    assert cipher.seal_many([]) == []
    assert cipher.open_many([]) == []
    assert (store.writes, store.reads) == (0, 0)


def test_every_seal_uses_a_fresh_nonce(cipher: PersonalCipher) -> None:
    sealed = cipher.seal_many([("alice", ALICE)] * 50)

    assert len({record.nonce for record in sealed}) == 50
    assert len({record.ciphertext for record in sealed}) == 50
    assert all(len(base64.b64decode(record.nonce)) == 12 for record in sealed)


def test_data_reads_as_erased_once_the_key_is_destroyed(
    cipher: PersonalCipher, store: CountingStore
) -> None:
    alice, bob = cipher.seal_many([("alice", ALICE), ("bob", BOB)])

    store.destroy("alice")

    assert cipher.open_many([alice, bob]) == [ErasedPersonalData(), BOB]


def test_data_sealed_after_an_erasure_uses_a_new_key(
    cipher: PersonalCipher, store: CountingStore
) -> None:
    before = cipher.seal("alice", ALICE)
    store.destroy("alice")

    after = cipher.seal("alice", BOB)

    assert after.key_id != before.key_id
    assert cipher.open_many([before, after]) == [ErasedPersonalData(), BOB]


def test_erasure_outlives_the_process(tmp_path: Path) -> None:
    sealed = PersonalCipher(store=_open_store(tmp_path)).seal("alice", ALICE)
    _open_store(tmp_path).destroy("alice")

    assert PersonalCipher(store=_open_store(tmp_path)).open(sealed) == ErasedPersonalData()


def test_data_under_an_unknown_key_reads_as_erased(cipher: PersonalCipher) -> None:
    sealed = cipher.seal("alice", ALICE).model_copy(update={"key_id": "no-such-key"})

    assert cipher.open(sealed) == ErasedPersonalData()


def test_an_altered_ciphertext_is_tampering_not_erasure(cipher: PersonalCipher) -> None:
    sealed = cipher.seal("alice", ALICE)
    altered = sealed.model_copy(update={"ciphertext": _flip_first_byte(sealed.ciphertext)})

    with pytest.raises(PersonalDataTamperedError) as tampered:
        cipher.open_many([cipher.seal("bob", BOB), altered])

    assert tampered.value.key_id == sealed.key_id
    assert "alice" not in str(tampered.value)


def test_an_altered_nonce_is_tampering(cipher: PersonalCipher) -> None:
    sealed = cipher.seal("alice", ALICE)
    altered = sealed.model_copy(update={"nonce": _flip_first_byte(sealed.nonce)})

    with pytest.raises(PersonalDataTamperedError):
        cipher.open(altered)


def test_a_nonce_of_the_wrong_length_is_tampering(cipher: PersonalCipher) -> None:
    sealed = cipher.seal("alice", ALICE)
    altered = sealed.model_copy(update={"nonce": base64.b64encode(b"n" * 16).decode()})

    with pytest.raises(PersonalDataTamperedError):
        cipher.open(altered)


def test_data_moved_to_another_persons_key_id_is_tampering(cipher: PersonalCipher) -> None:
    alice, bob = cipher.seal_many([("alice", ALICE), ("bob", BOB)])

    with pytest.raises(PersonalDataTamperedError) as tampered:
        cipher.open(alice.model_copy(update={"key_id": bob.key_id}))

    assert tampered.value.key_id == bob.key_id


def test_the_key_id_is_authenticated_even_under_the_same_key() -> None:
    cipher = PersonalCipher(store=OneKeyStore())
    sealed = cipher.seal("alice", ALICE)
    assert cipher.open(sealed) == ALICE

    with pytest.raises(PersonalDataTamperedError):
        cipher.open(sealed.model_copy(update={"key_id": "bob/1"}))


def test_a_sealed_record_survives_its_json_round_trip(cipher: PersonalCipher) -> None:
    sealed = cipher.seal("alice", ALICE)

    assert cipher.open(SealedPersonalData.model_validate_json(sealed.model_dump_json())) == ALICE


_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=200)


@given(
    data=st.builds(
        PersonalData,
        address=st.none() | st.emails(),
        ip=st.ip_addresses().map(str),
        user_agent=_texts,
        page_url=st.none() | _texts,
        note=st.none() | _texts,
    ),
    subject=st.text("abcdef0123456789", min_size=1, max_size=128),
)
def test_any_personal_data_round_trips(
    tmp_path_factory: pytest.TempPathFactory, data: PersonalData, subject: str
) -> None:
    cipher = PersonalCipher(store=_open_store(_shared_store_dir(tmp_path_factory)))

    assert cipher.open(cipher.seal(subject, data)) == data


def _shared_store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Every example shares one file: creating a database per example would dominate the run.
    path = tmp_path_factory.getbasetemp() / "round-trips"
    path.mkdir(exist_ok=True)
    return path
