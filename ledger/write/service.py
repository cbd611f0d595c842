"""The ledger: validates commands, decides their events and stores them by group commit."""

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ledger.domain.aggregates import Catalog, LedgerAggregate, Person, aggregate_id
from ledger.domain.commands import CatalogCommand, Command, PersonCommand
from ledger.domain.errors import FutureOccurrenceError, LedgerError
from ledger.domain.identity import SubjectHasher
from ledger.metrics import GROUP_COMMIT_BATCH, CommandMeter, outcome_of
from ledger.privacy.keystore import DataKeyStore
from ledger.privacy.personal import PersonalCipher
from ledger.store.events import LedgerStore
from ledger.write.batch import BatchWriter, CommandResult, Prepared, Result
from ledger.write.group_commit import GroupCommitConfig, GroupCommitter, Submission
from schemas import CATALOG_SUBJECT, EventBase, PersonalData, SealedPersonalData

__all__ = ["Clock", "CommandResult", "Ledger", "LedgerConfig", "utc_now"]

Clock = Callable[[], datetime]


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
        self._batches = BatchWriter(
            store=store,
            keys=keys,
            cipher=self.cipher,
            clock=clock,
            conflict_attempts=self.config.conflict_attempts,
            cache_size=self.config.cache_size,
        )
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

    def record_many(self, commands: Sequence[Command]) -> list[CommandResult | LedgerError]:
        """Record a chunk of commands in the caller's thread: the bulk path, for imports.

        The rules, errors, idempotency and stored events are those of `submit`; what goes is
        the group commit around them (a future, a queue hand-off and a wake-up per command).
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
                outcomes = self._batches.record(
                    [prepared for _, prepared in waiting], remember=False
                )
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
                "occurred_at",
                f"more than {self.config.future_tolerance.total_seconds():g} s"
                " ahead of the ledger clock",
            )
        command_id = self.hasher.command_id_for(command.command_id)
        if isinstance(command, CatalogCommand):
            return Prepared(command, CATALOG_SUBJECT, None, command_id)
        if not isinstance(command, PersonCommand):
            msg = f"not a ledger command: {type(command).__name__}"
            raise TypeError(msg)
        personal: PersonalData | None = command.personal
        if command.address is not None:
            subject = self.hasher.subject_for(command.address)
            # The command validated its address and personal fields: only the address is new.
            personal = (
                PersonalData(address=command.address)
                if personal is None
                else personal.model_copy(update={"address": command.address})
            )
        else:
            subject = str(command.subject)
        return Prepared(command, subject, personal, command_id)

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
        events = [event.envelope for event in self.store.events_of(aggregate_id(subject))]
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
            outcomes = self._batches.record(
                [submission.item for submission in batch], remember=True
            )
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

    def cached(self, subject: str) -> LedgerAggregate | None:
        """The writer's in-memory copy of an aggregate, if it holds one."""
        return self._batches.cached(subject)
