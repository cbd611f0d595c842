"""The ledger a CLI command works on; errors in wiring a command become exit code 2."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from entrypoints.bootstrap import build_ledger
from entrypoints.cli.console import err, load_settings
from ledger.domain.errors import LedgerError
from ledger.write.service import Ledger


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
