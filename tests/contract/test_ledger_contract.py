"""The ledger's contract, written once and run on SQLite (embedded) and PostgreSQL (production)."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import OperationalError

from ledger.domain.aggregates import Person
from ledger.domain.commands import (
    AcceptPolicy,
    CloseRightsRequest,
    Command,
    ConfirmConsent,
    EraseSubject,
    ExtendRightsRequest,
    GrantConsent,
    OpenRightsRequest,
    PublishPolicyVersion,
    RegisterPurpose,
    Unsubscribe,
    WithdrawConsent,
    build,
)
from ledger.domain.errors import (
    CommandFailedError,
    ConsentNotPendingError,
    DuplicatePurposeError,
    FutureOccurrenceError,
    InvalidAddressError,
    InvalidFieldError,
    NaiveDatetimeError,
    OversizeEvidenceError,
    PolicyTextMismatchError,
    RightsRequestAlreadyExtendedError,
    StoreUnavailableError,
    UnknownChannelError,
    UnknownPolicyVersionError,
    UnknownPurposeError,
)
from ledger.domain.handlers import Context, handle
from ledger.domain.identity import SubjectHasher
from ledger.domain.rules import ConsentStatus
from ledger.privacy.keystore import DataKeyStore, PostgresDataKeyStore, SQLiteDataKeyStore
from ledger.store.events import LedgerStore, PostgresStoreConfig, SQLiteStoreConfig, StoreConfig
from ledger.write.group_commit import GroupCommitConfig
from ledger.write.service import CommandResult, Ledger, LedgerConfig
from schemas import ErasedPersonalData, PersonalData, parse_event

TIMEOUT_S = 30.0
"""How long a test waits for one submitted command."""

SECRET = b"s" * 32
MASTER = b"m" * 32
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
POLICY_SHA = "a" * 64

LedgerFactory = Callable[..., Ledger]


def _purpose(name: str = "newsletter") -> RegisterPurpose:
    return RegisterPurpose(
        purpose=name,
        legal_basis="consent",
        description="The monthly newsletter",
        direct_marketing=True,
        occurred_at=T0,
    )


def _policy(
    version: str = "v1", purposes: tuple[str, ...] = ("newsletter",)
) -> PublishPolicyVersion:
    return PublishPolicyVersion(
        version=version,
        text_sha256=POLICY_SHA,
        effective_at=T0,
        purposes=purposes,
        occurred_at=T0,
    )


def _grant(subject: str | None = "p-1", **fields: Any) -> GrantConsent:
    values: dict[str, Any] = {
        "subject": subject,
        "purpose": "newsletter",
        "policy_version": "v1",
        "occurred_at": T0 + timedelta(hours=1),
    }
    values.update(fields)
    return build(GrantConsent, values)


def _count_transactions(ledger: Ledger) -> list[int]:
    """The number of aggregates of each append to the store (one transaction) from now on."""
    transactions: list[int] = []
    original = ledger.store.append

    def counting(aggregates: Any) -> Any:
        transactions.append(len(aggregates))
        return original(aggregates)

    ledger.store.append = counting  # type: ignore[method-assign]
    return transactions


def _fail_the_next_append(ledger: Ledger) -> None:
    """The store's next append fails as on a lost connection; the ones after it succeed."""
    original = ledger.store.append
    failures = iter([OperationalError("connection lost")])

    def failing_once(aggregates: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return original(aggregates)

    ledger.store.append = failing_once  # type: ignore[method-assign]


def _regranted_under_a_new_key(ledger: Ledger, subject: str) -> str | None:
    """The grant before the erasure reads as erased, the one after it as personal data: its
    address is returned."""
    history = ledger.history(subject, decrypt=True)
    assert [e.event_type for e in history] == ["ConsentGranted", "SubjectErased", "ConsentGranted"]
    assert isinstance(history[0].personal, ErasedPersonalData)
    assert isinstance(history[2].personal, PersonalData)
    return history[2].personal.address


class LedgerContract:
    """Behaviour both persistence modes must show; subclasses give the store and key store."""

    @pytest.fixture
    def make_ledger(self) -> Iterator[LedgerFactory]:
        raise NotImplementedError

    @pytest.fixture
    def ledger(self, make_ledger: LedgerFactory) -> Ledger:
        ledger = make_ledger()
        ledger.execute(_purpose())
        ledger.execute(_policy())
        return ledger

    def test_grant_is_recorded_with_a_position(self, ledger: Ledger) -> None:
        head = ledger.store.head()
        result = ledger.execute(_grant())
        assert result.position == head + 1
        assert len(result.event_ids) == 1
        person = ledger.person("p-1")
        assert person is not None
        assert person.consents[("newsletter", "email")].status is ConsentStatus.GRANTED

    def test_unknown_purpose_and_unpublished_policy_write_nothing(self, ledger: Ledger) -> None:
        head = ledger.store.head()
        with pytest.raises(UnknownPurposeError) as purpose_error:
            ledger.execute(_grant(purpose="partner_sharing"))
        assert purpose_error.value.field == "purpose"
        with pytest.raises(UnknownPolicyVersionError) as policy_error:
            ledger.execute(_grant(policy_version="v9"))
        assert policy_error.value.field == "policy_version"
        assert ledger.store.head() == head

    def test_withdrawal_and_unsubscribe_are_accepted_without_a_grant(self, ledger: Ledger) -> None:
        withdrawn = ledger.execute(
            WithdrawConsent(subject="p-2", purpose="unknown_purpose", occurred_at=T0)
        )
        unsubscribed = ledger.execute(Unsubscribe(subject="p-3", occurred_at=T0))
        assert unsubscribed.position > withdrawn.position
        person = ledger.person("p-3")
        assert person is not None
        assert "*" in person.unsubscribed

    def test_retried_command_returns_the_original_result(self, ledger: Ledger) -> None:
        command = _grant(command_id="retry-1")
        first = ledger.execute(command)
        head = ledger.store.head()
        again = ledger.execute(_grant(command_id="retry-1"))
        assert again.duplicate
        assert (again.event_ids, again.position) == (first.event_ids, first.position)
        assert ledger.store.head() == head

    def test_retried_command_is_idempotent_across_processes(
        self, ledger: Ledger, make_ledger: LedgerFactory
    ) -> None:
        first = ledger.execute(_grant(command_id="across-1"))
        other = make_ledger()
        again = other.execute(_grant(command_id="across-1"))
        assert again.duplicate
        assert again.position == first.position
        assert other.store.head() == first.position

    def test_two_writers_on_one_person_lose_nothing(
        self, ledger: Ledger, make_ledger: LedgerFactory
    ) -> None:
        other = make_ledger()
        ledger.execute(_grant("shared"))
        other.execute(_grant("shared", command_id="warm-other-cache"))
        commands = [
            (
                ledger if n % 2 else other,
                Unsubscribe(subject="shared", list_id=f"l{n}", occurred_at=T0),
            )
            for n in range(40)
        ]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda pair: pair[0].execute(pair[1]), commands))
        assert len({r.position for r in results}) == 40
        person = ledger.person("shared")
        assert person is not None
        assert person.unsubscribed_lists == {f"l{n}" for n in range(40)}
        assert person.version == 42

    def test_one_invalid_command_never_fails_its_neighbours(self, ledger: Ledger) -> None:
        commands = [_grant(f"n-{n}") for n in range(30)]
        commands.insert(15, _grant("bad", purpose="never_registered"))
        # Submitted together, they share group-commit batches with the invalid one.
        futures = [ledger.submit(command) for command in commands]
        with pytest.raises(UnknownPurposeError):
            futures[15].result(timeout=TIMEOUT_S)
        assert all(
            isinstance(future.result(timeout=TIMEOUT_S), CommandResult)
            for i, future in enumerate(futures)
            if i != 15
        )
        assert ledger.person("bad") is None

    def test_a_person_command_on_the_catalog_key_is_refused_alone_naming_the_subject(
        self, ledger: Ledger
    ) -> None:
        request_id = uuid4()
        bad: list[tuple[type[Command], dict[str, Any]]] = [
            (ConfirmConsent, {"purpose": "newsletter"}),
            (OpenRightsRequest, {"right": "access"}),
            (ExtendRightsRequest, {"request_id": request_id, "due_at": T0, "reason": "busy"}),
            (CloseRightsRequest, {"request_id": request_id, "outcome": "fulfilled"}),
        ]
        for command_type, fields in bad:
            with pytest.raises(InvalidFieldError) as refused:
                build(command_type, fields, subject="@catalog", occurred_at=T0)
            assert refused.value.field == "subject"
        # Past that check (a command built without it), handling raises: that command fails
        # alone, with an error that is no retry, and its batch commits the others.
        unchecked = ConfirmConsent.model_construct(
            subject="@catalog", purpose="newsletter", occurred_at=T0, command_id="unchecked"
        )
        head = ledger.store.head()
        commands: list[Any] = [_grant(f"b-{n}") for n in range(20)]
        commands.insert(10, unchecked)
        futures = [ledger.submit(command) for command in commands]
        with pytest.raises(CommandFailedError) as failed:
            futures[10].result(timeout=TIMEOUT_S)
        assert not failed.value.retryable
        others = [f.result(timeout=TIMEOUT_S) for i, f in enumerate(futures) if i != 10]
        assert [result.subject for result in others] == [f"b-{n}" for n in range(20)]
        assert ledger.store.head() == head + 20

    def test_callers_on_an_event_loop_and_one_that_stops_waiting(self, ledger: Ledger) -> None:
        commands = [_grant(f"loop-{n}") for n in range(6)]

        async def callers() -> list[Any]:
            waiting = [asyncio.ensure_future(ledger.record(command)) for command in commands]
            await asyncio.sleep(0)  # every command submitted
            waiting[2].cancel()
            return await asyncio.gather(*waiting, return_exceptions=True)

        answers = asyncio.run(callers())
        assert isinstance(answers[2], asyncio.CancelledError)
        for n, answer in enumerate(answers):
            if n != 2:
                assert not answer.duplicate
                assert answer.subject == f"loop-{n}"
        # The caller that left did not take its command with it: recorded, once.
        assert ledger.execute(commands[2]).duplicate
        assert ledger.person("loop-2") is not None

    def test_concurrent_callers_share_transactions_and_each_get_their_result(
        self, ledger: Ledger
    ) -> None:
        transactions = _count_transactions(ledger)
        barrier = threading.Barrier(16)

        def call(n: int) -> int:
            barrier.wait()
            return ledger.execute(_grant(f"c-{n}")).position

        with ThreadPoolExecutor(max_workers=16) as pool:
            positions = list(pool.map(call, range(16)))
        assert 0 < len(transactions) < 16
        for n, position in enumerate(positions):
            stored = ledger.store.notifications(after=position - 1, limit=1)[0]
            assert parse_event(stored.state).subject == f"c-{n}"

    def test_address_is_hashed_and_personal_data_encrypted(self, ledger: Ledger) -> None:
        result = ledger.execute(
            _grant(
                None,
                address="Alice@Example.org",
                personal=PersonalData(ip="192.0.2.1"),
            )
        )
        assert result.subject == SubjectHasher(secret=SECRET).subject_for("alice@example.org")
        stored = ledger.store.notifications(after=result.position - 1, limit=1)[0].state
        assert b"alice" not in stored.lower()
        assert b"192.0.2.1" not in stored
        opened = ledger.history(result.subject, decrypt=True)[0].personal
        assert isinstance(opened, PersonalData)
        assert (opened.address, opened.ip) == ("Alice@Example.org", "192.0.2.1")

    def test_erasure_destroys_old_personal_data_and_new_data_uses_a_new_key(
        self, ledger: Ledger
    ) -> None:
        subject = ledger.execute(_grant(None, address="bob@example.org")).subject
        ledger.execute(EraseSubject(subject=subject, occurred_at=T0 + timedelta(days=1)))
        ledger.execute(_grant(None, address="bob@example.org", occurred_at=T0 + timedelta(days=2)))
        assert _regranted_under_a_new_key(ledger, subject) == "bob@example.org"

    def test_bad_input_raises_typed_errors_naming_the_field(self, ledger: Ledger) -> None:
        head = ledger.store.head()
        with pytest.raises(InvalidAddressError) as address:
            ledger.execute(_grant(None, address="not-an-address"))
        assert address.value.field == "address"
        with pytest.raises(UnknownChannelError) as channel:
            _grant(channel="pigeon")
        assert channel.value.field == "channel"
        with pytest.raises(NaiveDatetimeError) as naive:
            _grant(occurred_at=datetime(2026, 1, 1, 12, 0))  # noqa: DTZ001 - the point of the test
        assert naive.value.field == "occurred_at"
        with pytest.raises(FutureOccurrenceError) as future:
            ledger.execute(_grant(occurred_at=datetime.now(UTC) + timedelta(days=1)))
        assert future.value.field == "occurred_at"
        with pytest.raises(OversizeEvidenceError) as oversize:
            _grant(evidence={"form_id": "x" * 5000})
        assert oversize.value.field == "evidence"
        assert ledger.store.head() == head

    def test_rules_on_person_state(self, ledger: Ledger) -> None:
        with pytest.raises(ConsentNotPendingError):
            ledger.execute(ConfirmConsent(subject="r-1", purpose="newsletter", occurred_at=T0))
        ledger.execute(_grant("r-1", double_opt_in="pending"))
        ledger.execute(ConfirmConsent(subject="r-1", purpose="newsletter", occurred_at=T0))
        request = OpenRightsRequest(subject="r-1", right="access", occurred_at=T0)
        opened = ledger.history("r-1")
        ledger.execute(request)
        extend = {"subject": "r-1", "request_id": request.request_id, "reason": "complex request"}
        ledger.execute(
            ExtendRightsRequest(**extend, due_at=T0 + timedelta(days=60), occurred_at=T0)
        )
        with pytest.raises(RightsRequestAlreadyExtendedError):
            ledger.execute(
                ExtendRightsRequest(**extend, due_at=T0 + timedelta(days=90), occurred_at=T0)
            )
        ledger.execute(
            CloseRightsRequest(
                subject="r-1", request_id=request.request_id, outcome="fulfilled", occurred_at=T0
            )
        )
        with pytest.raises(DuplicatePurposeError):
            ledger.execute(_purpose())
        with pytest.raises(PolicyTextMismatchError):
            ledger.execute(
                AcceptPolicy(subject="r-1", version="v1", text_sha256="b" * 64, occurred_at=T0)
            )
        ledger.execute(AcceptPolicy(subject="r-1", version="v1", occurred_at=T0))
        person = ledger.person("r-1")
        assert person is not None
        assert len(ledger.history("r-1")) == len(opened) + 4
        assert person.accepted_policies == {"v1": POLICY_SHA}
        assert person.rights_requests[request.request_id].outcome == "fulfilled"

    def test_catalog_written_by_another_process_is_seen(
        self, ledger: Ledger, make_ledger: LedgerFactory
    ) -> None:
        ledger.execute(_grant("warm"))
        other = make_ledger()
        other.execute(_purpose("partner_sharing"))
        other.execute(_policy("v2", ("newsletter", "partner_sharing")))
        result = ledger.execute(_grant("late", purpose="partner_sharing", policy_version="v2"))
        assert result.position == ledger.store.head()

    def test_replay_gives_the_state_the_writer_holds(self, ledger: Ledger) -> None:
        ledger.execute(_grant("replay"))
        ledger.execute(Unsubscribe(subject="replay", purpose="newsletter", occurred_at=T0))
        ledger.execute(_grant("replay", occurred_at=T0 + timedelta(days=3)))
        cached = ledger.cached("replay")
        replayed = ledger.person("replay")
        assert isinstance(cached, Person)
        assert replayed == cached

    def test_a_store_error_fails_only_its_batch_with_a_retryable_error(
        self, ledger: Ledger
    ) -> None:
        _fail_the_next_append(ledger)
        with pytest.raises(StoreUnavailableError) as failed:
            ledger.execute(_grant("flaky"))
        assert failed.value.retryable
        assert ledger.person("flaky") is None
        assert ledger.execute(_grant("flaky")).position == ledger.store.head()

    def test_a_bulk_chunk_is_one_transaction_with_each_commands_result_in_place(
        self, ledger: Ledger
    ) -> None:
        transactions = _count_transactions(ledger)
        head = ledger.store.head()
        commands = [_grant(None, address=f"bulk{n}@example.org") for n in range(20)]
        commands[3] = _grant(None, address="bulk3@example.org", purpose="never_registered")
        # A bad address never gets this far: the command itself refuses it.
        with pytest.raises(InvalidAddressError):
            _grant(None, address="not-an-address")
        commands[7] = _grant(None, address="bulk7@example.org", policy_version="never_published")
        commands[11] = _grant(
            None, address="late@example.org", occurred_at=T0 + timedelta(days=3650)
        )
        results = ledger.record_many(commands)
        assert len(transactions) == 1
        assert isinstance(results[3], UnknownPurposeError)
        assert isinstance(results[7], UnknownPolicyVersionError)
        assert isinstance(results[11], FutureOccurrenceError)
        recorded = [r for r in results if not isinstance(r, Exception)]
        assert len(recorded) == 17
        assert [r.position for r in recorded] == list(range(head + 1, head + 18))
        for result, n in zip(recorded, [n for n in range(20) if n not in (3, 7, 11)], strict=True):
            assert result.subject == SubjectHasher(secret=SECRET).subject_for(
                f"bulk{n}@example.org"
            )
        assert ledger.store.head() == head + 17

    def test_a_bulk_chunk_stores_the_events_commands_store_one_by_one(self, ledger: Ledger) -> None:
        one = ledger.execute(_grant(None, address="one@example.org", personal={"ip": "192.0.2.1"}))
        bulk = ledger.record_many(
            [_grant(None, address="bulk@example.org", personal={"ip": "192.0.2.1"})]
        )[0]
        assert not isinstance(bulk, Exception)
        stored = [
            parse_event(ledger.store.notifications(after=r.position - 1, limit=1)[0].state)
            for r in (one, bulk)
        ]
        different = {"event_id", "subject", "recorded_at", "command_id", "personal", "position"}
        assert [e.model_dump(exclude=different) for e in stored] == [
            stored[0].model_dump(exclude=different)
        ] * 2
        raw = ledger.store.notifications(after=bulk.position - 1, limit=1)[0].state
        assert b"bulk@" not in raw
        assert b"192.0.2.1" not in raw
        opened = ledger.history(bulk.subject, decrypt=True)[0].personal
        assert isinstance(opened, PersonalData)
        assert (opened.address, opened.ip) == ("bulk@example.org", "192.0.2.1")
        sealed = [e.personal for e in stored]
        assert sealed[0].key_id != sealed[1].key_id  # type: ignore[union-attr]

    def test_a_caller_command_id_is_stored_only_as_its_keyed_hash(self, ledger: Ledger) -> None:
        address = "jeanne@example.fr"
        caller_id = f"signup-{address}"
        first = ledger.execute(_grant(None, address=address, command_id=caller_id))
        again = ledger.execute(_grant(None, address=address, command_id=caller_id))
        bulk_again = ledger.record_many([_grant(None, address=address, command_id=caller_id)])[0]

        assert first.command_id == caller_id  # the caller gets back what it sent
        assert (again.duplicate, again.event_ids, again.position) == (
            True,
            first.event_ids,
            first.position,
        )
        assert isinstance(bulk_again, CommandResult)
        assert (bulk_again.duplicate, bulk_again.event_ids) == (True, first.event_ids)
        assert ledger.store.head() == first.position
        raw = ledger.store.notifications(after=first.position - 1, limit=1)[0].state
        assert address.encode() not in raw
        assert b"jeanne" not in raw
        stored = parse_event(raw).command_id
        assert stored == SubjectHasher(secret=SECRET).command_id_for(caller_id)
        assert stored != SubjectHasher(secret=b"o" * 32).command_id_for(caller_id)
        assert stored.startswith("kc1:")
        assert stored != SubjectHasher(secret=SECRET).subject_for(address)

    def test_a_command_stored_before_ids_were_keyed_is_still_a_duplicate(
        self, ledger: Ledger
    ) -> None:
        legacy = _grant("p-legacy", command_id="legacy-1")
        person = Person.new("p-legacy")
        context = Context(
            subject="p-legacy",
            catalog=ledger.catalog(),
            person=person,
            recorded_at=T0 + timedelta(hours=2),
            personal=None,
            command_id=legacy.command_id,  # as the ledger stored it then: in clear
        )
        person.trigger(handle(legacy, context))
        ledger.store.append([person])
        head = ledger.store.head()

        retried = ledger.execute(_grant("p-legacy", command_id="legacy-1"))

        assert retried.duplicate
        assert retried.position == head
        assert ledger.store.head() == head

    def test_a_bulk_chunk_recorded_again_appends_nothing(self, ledger: Ledger) -> None:
        single = ledger.execute(_grant("b-0", command_id="bulk-0"))
        commands = [_grant(f"b-{n}", command_id=f"bulk-{n}") for n in range(10)]
        first = ledger.record_many(commands)
        head = ledger.store.head()
        again = ledger.record_many([_grant(f"b-{n}", command_id=f"bulk-{n}") for n in range(10)])
        assert ledger.store.head() == head
        assert [r.duplicate for r in first] == [True] + [False] * 9  # type: ignore[union-attr]
        assert all(r.duplicate for r in again)  # type: ignore[union-attr]
        assert [(r.event_ids, r.position) for r in again] == [  # type: ignore[union-attr]
            (r.event_ids, r.position)  # type: ignore[union-attr]
            for r in first
        ]
        assert (first[0].event_ids, first[0].position) == (single.event_ids, single.position)  # type: ignore[union-attr]

    def test_the_same_command_twice_in_a_chunk_is_recorded_once(self, ledger: Ledger) -> None:
        head = ledger.store.head()
        results = ledger.record_many([_grant("twice", command_id="twice")] * 2)
        assert ledger.store.head() == head + 1
        assert [r.duplicate for r in results] == [False, True]  # type: ignore[union-attr]
        assert results[0].position == results[1].position == head + 1  # type: ignore[union-attr]

    def test_data_after_an_erasure_in_the_same_chunk_goes_under_the_new_key(
        self, ledger: Ledger
    ) -> None:
        subject = ledger.execute(_grant(None, address="erin@example.org")).subject
        results = ledger.record_many(
            [
                EraseSubject(subject=subject, occurred_at=T0 + timedelta(days=1)),
                _grant(None, address="erin@example.org", occurred_at=T0 + timedelta(days=2)),
            ]
        )
        assert not any(isinstance(r, Exception) for r in results)
        assert _regranted_under_a_new_key(ledger, subject) == "erin@example.org"

    def test_a_bulk_writer_with_a_stale_copy_loses_nothing(
        self, ledger: Ledger, make_ledger: LedgerFactory
    ) -> None:
        ledger.execute(_grant("stale"))
        other = make_ledger()
        other.execute(_grant("stale", command_id="other-1"))
        results = ledger.record_many(
            [Unsubscribe(subject="stale", list_id=f"l{n}", occurred_at=T0) for n in range(5)]
        )
        assert not any(isinstance(r, Exception) for r in results)
        person = ledger.person("stale")
        assert person is not None
        assert person.version == 7
        assert person.unsubscribed_lists == {f"l{n}" for n in range(5)}
        assert ledger.cached("stale") in (None, person)

    def test_a_store_error_fails_the_bulk_chunk_with_a_retryable_error(
        self, ledger: Ledger
    ) -> None:
        _fail_the_next_append(ledger)
        failed = ledger.record_many([_grant("flaky-1"), _grant("flaky-2")])
        assert all(isinstance(r, StoreUnavailableError) and r.retryable for r in failed)
        assert ledger.person("flaky-1") is None
        assert ledger.record_many([_grant("flaky-1")])[0].position == ledger.store.head()  # type: ignore[union-attr]

    def test_a_key_store_outage_fails_the_bulk_chunk_and_not_the_caller(
        self, ledger: Ledger
    ) -> None:
        original = ledger.keys.keys_for_writing

        def unavailable(subjects: Any) -> Any:
            raise StoreUnavailableError("the data-key store is unavailable")

        ledger.keys.keys_for_writing = unavailable  # type: ignore[method-assign]
        head = ledger.store.head()
        commands = [_grant(None, address=f"k{n}@example.org") for n in range(3)]
        failed = ledger.record_many(commands)
        assert all(isinstance(r, StoreUnavailableError) for r in failed)
        assert ledger.store.head() == head
        ledger.keys.keys_for_writing = original  # type: ignore[method-assign]
        assert not any(isinstance(r, Exception) for r in ledger.record_many(commands))


def _ledger(store_config: StoreConfig, keys: DataKeyStore) -> Ledger:
    keys.migrate()
    return Ledger(
        store=LedgerStore(store_config),
        keys=keys,
        hasher=SubjectHasher(secret=SECRET),
        config=LedgerConfig(group_commit=GroupCommitConfig(max_batch=64, max_wait_s=0.002)),
    )


class TestSQLiteLedger(LedgerContract):
    @pytest.fixture
    def make_ledger(self, tmp_path: Path) -> Iterator[LedgerFactory]:
        path = tmp_path / "ledger.sqlite3"
        made: list[Ledger] = []

        def make() -> Ledger:
            ledger = _ledger(
                SQLiteStoreConfig(path=path), SQLiteDataKeyStore(path=path, master_key=MASTER)
            )
            made.append(ledger)
            return ledger

        yield make
        for ledger in made:
            ledger.close()


@pytest.mark.integration
class TestPostgresLedger(LedgerContract):
    @pytest.fixture
    def make_ledger(self, pg_dsn: str, schema: str) -> Iterator[LedgerFactory]:
        made: list[Ledger] = []

        def make() -> Ledger:
            ledger = _ledger(
                PostgresStoreConfig(dsn=pg_dsn, schema=schema, pool_size=4),
                PostgresDataKeyStore(dsn=pg_dsn, master_key=MASTER, schema=schema),
            )
            made.append(ledger)
            return ledger

        yield make
        for ledger in made:
            ledger.close()
