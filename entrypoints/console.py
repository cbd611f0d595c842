"""What every CLI command shares: the error console and reading the settings."""

import typer
from pydantic import ValidationError
from rich.console import Console

from entrypoints.settings import Settings

err = Console(stderr=True)


def load_settings() -> Settings:
    """Read the environment once; a bad value is a clear start-up error, not a traceback."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        err.print(f"[red]invalid setting CONSENT_{field.upper()}:[/red] {first['msg']}")
        raise typer.Exit(code=2) from None
