"""What the HTTP API is built around: components wired by the bootstrap, nothing connects here."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from access.apikeys import ApiKeyStore
from ledger.domain.identity import SubjectHasher
from ledger.rights.receipts import Proofs
from ledger.write.service import Ledger
from projections.checker import Checker
from projections.loop_checker import LoopSendChecks
from projections.rights import OpenRequest

MAX_BODY_BYTES = 64 * 1024
"""A command or a page form is far smaller; anything bigger is refused with 413."""
MAX_BULK_BODY_BYTES = 1024 * 1024 * 1024
POLL_S = 0.005
MAX_POSITION = 2**63 - 1
"""The largest ledger position or tree size the databases hold (a signed 64-bit integer)."""
"""A bulk check streams: a million addresses is about 30 MB, a billion bytes is the cap."""


class CheckersBusyError(Exception):
    """Every checker is lent and too many checks already wait: answer 503 now, not later."""


class CheckerPool:
    """Checkers for concurrent requests: each holds its own connection, lent to one at a time.

    Checks run on threads of their own (``threads``, one per checker), so checks waiting for a
    stale projection never hold the threads commands and unsubscribe clicks run on. A check
    that finds every checker lent waits in the event loop, not on a thread; when ``queue``
    checks already wait, or after ``wait_s``, it is refused with `CheckersBusyError`. A checker
    whose connection broke (the database restarted) is closed and replaced on return.
    """

    def __init__(
        self,
        factory: Callable[[], Checker],
        *,
        size: int,
        queue: int | None = None,
        wait_s: float = 2.0,
        on_loop: LoopSendChecks | None = None,
    ) -> None:
        self._factory = factory
        self.on_loop = on_loop
        """Answers single checks on the event loop when it can (PostgreSQL projection)."""
        self._idle: list[Checker] = []
        self._made = 0
        self.size = size
        self._queue = 8 * size if queue is None else queue
        self._wait_s = wait_s
        self._waiting = 0
        self._lock = threading.Lock()
        self._threads: anyio.CapacityLimiter | None = None

    @property
    def threads(self) -> anyio.CapacityLimiter:
        """The checks' own worker threads (made in the event loop on first use)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.size)
        return self._threads

    def try_acquire(self) -> Checker | None:
        """An idle checker, a new one while fewer than ``size`` exist, else None at once."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._made >= self.size:
                return None
            self._made += 1
        try:
            return self._factory()
        except BaseException:
            with self._lock:
                self._made -= 1
            raise

    def acquire(self) -> Checker:
        """Wait on this thread for a checker (command-line and test use)."""
        while (checker := self.try_acquire()) is None:
            time.sleep(POLL_S)
        return checker

    async def lend(self) -> Checker:
        """A checker of one's own until `release`, waited for in the event loop."""
        checker = self.try_acquire()
        if checker is not None:
            return checker
        if self._waiting >= self._queue:
            raise CheckersBusyError
        self._waiting += 1
        try:
            deadline = time.monotonic() + self._wait_s
            while (checker := self.try_acquire()) is None:
                if time.monotonic() >= deadline:
                    raise CheckersBusyError
                await anyio.sleep(POLL_S)
            return checker
        finally:
            self._waiting -= 1

    def release(self, checker: Checker) -> None:
        if checker.usable():
            with self._lock:
                self._idle.append(checker)
            return
        with self._lock:
            self._made -= 1
        checker.close()

    def close(self) -> None:
        """Close the idle checkers' connections (lent ones close when they come back broken)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._made -= len(idle)
        for checker in idle:
            checker.close()
        if self.on_loop is not None:
            self.on_loop.close()


@dataclass(frozen=True, slots=True)
class ApiServices:
    """The ledger, its checkers, its audit tree and its keys, as the routes use them."""

    ledger: Ledger
    hasher: SubjectHasher
    keys: ApiKeyStore
    checkers: CheckerPool
    audit: Any
    """An `entrypoints.bootstrap.Audit` (store, tree, signer, sealer)."""
    tokens: Any = None
    """The unsubscribe-token codec (`ledger.links.tokens`), when links are served."""
    feedback: Any = None
    """The complaint and bounce intake (`ledger.feedback.intake.FeedbackIntake`)."""
    webhooks: Any = None
    """The registered webhook endpoints (`ledger.webhooks.store.WebhookStore`)."""
    link_base_url: str | None = None
    """Where recipients reach the links (``CONSENT_PUBLIC_URL``); None: no links issued."""
    unsubscribe_mailto: str | None = None
    open_requests: Callable[[], list[OpenRequest]] = list
    """The open rights requests of the projection next to the ledger's store."""
    request_subject: Callable[[str], str | None] = lambda _request_id: None
    """The person of a rights request, open or closed, from the same projection."""
    audit_lock: threading.Lock = field(default_factory=threading.Lock)
    max_body_bytes: int = MAX_BODY_BYTES
    max_bulk_body_bytes: int = MAX_BULK_BODY_BYTES
    closers: tuple[Callable[[], None], ...] = ()

    def proofs(self) -> Proofs:
        """Where a person's proof bundle comes from: the audit tree and its checkpoints' key."""
        return Proofs(tree=self.audit.tree, verifier=self.audit.signer.verifier())

    def close(self) -> None:
        for close in self.closers:
            close()
