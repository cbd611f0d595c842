"""The retry loop of the followers (relay, sealer, consumers): a pause that doubles while
failures follow each other, and a short poll when there was nothing to do. Pure: the waiting
is the caller's stop event, so a test passes one that only records the pauses."""

from collections.abc import Callable
from typing import Protocol

__all__ = ["BACKOFF_START_S", "Stop", "follow"]

BACKOFF_START_S = 0.5
"""The first pause after a failed step; it doubles on each failure in a row."""


class Stop(Protocol):
    """What the loop needs of a `threading.Event`: whether to stop, and a wait it can end."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def follow(
    step: Callable[[], int],
    stop: Stop,
    *,
    transient: tuple[type[Exception], ...],
    on_failure: Callable[[Exception, float], None],
    backoff_max_s: float,
    poll_s: float = 0.0,
    backoff_start_s: float = BACKOFF_START_S,
) -> None:
    """Run ``step`` until ``stop`` is set.

    A step that did nothing (returned 0) is followed by a wait of ``poll_s``. A step that
    raised one of ``transient`` is told to ``on_failure`` with the pause about to be taken,
    which is then waited out: ``backoff_start_s`` first, twice as long on each failure in a
    row, at most ``backoff_max_s``; a step that succeeds starts the pauses over. Any other
    error ends the loop.
    """
    pause = backoff_start_s
    while not stop.is_set():
        try:
            done = step()
        except transient as error:
            on_failure(error, pause)
            stop.wait(pause)
            pause = min(pause * 2, backoff_max_s)
            continue
        pause = backoff_start_s
        if not done and poll_s > 0:
            stop.wait(poll_s)
