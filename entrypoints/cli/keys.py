"""``consent-ledger keys``: API keys of the HTTP API, created, listed and revoked."""

import json
from typing import Annotated

import typer
from rich.table import Table

from access.apikeys import ApiKeyStore, Scope
from entrypoints.bootstrap import build_api_keys
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import starting

keys_app = typer.Typer(
    help="API keys: scoped (write, check, audit, admin), stored hashed.", no_args_is_help=True
)


def _store() -> ApiKeyStore:
    settings = load_settings()
    with starting():
        return build_api_keys(settings)


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the key (shown in lists).")],
    scope: Annotated[list[Scope], typer.Option(help="A scope the key holds; repeat for several.")],
) -> None:
    """Create a key and print it once: only its hash is kept."""
    store = _store()
    try:
        key, token = store.create(name, scope)
    finally:
        store.close()
    typer.echo(
        json.dumps(
            {"key_id": key.key_id, "name": key.name, "scopes": sorted(key.scopes), "key": token}
        )
    )
    err.print("Store this key now: it cannot be shown again.")


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """List the keys (never their secrets)."""
    store = _store()
    try:
        keys = store.list()
    finally:
        store.close()
    if as_json:
        for key in keys:
            typer.echo(
                json.dumps(
                    {
                        "key_id": key.key_id,
                        "name": key.name,
                        "scopes": sorted(key.scopes),
                        "created_at": key.created_at.isoformat(),
                        "revoked_at": None
                        if key.revoked_at is None
                        else key.revoked_at.isoformat(),
                    }
                )
            )
        return
    table = Table("key id", "name", "scopes", "created", "revoked")
    for key in keys:
        table.add_row(
            key.key_id,
            key.name,
            ", ".join(sorted(key.scopes)),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            "" if key.revoked_at is None else f"{key.revoked_at:%Y-%m-%d %H:%M}",
        )
    err.print(table)


@keys_app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (from keys list).")]) -> None:
    """Revoke a key: requests with it are refused within seconds."""
    store = _store()
    try:
        revoked = store.revoke(key_id)
    finally:
        store.close()
    if not revoked:
        err.print(f"[red]no active key {key_id}[/red]")
        raise typer.Exit(code=1)
    err.print(f"revoked {key_id}")
