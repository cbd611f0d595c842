"""The ledger a CLI command works on; errors in wiring a command become exit code 2.

A process that cannot start prints one line naming the setting to fix, and exits 2: a wrong
secret, a database that does not answer at ``CONSENT_PG_DSN``, a ``CONSENT_PG_SCHEMA`` that
does not exist, no Kafka broker at ``CONSENT_KAFKA_BOOTSTRAP``, a topic whose settings would lose
acknowledged events (the relay). The followers (relay, consume,
audit seal --follow) wait for the database at start instead (`once_the_database_answers`).
"""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import typer
from eventsourcing.persistence import PersistenceError
from kafka.errors import KafkaError

from entrypoints.bootstrap import build_ledger
from entrypoints.cli.console import err, load_settings
from ledger.domain.backoff import BACKOFF_START_S
from ledger.domain.errors import LedgerError, StoreUnavailableError
from ledger.store.events import STORE_UNAVAILABLE
from ledger.write.service import Ledger
from projections.errors import ProjectionUnavailableError
from relay.topics import UnsafeTopicError

T = TypeVar("T")
STARTUP_BACKOFF_MAX_S = 5.0
logger = logging.getLogger(__name__)
_NOT_ANSWERING: tuple[type[Exception], ...] = (
    *STORE_UNAVAILABLE,
    StoreUnavailableError,
    ProjectionUnavailableError,
)


def startup_problem(error: BaseException) -> str | None:
    """What to fix, naming the setting, when ``error`` stopped a process at start (else None).

    Never the DSN itself: it may hold a password.
    """
    if isinstance(error, LedgerError) and not isinstance(error, StoreUnavailableError):
        return str(error)
    if isinstance(error, UnsafeTopicError):
        return str(error)
    causes = _chain(error)
    if any(isinstance(cause, psycopg.errors.InvalidSchemaName) for cause in causes):
        return "CONSENT_PG_SCHEMA: the schema does not exist in the database (create it first)"
    if isinstance(error, (*_NOT_ANSWERING, psycopg.Error, PersistenceError)):
        return f"CONSENT_PG_DSN: the database does not answer ({type(error).__name__})"
    if isinstance(error, KafkaError):
        return f"CONSENT_KAFKA_BOOTSTRAP: no Kafka broker answers ({type(error).__name__})"
    return None


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


@contextmanager
def starting() -> Iterator[None]:
    """Around the wiring of a command: its errors become one "cannot start" line, exit code 2.

    kafka-python logs its own failed bootstrap (a warning per try, then an error) before it
    raises: while a command starts, only its errors of last resort are shown, so that an
    unreachable broker is the one line naming the setting.
    """
    kafka = logging.getLogger("kafka")
    level = kafka.level
    kafka.setLevel(max(level, logging.CRITICAL))
    try:
        yield
    except (
        LedgerError,
        psycopg.Error,
        PersistenceError,
        ProjectionUnavailableError,
        KafkaError,
        UnsafeTopicError,
    ) as error:
        problem = startup_problem(error)
        if problem is None:
            raise
        err.print(f"[red]cannot start:[/red] {problem}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    finally:
        kafka.setLevel(level)


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
