"""How fresh the projection is: the ledger heads and covered position read lately, shared.

A check must find covered every event stored ``max_staleness_s`` before it began, be at most
``max_lag`` events behind the head and cover the position its caller waits for; reading the
head and the covered position for every check would double its round trips, so they are shared
for `Freshness.ttl_s`.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.checker import CheckerConfig


class Freshness:
    """The ledger heads read lately and the covered position last read, shared by checkers.

    At hundreds of checks a second, reading both for every check doubles the database round
    trips of a check. A pair younger than ``ttl_s`` answers instead; a ``min_position`` it does
    not cover is always read again.

    The heads are kept ``keep_s`` with the time their read started: every event acknowledged
    before that time is at or below that head. `head_since` gives the time bound of a check.
    """

    def __init__(self, *, ttl_s: float, keep_s: float = 1.0) -> None:
        self.ttl_s = ttl_s
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._pair = (0, 0)
        self._heads: deque[tuple[float, int]] = deque()

    def read(self, fetch: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        pair = self.cached()
        return self.fetch(fetch) if pair is None else pair

    def cached(self) -> tuple[int, int] | None:
        """The pair read less than ``ttl_s`` ago, if any."""
        with self._lock:
            if time.monotonic() - self._read_at < self.ttl_s:
                return self._pair
        return None

    def fetch(self, fetch: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        """Read both now and keep them."""
        started = time.monotonic()
        head, covered = fetch()
        self.store(head, covered, read_at=started)
        return head, covered

    def store(self, head: int, covered: int, *, read_at: float) -> None:
        with self._lock:
            if read_at < self._read_at:
                return  # a read that started later is already kept: its bound is the stricter
            self._read_at = read_at
            self._pair = (head, covered)
            heads = self._heads
            if heads and heads[-1][1] == head:
                heads.pop()  # the head was still this at the later time: keep the later one
            heads.append((read_at, head))
            while heads[0][0] < read_at - self.keep_s:
                heads.popleft()

    def head_since(self, since: float) -> int | None:
        """The head read by the oldest read that started at or after ``since``, if any."""
        with self._lock:
            for read_at, head in self._heads:
                if read_at >= since:
                    return head
        return None


def required_position(
    freshness: Freshness,
    config: "CheckerConfig",
    head: int,
    *,
    since: float,
    min_position: int | None,
) -> int | None:
    """The position a check must find covered; None until a head read started since ``since``."""
    floor = freshness.head_since(since) if math.isfinite(since) else 0
    if floor is None:
        return None
    return max(min_position or 0, head - config.max_lag, floor)


def covered_if_fresh(
    freshness: Freshness,
    config: "CheckerConfig",
    pair: tuple[int, int],
    *,
    min_position: int | None,
) -> int | None:
    """What the projection covers, if ``pair`` (head, covered), read since the check began or
    shared by checks within `Freshness.ttl_s`, shows it fresh enough for the check.

    None when it does not: `Checker.wait_until_covered` then reads again, and waits if it must.
    """
    started = time.monotonic()
    head, covered = pair
    required = required_position(
        freshness,
        config,
        head,
        since=started - config.max_staleness_s,
        min_position=min_position,
    )
    return covered if required is not None and covered >= required else None
