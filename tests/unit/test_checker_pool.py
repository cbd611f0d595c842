"""The pool of checkers: lent without blocking the event loop, shed when full, healed."""

import asyncio

import pytest

from entrypoints.http.services import CheckerPool, CheckersBusyError
from ledger.domain.rules import Facts
from projections.checker import Checker, CheckerConfig


class FakeChecker(Checker):
    made = 0

    def __init__(self) -> None:
        super().__init__(head=lambda: 0, config=CheckerConfig())
        FakeChecker.made += 1
        self.broken = False
        self.closed = False

    def usable(self) -> bool:
        return not self.broken

    def close(self) -> None:
        self.closed = True

    def covered(self) -> int:
        return 0

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return Facts(purpose=None)


def test_a_check_waits_for_a_checker_in_the_event_loop_then_gets_it() -> None:
    pool = CheckerPool(FakeChecker, size=1, wait_s=5)

    async def scenario() -> Checker:
        held = await pool.lend()
        waiting = asyncio.create_task(pool.lend())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        pool.release(held)
        return await waiting

    assert isinstance(asyncio.run(scenario()), FakeChecker)


def test_checks_beyond_the_queue_are_refused_at_once() -> None:
    pool = CheckerPool(FakeChecker, size=1, queue=1, wait_s=5)

    async def scenario() -> None:
        await pool.lend()
        queued = asyncio.create_task(pool.lend())
        await asyncio.sleep(0.02)
        with pytest.raises(CheckersBusyError):
            await pool.lend()
        queued.cancel()

    asyncio.run(scenario())


def test_a_check_that_waited_too_long_is_refused() -> None:
    pool = CheckerPool(FakeChecker, size=1, wait_s=0.05)

    async def scenario() -> None:
        await pool.lend()
        with pytest.raises(CheckersBusyError):
            await pool.lend()

    asyncio.run(scenario())


def test_a_broken_checker_is_closed_and_replaced() -> None:
    pool = CheckerPool(FakeChecker, size=1)
    first = pool.acquire()
    assert isinstance(first, FakeChecker)
    first.broken = True
    pool.release(first)

    second = pool.acquire()
    assert first.closed
    assert second is not first
