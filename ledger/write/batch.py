"""One batch of commands: its people loaded, its events decided, stored in one transaction.

A batch is retried on fresh state when another writer stored the same person meanwhile, and
the aggregates it worked on are kept as snapshots for the next batches.
"""

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError
from pydantic import ValidationError

from ledger.domain.aggregates import Catalog, LedgerAggregate, Person, aggregate_id
from ledger.domain.commands import Command, EraseSubject, field_error
from ledger.domain.errors import (
    CommandFailedError,
    ConcurrencyConflictError,
    LedgerError,
    RuleViolationError,
    StoreUnavailableError,
)
from ledger.domain.handlers import Context, handle
from ledger.privacy.keystore import DataKeyStore
from ledger.privacy.personal import PersonalCipher
from ledger.store.events import LedgerStore
from ledger.write.snapshots import dump_aggregate, load_aggregate
from schemas import CATALOG_SUBJECT, PersonalData, SealedPersonalData

logger = logging.getLogger(__name__)

CONFLICT_BACKOFF_S = 0.005


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
    command_id: str
    """The id stored: the keyed hash of the caller's (`SubjectHasher.command_id_for`)."""


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


class BatchWriter:
    """Records batches of prepared commands; one batch at a time (the caller holds a lock)."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        keys: DataKeyStore,
        cipher: PersonalCipher,
        clock: Callable[[], datetime],
        conflict_attempts: int,
        cache_size: int,
    ) -> None:
        self.store = store
        self.keys = keys
        self.cipher = cipher
        self.clock = clock
        self._conflict_attempts = conflict_attempts
        self._cache_size = cache_size
        # Cached aggregates are kept as snapshots: bytes are invisible to the cyclic garbage
        # collector, whose full collections otherwise grow with the cache (over 100 ms at
        # 15,000 people here, stalling every caller).
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def record(self, items: Sequence[Prepared], *, remember: bool) -> list[Result | None]:
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
        for attempt in range(1, self._conflict_attempts + 1):
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
            results[index] = ConcurrencyConflictError(items[index].subject, self._conflict_attempts)
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
        # Commands stored before ids were keyed are found under the caller's id itself.
        known = target.commands.get(prepared.command_id) or target.commands.get(
            prepared.command.command_id
        )
        if known is not None:
            return Applied(target, known, duplicate=True)
        context = Context(
            subject=prepared.subject,
            catalog=catalog if isinstance(catalog, Catalog) else Catalog.new(),
            person=target if isinstance(target, Person) else None,
            recorded_at=state.recorded_at,
            personal=sealed,
            command_id=prepared.command_id,
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
        except Exception as error:  # noqa: BLE001 - one command's defect must not fail its batch
            # Handlers are pure: nothing was applied, so the others of the batch carry on.
            # The error's type only: its text may quote the command's values.
            command_type = type(prepared.command).__name__
            logger.error("group commit: %s failed with %s", command_type, type(error).__name__)
            return CommandFailedError(command_type)
        target.trigger(envelopes)
        return Applied(target, target.commands[prepared.command_id], duplicate=False)

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
        while len(self._cache) > self._cache_size:
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
