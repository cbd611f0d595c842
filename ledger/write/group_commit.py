"""Group commit: concurrent submissions coalesced into batches handled by one worker thread.

A batch starts with the first waiting submission and takes whatever else arrives within
``max_wait_s`` (or until ``max_batch``): one database transaction then serves many callers, which is
how the ledger reaches thousands of commands per second on one connection.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ledger.domain.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_WAIT_S = 0.002


@dataclass(frozen=True, slots=True)
class GroupCommitConfig:
    max_batch: int = DEFAULT_MAX_BATCH
    """At most this many submissions share one transaction."""
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    """How long the first submission of a batch waits for company."""


@dataclass(eq=False, slots=True)
class Submission(Generic[T, R]):
    """One caller's item and the future through which it gets its own result or error."""

    item: T
    future: Future[R] = field(default_factory=Future)
    submitted_at: float = field(default_factory=time.monotonic)
    """When the caller submitted it (monotonic): a resubmission keeps it, for the latency."""


BatchHandler = Callable[[Sequence[Submission[T, R]]], None]
"""Resolves the future of every submission it is given, or resubmits it for a later batch."""


class GroupCommitter(Generic[T, R]):
    """Runs ``handler`` on batches of submissions in one background thread."""

    def __init__(
        self, handler: BatchHandler[T, R], *, config: GroupCommitConfig, name: str
    ) -> None:
        if config.max_batch < 1 or config.max_wait_s < 0:
            msg = "max_batch must be >= 1 and max_wait_s >= 0"
            raise ValueError(msg)
        self._handler = handler
        self._config = config
        self._queue: queue.SimpleQueue[Submission[T, R] | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._last_batch_size = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        if self._closed.is_set():
            msg = "the ledger is closed"
            raise StoreUnavailableError(msg)
        submission: Submission[T, R] = Submission(item)
        self._queue.put(submission)
        return submission.future

    def resubmit(self, submission: Submission[T, R]) -> None:
        """Put a submission back for a later batch, keeping its future."""
        self._queue.put(submission)

    def close(self, timeout: float = 10.0) -> None:
        """Finish what was submitted, then stop the worker."""
        if not self._closed.is_set():
            self._closed.set()
            self._queue.put(None)
            self._thread.join(timeout)

    def _next_batch(self) -> list[Submission[T, R]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        # Waiting for company only pays under load: a lone caller (the last batch had one
        # submission) goes straight through instead of paying max_wait_s every time.
        wait = self._config.max_wait_s if self._last_batch_size > 1 else 0.0
        deadline = time.monotonic() + wait
        while len(batch) < self._config.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
        self._last_batch_size = len(batch)
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._handle(batch)

    def _handle(self, batch: Sequence[Submission[T, R]]) -> None:
        try:
            self._handler(batch)
        except Exception as error:  # noqa: BLE001 - the worker must outlive any batch
            # The type only: an error's text may quote a caller's values.
            logger.error("group commit batch of %d failed: %s", len(batch), type(error).__name__)
            # Each command's own failures are its answer already (the handler isolates them):
            # what fails the whole batch is no one command's, and going again one by one would
            # only wait it out once per caller (a key store that does not answer, each time).
            waiting = [submission for submission in batch if not submission.future.done()]
            for submission in waiting:
                submission.future.set_exception(
                    StoreUnavailableError("the batch failed; retry the command")
                )
