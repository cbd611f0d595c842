"""The ledger: validates commands, decides their events and stores them by group commit."""

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError, Recording
from pydantic import ValidationError

from ledger.aggregates import Catalog, LedgerAggregate, Person, aggregate_id
from ledger.commands import CatalogCommand, Command, EraseSubject, PersonCommand, field_error
from ledger.decisions import Context, decide
from ledger.errors import (
    ConcurrencyConflictError,
    FutureOccurrenceError,
    LedgerError,
    RuleViolationError,
    StoreUnavailableError,
)
from ledger.group_commit import GroupCommitConfig, GroupCommitter, Submission
from ledger.identity import SubjectHasher
from ledger.keystore import DataKeyStore
from ledger.personal import PersonalCipher
from ledger.snapshots import dump_aggregate, load_aggregate
from ledger.store import LedgerStore
from schemas import CATALOG_SUBJECT, EventBase, PersonalData, SealedPersonalData

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

CONFLICT_BACKOFF_S = 0.005


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    group_commit: GroupCommitConfig = field(default_factory=GroupCommitConfig)
    future_tolerance: timedelta = timedelta(minutes=5)
    """How far ahead of our clock ``occurred_at`` may be (the caller's clock may run fast)."""
    conflict_attempts: int = 10
    """Tries of a batch when another process wrote the same person meanwhile."""
    cache_size: int = 20_000
    """Aggregates kept in memory between commands (each re-checked on conflict)."""
    command_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a caller gets back: the events recorded and the position to wait for when reading."""

    command_id: str
    subject: str
    event_ids: tuple[UUID, ...]
    position: int
    """The ledger position of the command's last event: a consistency token for reads."""
    duplicate: bool = False
    """True when the command id had been recorded before and nothing new was appended."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A command with its person resolved and its personal data gathered, before the batch."""

    command: Command
    subject: str
    personal: PersonalData | None


@dataclass(frozen=True, slots=True)
class Applied:
    """A command that is (or, for a duplicate, already was) in the aggregate's events."""

    aggregate: LedgerAggregate
    events: tuple[tuple[UUID, int], ...]
    duplicate: bool


Outcome = Applied | LedgerError


@dataclass(slots=True)
class _BatchState:
    """The aggregates one attempt at a batch works on, and what it learnt about their age."""

    recorded_at: datetime
    fresh: set[str]
    aggregates: dict[str, LedgerAggregate] = field(default_factory=dict)
    loaded_fresh: set[str] = field(default_factory=set)
    stale_rejections: set[str] = field(default_factory=set)


class Ledger:
    """The write side. Thread-safe: ``execute`` may be called from many threads at once."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        keys: DataKeyStore,
        hasher: SubjectHasher,
        config: LedgerConfig | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.keys = keys
        self.cipher = PersonalCipher(store=keys)
        self.hasher = hasher
        self.config = config or LedgerConfig()
        self.clock = clock
        # Cached aggregates are kept as snapshots: bytes are invisible to the cyclic garbage
        # collector, whose full collections otherwise grow with the cache (over 100 ms at
        # 15,000 people here, stalling every caller).
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._committer: GroupCommitter[Prepared, CommandResult] = GroupCommitter(
            self._handle_batch, config=self.config.group_commit, name="ledger-group-commit"
        )

    # -- the caller's side ---------------------------------------------------------------------

    def submit(self, command: Command) -> Future[CommandResult]:
        """Validate now (raising `LedgerError` at once) and queue for the next batch."""
        return self._committer.submit(self.prepare(command))

    def execute(self, command: Command) -> CommandResult:
        """Record one command and wait until it is durable (or refused)."""
        return self.submit(command).result(timeout=self.config.command_timeout_s)

    def execute_many(self, commands: Iterable[Command]) -> list[CommandResult | LedgerError]:
        """Submit all, then wait for all; each gets its own result or error."""
        futures: list[Future[CommandResult] | LedgerError] = []
        for command in commands:
            try:
                futures.append(self.submit(command))
            except LedgerError as error:
                futures.append(error)
        results: list[CommandResult | LedgerError] = []
        for future in futures:
            if isinstance(future, LedgerError):
                results.append(future)
                continue
            try:
                results.append(future.result(timeout=self.config.command_timeout_s))
            except LedgerError as error:
                results.append(error)
        return results

    def prepare(self, command: Command) -> Prepared:
        now = self.clock()
        if command.occurred_at > now + self.config.future_tolerance:
            raise FutureOccurrenceError(
                "occurred_at", f"more than {self.config.future_tolerance} ahead of the ledger clock"
            )
        if isinstance(command, CatalogCommand):
            return Prepared(command, CATALOG_SUBJECT, None)
        if not isinstance(command, PersonCommand):
            msg = f"not a ledger command: {type(command).__name__}"
            raise TypeError(msg)
        personal = command.personal
        if command.address is not None:
            subject = self.hasher.subject_for(command.address)
            fields = personal.model_dump(exclude={"kind"}) if personal else {}
            try:
                personal = PersonalData(**{**fields, "address": command.address})
            except ValidationError as error:
                raise field_error(error) from None
        else:
            subject = str(command.subject)
        return Prepared(command, subject, personal)

    def close(self) -> None:
        self._committer.close()
        self.keys.close()
        self.store.close()

    # -- reading -------------------------------------------------------------------------------

    def person(self, subject: str) -> Person | None:
        aggregate = self.store.load(aggregate_id(subject))
        return aggregate if isinstance(aggregate, Person) else None

    def catalog(self) -> Catalog:
        aggregate = self.store.load(aggregate_id(CATALOG_SUBJECT))
        return aggregate if isinstance(aggregate, Catalog) else Catalog.new()

    def history(self, subject: str, *, decrypt: bool = False) -> list[EventBase]:
        """Every event of one person in order; personal fields opened only when asked."""
        events = [event.envelope for event in self.store.events.get(aggregate_id(subject))]  # type: ignore[attr-defined]
        if not decrypt:
            return events
        sealed = [e.personal for e in events if isinstance(e.personal, SealedPersonalData)]
        opened = iter(self.cipher.open_many(sealed))
        return [
            e.model_copy(update={"personal": next(opened)})
            if isinstance(e.personal, SealedPersonalData)
            else e
            for e in events
        ]

    # -- the batch -----------------------------------------------------------------------------

    def _handle_batch(self, batch: Sequence[Submission[Prepared, CommandResult]]) -> None:
        batch = self._defer_after_erasure(batch)
        try:
            sealed = self.cipher.seal_many(
                [(s.item.subject, s.item.personal) for s in batch if s.item.personal is not None]
            )
        except (PersistenceError, OSError) as error:
            self._fail(
                batch, StoreUnavailableError(f"data keys unavailable: {type(error).__name__}")
            )
            return
        sealed_iter = iter(sealed)
        personal: list[SealedPersonalData | None] = [
            next(sealed_iter) if s.item.personal is not None else None for s in batch
        ]
        fresh: set[str] = set()
        for attempt in range(1, self.config.conflict_attempts + 1):
            outcome = self._attempt(batch, personal, fresh)
            if outcome is None:
                return
            fresh = outcome
            logger.info("group commit: retrying a batch of %d (attempt %d)", len(batch), attempt)
            # Two writers retrying in lockstep would collide again: back off a random while.
            time.sleep(random.uniform(0, CONFLICT_BACKOFF_S * attempt))  # noqa: S311 - jitter
        for submission in batch:
            if not submission.future.done():
                submission.future.set_exception(
                    ConcurrencyConflictError(submission.item.subject, self.config.conflict_attempts)
                )

    def _defer_after_erasure(
        self, batch: Sequence[Submission[Prepared, CommandResult]]
    ) -> list[Submission[Prepared, CommandResult]]:
        # Personal data is sealed under the person's current key before the batch is stored, so a
        # command following an erasure of the same person waits for the next batch: its data
        # then goes under the new key rather than the one about to be destroyed.
        erased: set[str] = set()
        kept: list[Submission[Prepared, CommandResult]] = []
        for submission in batch:
            if submission.item.subject in erased:
                self._committer.resubmit(submission)
                continue
            if isinstance(submission.item.command, EraseSubject):
                erased.add(submission.item.subject)
            kept.append(submission)
        return kept

    def _attempt(
        self,
        batch: Sequence[Submission[Prepared, CommandResult]],
        personal: Sequence[SealedPersonalData | None],
        fresh: set[str],
    ) -> set[str] | None:
        """One try at the batch: None when every submission is resolved, else who to reload."""
        state = _BatchState(recorded_at=self.clock(), fresh=fresh)
        self._load(state, {s.item.subject for s in batch} | {CATALOG_SUBJECT})
        outcomes = [
            self._decide_one(submission.item, sealed, state)
            for submission, sealed in zip(batch, personal, strict=True)
        ]
        if state.stale_rejections:
            self._evict(state.aggregates)
            return fresh | state.stale_rejections

        changed = [a for a in state.aggregates.values() if a.pending]
        try:
            recordings = self.store.append(changed) if changed else []
        except IntegrityError:
            self._evict(state.aggregates)
            return set(state.aggregates)
        except (PersistenceError, OSError) as error:
            self._evict(state.aggregates)
            logger.warning(
                "group commit: store error %s on a batch of %d", type(error).__name__, len(batch)
            )
            self._fail(batch, StoreUnavailableError(f"the store failed: {type(error).__name__}"))
            return None
        self._resolve(batch, outcomes, recordings)
        for aggregate in state.aggregates.values():
            self._remember(aggregate)
        return None

    def _decide_one(
        self, prepared: Prepared, sealed: SealedPersonalData | None, state: "_BatchState"
    ) -> Outcome:
        target = state.aggregates[prepared.subject]
        catalog = state.aggregates[CATALOG_SUBJECT]
        known = target.commands.get(prepared.command.command_id)
        if known is not None:
            return Applied(target, known, duplicate=True)
        context = Context(
            subject=prepared.subject,
            catalog=catalog if isinstance(catalog, Catalog) else Catalog.new(),
            person=target if isinstance(target, Person) else None,
            recorded_at=state.recorded_at,
            personal=sealed,
        )
        try:
            envelopes = decide(prepared.command, context)
        except RuleViolationError as error:
            # Refused on state that may be older than the store: check again on fresh state.
            state.stale_rejections |= {prepared.subject, CATALOG_SUBJECT} - state.loaded_fresh
            return error
        except LedgerError as error:
            return error
        except ValidationError as error:
            return field_error(error)
        target.trigger(envelopes)
        return Applied(target, target.commands[prepared.command.command_id], duplicate=False)

    def _resolve(
        self,
        batch: Sequence[Submission[Prepared, CommandResult]],
        outcomes: Sequence[Outcome],
        recordings: Sequence[Recording[UUID]],
    ) -> None:
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        for submission, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Applied) and isinstance(submission.item.command, EraseSubject):
                # After the event is stored, before anyone is told: a retried EraseSubject (a
                # duplicate) destroys again, so a crash between the two steps is mended by a retry.
                self.keys.destroy(submission.item.subject)
        for submission, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, LedgerError):
                submission.future.set_exception(outcome)
                continue
            aggregate = outcome.aggregate
            versions = [version for _, version in outcome.events]
            if outcome.duplicate:
                position = self.store.position_of(aggregate.id, versions)
            else:
                position = max(positions[(aggregate.id, version)] for version in versions)
            submission.future.set_result(
                CommandResult(
                    command_id=submission.item.command.command_id,
                    subject=submission.item.subject,
                    event_ids=tuple(event_id for event_id, _ in outcome.events),
                    position=position,
                    duplicate=outcome.duplicate,
                )
            )

    def _load(self, state: "_BatchState", subjects: set[str]) -> None:
        """The batch's aggregates: from the cache, else (and when told to) from the store."""
        missing: list[str] = []
        for subject in subjects:
            cached = None if subject in state.fresh else self.cached(subject)
            if cached is None:
                missing.append(subject)
            else:
                self._cache.move_to_end(subject)
                state.aggregates[subject] = cached
        ids = {subject: aggregate_id(subject) for subject in missing}
        loaded = self.store.load_many(list(ids.values()))
        for subject, subject_id in ids.items():
            aggregate = loaded.get(subject_id)
            if aggregate is None:
                aggregate = Catalog.new() if subject == CATALOG_SUBJECT else Person.new(subject)
            state.aggregates[subject] = aggregate
            state.loaded_fresh.add(subject)

    def cached(self, subject: str) -> LedgerAggregate | None:
        """The writer's in-memory copy of an aggregate, if it holds one."""
        snapshot = self._cache.get(subject)
        return None if snapshot is None else load_aggregate(snapshot)

    def _remember(self, aggregate: LedgerAggregate) -> None:
        # Drop the old snapshot first: should the new one fail, no stale copy is left behind.
        self._cache.pop(aggregate.subject, None)
        self._cache[aggregate.subject] = dump_aggregate(aggregate)
        self._cache.move_to_end(aggregate.subject)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    def _evict(self, aggregates: dict[str, LedgerAggregate]) -> None:
        for subject, aggregate in aggregates.items():
            aggregate.pending.clear()
            self._cache.pop(subject, None)

    @staticmethod
    def _fail(batch: Sequence[Submission[Prepared, CommandResult]], error: LedgerError) -> None:
        for submission in batch:
            if not submission.future.done():
                submission.future.set_exception(error)
