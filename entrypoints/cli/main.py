"""The ``consent-ledger`` command line: serving, operating and auditing the ledger.

Each command group lives in a module of its own; this one only assembles them.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from entrypoints.cli.audit import audit_app
from entrypoints.cli.check import check
from entrypoints.cli.feedback import feedback_app
from entrypoints.cli.importing import import_file
from entrypoints.cli.init import init
from entrypoints.cli.keys import keys_app
from entrypoints.cli.processes import consume, relay, serve
from entrypoints.cli.record import grant, policy_app, purpose_app, unsubscribe, withdraw
from entrypoints.cli.replay import replay
from entrypoints.cli.rights import rights_cli
from entrypoints.cli.suppressions import suppressions_app
from entrypoints.cli.unsubscribe import unsubscribe_headers
from entrypoints.cli.webhooks import webhooks_app

app = typer.Typer(
    name="consent-ledger",
    help="Record, enforce and prove every consent decision (GDPR / CNIL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        try:
            installed = version("consent-ledger")
        except PackageNotFoundError:
            installed = "unknown (not installed: run `pip install .`)"
        typer.echo(f"consent-ledger {installed}")
        raise typer.Exit


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Record, enforce and prove every consent decision (GDPR / CNIL).

    Settings come from CONSENT_* environment variables; see the README.
    """


# Commands first, then groups, in the order `--help` has always listed them.
app.command()(serve)
app.command()(init)
app.command()(replay)
app.command()(unsubscribe_headers)
app.command()(grant)
app.command()(withdraw)
app.command()(unsubscribe)
app.command("import")(import_file)
app.command()(relay)
app.command()(consume)
app.command()(check)
app.add_typer(purpose_app, name="purpose")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(rights_cli)
app.add_typer(feedback_app, name="feedback")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(suppressions_app, name="suppressions")


def main() -> None:
    """Console-script entry point."""
    app()
