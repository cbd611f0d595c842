"""What the HTTP API is built around: components wired by the bootstrap, nothing connects here."""

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ledger.apikeys import ApiKeyStore
from ledger.identity import SubjectHasher
from ledger.service import Ledger
from projections.checker import Checker

MAX_BODY_BYTES = 64 * 1024
"""A command or a page form is far smaller; anything bigger is refused with 413."""
MAX_BULK_BODY_BYTES = 1024 * 1024 * 1024
"""A bulk check streams: a million addresses is about 30 MB, a billion bytes is the cap."""


class CheckerPool:
    """Checkers for concurrent requests: each holds its own connection, lent to one at a time."""

    def __init__(self, factory: Callable[[], Checker], *, size: int) -> None:
        self._factory = factory
        self._idle: queue.LifoQueue[Checker] = queue.LifoQueue()
        self._made = 0
        self._size = size
        self._lock = threading.Lock()

    def acquire(self) -> Checker:
        """A checker of one's own until `release`: waits when all ``size`` are lent."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made < self._size
                if make:
                    self._made += 1
            return self._factory() if make else self._idle.get()

    def release(self, checker: Checker) -> None:
        self._idle.put(checker)

    @contextmanager
    def checker(self) -> Iterator[Checker]:
        checker = self.acquire()
        try:
            yield checker
        finally:
            self.release(checker)


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
    """The unsubscribe-token codec (`ledger.unsubscribe_tokens`), when links are served."""
    audit_lock: threading.Lock = field(default_factory=threading.Lock)
    max_body_bytes: int = MAX_BODY_BYTES
    max_bulk_body_bytes: int = MAX_BULK_BODY_BYTES
    closers: tuple[Callable[[], None], ...] = ()

    def close(self) -> None:
        for close in self.closers:
            close()
