"""What every CLI command shares: the error console, progress bars and reading the settings."""

import logging
import sys

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from entrypoints.bootstrap import bound_database_connects
from entrypoints.settings import Settings

err = Console(stderr=True)


def load_settings() -> Settings:
    """Read the environment once; a bad value is a clear start-up error, not a traceback."""
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        err.print(f"[red]invalid setting CONSENT_{field.upper()}:[/red] {first['msg']}")
        raise typer.Exit(code=2) from None
    configure_logging(settings.log_level)
    bound_database_connects(settings)
    return settings


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


QUIET_THIRD_PARTY = ("kafka",)
"""Loggers held at INFO or above whatever the level: kafka-python's debug lines print whole
requests and responses, records included (subjects, command ids, sealed personal data)."""


def configure_logging(level: str) -> None:
    """Log lines on stderr with their time and level, at ``level`` and above (once)."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    floor = max(logging.INFO, logging.getLevelNamesMapping()[level.upper()])
    for name in QUIET_THIRD_PARTY:
        logging.getLogger(name).setLevel(floor)


def progress_bar(label: str) -> Progress:
    """A progress bar on stderr, shown only on a terminal so logs and pipes stay clean."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
    )
