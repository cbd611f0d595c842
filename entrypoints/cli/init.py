"""``consent-ledger init``: a deployment's tables, and its first admin key, printed once."""

import json
from typing import Annotated

import typer

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import starting


def init(
    name: Annotated[str, typer.Option(help="The name of the first admin key.")] = "admin",
) -> None:
    """Create every table of this deployment; the first time, also an admin key, printed once.

    Safe to run again (the tables stay, no second key is made): a one-shot start-up step.
    """
    settings = load_settings()
    with starting():
        services = build_api(settings)
    try:
        if services.keys.list():
            err.print(
                "already initialised: keys exist (make more with `consent-ledger keys create`)"
            )
            typer.echo(json.dumps({"initialised": True, "key": None}))
            return
        key, token = services.keys.create(name, [Scope.ADMIN])
    finally:
        services.close()
    typer.echo(
        json.dumps(
            {"initialised": True, "key_id": key.key_id, "scopes": [Scope.ADMIN.value], "key": token}
        )
    )
    err.print("This is the first admin key: store it now, it cannot be shown again.")
