"""Checks sharing one freshness read: fewer reads, never a weaker answer for a consistency token."""

import time

import pytest

from ledger.domain.rules import Facts
from projections.checker import Checker, CheckerConfig, StaleProjectionError
from projections.freshness import Freshness


class CountingChecker(Checker):
    def __init__(self, *, freshness: Freshness, covered: list[int], head: list[int]) -> None:
        self.reads = 0
        self._covered = covered
        super().__init__(
            head=lambda: head[0],
            config=CheckerConfig(max_lag=0, wait_s=0.05, poll_s=0.01),
            freshness=freshness,
        )

    def covered(self) -> int:
        self.reads += 1
        return self._covered[0]

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return Facts(purpose=None)


def test_checks_within_the_ttl_share_one_read() -> None:
    shared = Freshness(ttl_s=60)
    first = CountingChecker(freshness=shared, covered=[5], head=[5])
    second = CountingChecker(freshness=shared, covered=[5], head=[5])
    for _ in range(10):
        first.check("a", "p")
        second.check("a", "p")
    assert first.reads + second.reads == 1


def test_a_position_the_shared_read_does_not_cover_is_read_again() -> None:
    covered, head = [5], [5]
    shared = Freshness(ttl_s=60)
    checker = CountingChecker(freshness=shared, covered=covered, head=head)
    checker.check("a", "p")
    covered[0] = head[0] = 9

    assert checker.check("a", "p", min_position=9).covered == 9
    with pytest.raises(StaleProjectionError):
        checker.check("a", "p", min_position=10)


def test_without_a_ttl_every_check_reads() -> None:
    checker = CountingChecker(freshness=Freshness(ttl_s=0), covered=[5], head=[5])
    for _ in range(3):
        checker.check("a", "p")
    assert checker.reads == 3


def test_a_projection_behind_the_head_is_refused_even_with_a_shared_read() -> None:
    checker = CountingChecker(freshness=Freshness(ttl_s=60), covered=[3], head=[5])
    with pytest.raises(StaleProjectionError):
        checker.check("a", "p")


class TimedChecker(CountingChecker):
    """Lag in events unbounded: only the time bound, ``max_staleness_s``, decides."""

    def __init__(self, *, covered: list[int], head: list[int], staleness_s: float) -> None:
        super().__init__(
            freshness=Freshness(ttl_s=0, keep_s=staleness_s), covered=covered, head=head
        )
        self.config = CheckerConfig(
            max_lag=1_000_000, max_staleness_s=staleness_s, wait_s=0.05, poll_s=0.01
        )


def test_an_event_stored_within_the_staleness_bound_may_be_missing() -> None:
    covered, head = [5], [5]
    checker = TimedChecker(covered=covered, head=head, staleness_s=5.0)
    checker.check("a", "p")
    head[0] = 9  # stored after the first check's read

    assert checker.check("a", "p").covered == 5


def test_an_event_stored_longer_ago_than_the_bound_must_be_applied() -> None:
    covered, head = [5], [5]
    checker = TimedChecker(covered=covered, head=head, staleness_s=0.2)
    checker.check("a", "p")
    head[0] = 9
    checker.check("a", "p")  # sees head 9: from now on, 9 was stored
    time.sleep(0.25)

    with pytest.raises(StaleProjectionError) as refused:
        checker.check("a", "p")
    assert refused.value.required == 9
    covered[0] = 9
    assert checker.check("a", "p").covered == 9


def test_with_no_earlier_read_a_check_needs_the_head_it_reads() -> None:
    checker = TimedChecker(covered=[5], head=[9], staleness_s=60.0)
    with pytest.raises(StaleProjectionError):
        checker.check("a", "p")
