"""The followers' retry loop: pauses double while failures follow each other, then start over."""

import pytest

from ledger.domain.backoff import follow


class RecordingStop:
    """A stop event that records each wait and is set after ``rounds`` checks."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.waits: list[float | None] = []

    def is_set(self) -> bool:
        self.rounds -= 1
        return self.rounds < 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


def _run(outcomes: list[int | Exception], **kwargs: float) -> tuple[list[float | None], list[str]]:
    remaining = list(outcomes)
    told: list[str] = []

    def step() -> int:
        outcome = remaining.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    stop = RecordingStop(len(outcomes))
    follow(
        step,
        stop,
        transient=(ConnectionError,),
        on_failure=lambda error, pause: told.append(f"{type(error).__name__} {pause}"),
        backoff_max_s=kwargs.get("backoff_max_s", 5.0),
        poll_s=kwargs.get("poll_s", 0.0),
    )
    return stop.waits, told


def test_pauses_double_up_to_the_bound_and_start_over_after_a_success() -> None:
    down = ConnectionError("down")
    waits, told = _run([down, down, down, down, down, 7, down], backoff_max_s=5.0)

    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 0.5]
    assert told == [f"ConnectionError {p}" for p in (0.5, 1.0, 2.0, 4.0, 5.0, 0.5)]


def test_a_step_with_nothing_to_do_waits_the_poll_and_a_busy_one_does_not() -> None:
    waits, told = _run([0, 3, 0], poll_s=0.2)

    assert waits == [0.2, 0.2]
    assert told == []


def test_without_a_poll_an_idle_step_is_run_again_at_once() -> None:
    waits, _ = _run([0, 0, 0])

    assert waits == []


def test_an_error_that_is_not_transient_ends_the_loop() -> None:
    with pytest.raises(ValueError, match="bug"):
        _run([1, ValueError("bug"), 1])
