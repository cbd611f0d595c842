"""The ``consent-ledger`` command line: serving, operating and auditing the ledger."""

from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from entrypoints.health import health_check
from entrypoints.http import create_app
from entrypoints.settings import Mode, Settings

app = typer.Typer(
    name="consent-ledger",
    help="Record, enforce and prove every consent decision (GDPR / CNIL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


@app.callback()
def root() -> None:
    """Record, enforce and prove every consent decision (GDPR / CNIL).

    Settings come from CONSENT_* environment variables; see the README.
    """


def load_settings() -> Settings:
    """Read the environment once; a bad value is a clear start-up error, not a traceback."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        err.print(f"[red]invalid setting CONSENT_{field.upper()}:[/red] {first['msg']}")
        raise typer.Exit(code=2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the HTTP API (embedded SQLite by default, PostgreSQL in production mode)."""
    settings = load_settings()
    listen_host = host or settings.http_host
    listen_port = settings.http_port if port is None else port
    if settings.mode is Mode.EMBEDDED:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        where = f"embedded mode, data in {settings.sqlite_path.resolve()}"
    else:
        where = "production mode, data in PostgreSQL (CONSENT_PG_DSN)"
    try:
        check = health_check(settings)
    except ValueError as error:
        err.print(f"[red]cannot start:[/red] {error}")
        raise typer.Exit(code=2) from None
    err.print(f"consent-ledger listening on http://{listen_host}:{listen_port} ({where})")
    uvicorn.run(
        create_app(health=check),
        host=listen_host,
        port=listen_port,
        log_level=settings.log_level,
        access_log=False,
    )


def main() -> None:
    """Console-script entry point."""
    app()
