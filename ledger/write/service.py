"""The ledger: validates commands, decides their events and stores them by group commit."""

import asyncio
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError
from pydantic import ValidationError

from ledger.domain.aggregates import Catalog, LedgerAggregate, Person, aggregate_id
from ledger.domain.commands import CatalogCommand, Command, EraseSubject, PersonCommand, field_error
from ledger.domain.errors import (
    ConcurrencyConflictError,
    FutureOccurrenceError,
    LedgerError,
    RuleViolationError,
    StoreUnavailableError,
)
from ledger.domain.handlers import Context, handle
from ledger.domain.identity import SubjectHasher
from ledger.metrics import GROUP_COMMIT_BATCH, CommandMeter, outcome_of
from ledger.privacy.keystore import DataKeyStore
from ledger.privacy.personal import PersonalCipher
from ledger.store.events import LedgerStore
from ledger.write.group_commit import GroupCommitConfig, GroupCommitter, Submission
from ledger.write.snapshots import dump_aggregate, load_aggregate
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
Result = CommandResult | LedgerError


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
        # One batch at a time, group commit's or a bulk caller's: both work on the cache.
        self._writing = threading.Lock()
        self._committer: GroupCommitter[Prepared, CommandResult] = GroupCommitter(
            self._handle_batch, config=self.config.group_commit, name="ledger-group-commit"
        )
        self._meter = CommandMeter()

    # -- the caller's side ---------------------------------------------------------------------

    def submit(self, command: Command) -> Future[CommandResult]:
        """Validate now (raising `LedgerError` at once) and queue for the next batch."""
        started = time.monotonic()
        try:
            prepared = self.prepare(command)
        except LedgerError as error:
            self._meter.observe(command, outcome_of(error), started)
            raise
        return self._committer.submit(prepared)

    def execute(self, command: Command) -> CommandResult:
        """Record one command and wait until it is durable (or refused)."""
        return self.submit(command).result(timeout=self.config.command_timeout_s)

    async def record(self, command: Command) -> CommandResult:
        """`execute` for an event loop: waits for durability without holding a thread."""
        waiting = asyncio.wrap_future(self.submit(command))
        # Shielded: a caller that stops waiting must not cancel what the batch will record.
        return await asyncio.wait_for(asyncio.shield(waiting), self.config.command_timeout_s)

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

    def record_many(self, commands: Sequence[Command]) -> list[CommandResult | LedgerError]:
        """Record a chunk of commands in the caller's thread: the bulk path, for imports.

        The rules, errors, idempotency and stored events are those of `execute_many`; what goes
        is the group commit around them (a future, a queue hand-off and a wake-up per command).
        The chunk costs one key-store call, one load and one transaction, more only when an
        erasure or a concurrent writer splits it. Group-commit batches wait meanwhile.
        """
        started = time.monotonic()
        results: list[CommandResult | LedgerError | None] = [None] * len(commands)
        waiting: list[tuple[int, Prepared]] = []
        for index, command in enumerate(commands):
            try:
                waiting.append((index, self.prepare(command)))
            except LedgerError as error:
                results[index] = error
        while waiting:
            with self._writing:
                outcomes = self._record([prepared for _, prepared in waiting], remember=False)
            deferred = []
            for (index, prepared), outcome in zip(waiting, outcomes, strict=True):
                if outcome is None:
                    deferred.append((index, prepared))
                else:
                    results[index] = outcome
            waiting = deferred
        done = [result for result in results if result is not None]
        for command, result in zip(commands, done, strict=True):
            self._observe(command, result, started)
        return done

    def _observe(self, command: Command, result: Result, started: float) -> None:
        if isinstance(result, LedgerError):
            self._meter.observe(command, outcome_of(result), started)
        else:
            self._meter.observe(command, outcome_of(None, duplicate=result.duplicate), started)

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
            try:
                address = PersonalData(address=command.address)
            except ValidationError as error:
                raise field_error(error) from None
            # The command's own personal fields were validated with it: only the address is new.
            personal = (
                address
                if personal is None
                else personal.model_copy(update={"address": address.address})
            )
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
        with self._writing:
            outcomes = self._record([submission.item for submission in batch], remember=True)
        GROUP_COMMIT_BATCH.observe(len(batch))
        for submission, outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                self._committer.resubmit(submission)
                continue
            self._observe(submission.item.command, outcome, submission.submitted_at)
            if submission.future.cancelled():
                continue  # recorded all the same; its caller no longer waits
            if isinstance(outcome, LedgerError):
                submission.future.set_exception(outcome)
            else:
                submission.future.set_result(outcome)

    def _record(self, items: Sequence[Prepared], *, remember: bool) -> list[Result | None]:
        """Each item's result or error; None for one left for a later batch (`_before_erasure`)."""
        results: list[Result | None] = [None] * len(items)
        kept = _before_erasure(items)
        batch = [items[index] for index in kept]
        try:
            sealed = self.cipher.seal_many(
                [(item.subject, item.personal) for item in batch if item.personal is not None]
            )
        except (PersistenceError, OSError, LedgerError) as error:
            # The key store's own errors (unavailable, or a key race lost every time) are each
            # command's answer, as any other failure of the batch.
            failed = (
                error
                if isinstance(error, LedgerError)
                else StoreUnavailableError(f"data keys unavailable: {type(error).__name__}")
            )
            for index in kept:
                results[index] = failed
            return results
        sealed_iter = iter(sealed)
        personal: list[SealedPersonalData | None] = [
            next(sealed_iter) if item.personal is not None else None for item in batch
        ]
        fresh: set[str] = set()
        for attempt in range(1, self.config.conflict_attempts + 1):
            outcome = self._attempt(batch, personal, fresh, remember=remember)
            if isinstance(outcome, list):
                for index, result in zip(kept, outcome, strict=True):
                    results[index] = result
                return results
            fresh = outcome
            logger.info("group commit: retrying a batch of %d (attempt %d)", len(batch), attempt)
            # Two writers retrying in lockstep would collide again: back off a random while.
            time.sleep(random.uniform(0, CONFLICT_BACKOFF_S * attempt))  # noqa: S311 - jitter
        for index in kept:
            results[index] = ConcurrencyConflictError(
                items[index].subject, self.config.conflict_attempts
            )
        return results

    def _attempt(
        self,
        batch: Sequence[Prepared],
        personal: Sequence[SealedPersonalData | None],
        fresh: set[str],
        *,
        remember: bool,
    ) -> list[Result] | set[str]:
        """One try at the batch: every item's result or error, else who to reload."""
        state = _BatchState(recorded_at=self.clock(), fresh=fresh)
        try:
            self._load(state, {item.subject for item in batch} | {CATALOG_SUBJECT})
        except (PersistenceError, OSError) as error:
            self.store.heal()
            failed = StoreUnavailableError(f"the store failed: {type(error).__name__}")
            return [failed] * len(batch)
        outcomes = [
            self._decide_one(item, sealed, state)
            for item, sealed in zip(batch, personal, strict=True)
        ]
        if state.stale_rejections:
            self._evict(state.aggregates)
            return fresh | state.stale_rejections

        # Stored in the order people first appear in the batch: an import's positions follow
        # its lines.
        in_order = (
            state.aggregates[subject] for subject in dict.fromkeys(i.subject for i in batch)
        )
        changed = [aggregate for aggregate in in_order if aggregate.pending]
        try:
            positions = self.store.append(changed) if changed else {}
        except IntegrityError:
            self._evict(state.aggregates)
            return set(state.aggregates)
        except (PersistenceError, OSError) as error:
            self._evict(state.aggregates)
            self.store.heal()
            logger.warning(
                "group commit: store error %s on a batch of %d", type(error).__name__, len(batch)
            )
            failed = StoreUnavailableError(f"the store failed: {type(error).__name__}")
            return [failed] * len(batch)
        results = self._resolve(batch, outcomes, positions)
        for aggregate in state.aggregates.values():
            # A bulk caller only refreshes what the cache holds: filling it with every person of
            # an import would push out those the service is working on, for snapshots unused.
            if remember or aggregate.subject in self._cache:
                self._remember(aggregate)
        return results

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
            envelopes = handle(prepared.command, context)
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
        batch: Sequence[Prepared],
        outcomes: Sequence[Outcome],
        positions: dict[tuple[UUID, int], int],
    ) -> list[Result]:
        for prepared, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Applied) and isinstance(prepared.command, EraseSubject):
                # After the event is stored, before anyone is told: a retried EraseSubject (a
                # duplicate) destroys again, so a crash between the two steps is mended by a retry.
                self.keys.destroy(prepared.subject)
        # Duplicates of commands stored by earlier batches: their positions in one query.
        earlier = {
            outcome.aggregate.id
            for outcome in outcomes
            if isinstance(outcome, Applied)
            and outcome.duplicate
            and any((outcome.aggregate.id, v) not in positions for _, v in outcome.events)
        }
        if earlier:
            positions.update(self.store.positions_of_many(list(earlier)))
        results: list[Result] = []
        for prepared, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, LedgerError):
                results.append(outcome)
                continue
            aggregate_id_ = outcome.aggregate.id
            results.append(
                CommandResult(
                    command_id=prepared.command.command_id,
                    subject=prepared.subject,
                    event_ids=tuple(event_id for event_id, _ in outcome.events),
                    position=max(positions[(aggregate_id_, v)] for _, v in outcome.events),
                    duplicate=outcome.duplicate,
                )
            )
        return results

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


def _before_erasure(items: Sequence[Prepared]) -> list[int]:
    """The indexes of the items this batch takes: none that follows an erasure of its person."""
    # Personal data is sealed under the person's current key before the batch is stored, so a
    # command following an erasure of the same person waits for the next batch: its data then
    # goes under the new key rather than the one about to be destroyed.
    erased: set[str] = set()
    kept: list[int] = []
    for index, item in enumerate(items):
        if item.subject in erased:
            continue
        if isinstance(item.command, EraseSubject):
            erased.add(item.subject)
        kept.append(index)
    return kept
