"""The ledger one CLI command works on: its errors become a message and an exit code."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from entrypoints.bootstrap import build_ledger
from entrypoints.cli.console import err, load_settings
from ledger.domain.errors import LedgerError
from ledger.write.service import Ledger


@contextmanager
def open_ledger() -> Iterator[Ledger]:
    """The ledger for one CLI command; its errors become a message and exit code 1."""
    settings = load_settings()
    try:
        ledger = build_ledger(settings)
    except LedgerError as error:
        err.print(f"[red]cannot start:[/red] {error}")
        raise typer.Exit(code=2) from None
    try:
        yield ledger
    except LedgerError as error:
        err.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        ledger.close()
