"""The ledger a CLI command works on; errors in wiring a command become exit code 2."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer

from entrypoints.bootstrap import build_ledger
from entrypoints.cli.console import err, load_settings
from ledger.domain.backoff import BACKOFF_START_S
from ledger.domain.errors import LedgerError, StoreUnavailableError
from ledger.store.events import STORE_UNAVAILABLE
from ledger.write.service import Ledger
from projections.errors import ProjectionUnavailableError

T = TypeVar("T")
STARTUP_BACKOFF_MAX_S = 5.0
logger = logging.getLogger(__name__)
_NOT_ANSWERING: tuple[type[Exception], ...] = (
    *STORE_UNAVAILABLE,
    StoreUnavailableError,
    ProjectionUnavailableError,
)


@contextmanager
def starting() -> Iterator[None]:
    """Around the wiring of a command: its errors become "cannot start" and exit code 2."""
    try:
        yield
    except LedgerError as error:
        err.print(f"[red]cannot start:[/red] {error}")
        raise typer.Exit(code=2) from None


@contextmanager
def open_ledger() -> Iterator[Ledger]:
    """The ledger for one CLI command; its errors become a message and exit code 1."""
    settings = load_settings()
    with starting():
        ledger = build_ledger(settings)
    try:
        yield ledger
    except LedgerError as error:
        err.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        ledger.close()


def once_the_database_answers(build: Callable[[], T], *, what: str) -> T:
    """``build()``, tried again while the database does not answer yet.

    A follower (relay, consumer, sealer) started while PostgreSQL restarts waits for it, as it
    waits out an outage once running, instead of exiting: the pause doubles up to 5 s. A wrong
    setting still stops it at once (`starting`).
    """
    pause = BACKOFF_START_S
    while True:
        try:
            return build()
        except _NOT_ANSWERING as error:
            logger.warning(
                "%s: database unavailable at start (%s); trying again in %.1f s",
                what,
                type(error).__name__,
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, STARTUP_BACKOFF_MAX_S)
