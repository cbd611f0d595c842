"""``consent-ledger check``: may we send? One person, or a file of them, from the projection."""

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from entrypoints.bootstrap import build_hasher, build_store
from entrypoints.bootstrap_cli import build_cli_checker
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import starting
from entrypoints.cli.options import AddressOption, SubjectOption
from ledger.domain.errors import LedgerError
from ledger.domain.rules import Decision
from projections.checker import StaleProjectionError
from schemas import Channel


def check(
    purpose: Annotated[str, typer.Option(help="The purpose of the message.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    min_position: Annotated[
        int | None, typer.Option(help="Answer only once the projection covers this position.")
    ] = None,
    bulk: Annotated[
        Path | None,
        typer.Option(help="A file (or - for stdin) of subjects, one per line; NDJSON answers."),
    ] = None,
    addresses: Annotated[
        bool, typer.Option(help="With --bulk: the lines are email addresses, not subjects.")
    ] = False,
) -> None:
    """May we send? From the projection (production mode), refusing when it is stale (exit 3)."""
    settings = load_settings()
    with starting():
        store = build_store(settings)
    hasher = build_hasher(settings) if (address or addresses) else None
    try:
        with ExitStack() as resources:
            checker = build_cli_checker(settings, store, resources)
            if bulk is None:
                who = hasher.subject_for(address) if (hasher and address) else subject
                if not who:
                    err.print("[red]give --subject or --address[/red]")
                    raise typer.Exit(code=2)
                result = checker.check(who, purpose, channel, min_position=min_position)
                typer.echo(json.dumps(_answer(who, result.decision) | {"covered": result.covered}))
                return
            stream = sys.stdin if str(bulk) == "-" else bulk.open(encoding="utf-8")
            with stream:
                lines = (line.strip() for line in stream if line.strip())
                keys = (hasher.subject_for(line) if hasher else line for line in lines)
                for who, decision in checker.bulk_check(
                    keys, purpose, channel, min_position=min_position
                ):
                    typer.echo(json.dumps(_answer(who, decision)))
    except StaleProjectionError as error:
        err.print(f"[red]stale:[/red] {error}")
        raise typer.Exit(code=3) from None
    except LedgerError as error:
        err.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        store.close()


def _answer(subject: str, decision: Decision) -> dict[str, object]:
    return {
        "subject": subject,
        "allowed": decision.allowed,
        "reason": None if decision.reason is None else decision.reason.value,
    }
