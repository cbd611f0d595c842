"""``consent-ledger check``: may we send? One person, or a file of them, from the projection."""

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from entrypoints.bootstrap import build_store
from entrypoints.bootstrap_cli import build_cli_checker
from entrypoints.bootstrap_keys import build_hasher
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import starting
from entrypoints.cli.options import AddressOption, SubjectOption
from entrypoints.http.bulk_answers import BulkAnswers
from ledger.domain.errors import LedgerError
from ledger.domain.rules import Decision
from projections.checker import StaleProjectionError
from schemas import Channel

READ_BYTES = 64 * 1024


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
        typer.Option(
            help="A file (or - for stdin) of people, one per line, as the HTTP bulk check takes "
            "them; one answer per line, a bad line's error in its place."
        ),
    ] = None,
    addresses: Annotated[
        bool,
        typer.Option(
            help="With --bulk: bare lines are email addresses; each answer echoes its address."
        ),
    ] = False,
    csv_format: Annotated[
        bool,
        typer.Option(
            "--csv", help="With --bulk: CSV in (first column, header skipped) and CSV answers."
        ),
    ] = False,
) -> None:
    """May we send? From the projection (production mode), refusing when it is stale (exit 3)."""
    settings = load_settings()
    with starting():
        store = build_store(settings)
    hasher = build_hasher(settings) if (address or addresses) else None
    try:
        with ExitStack() as resources:
            with starting():
                checker = build_cli_checker(settings, store, resources)
            if bulk is None:
                who = hasher.subject_for(address) if (hasher and address) else subject
                if not who:
                    err.print("[red]give --subject or --address[/red]")
                    raise typer.Exit(code=2)
                result = checker.check(who, purpose, channel, min_position=min_position)
                typer.echo(json.dumps(_answer(who, result.decision) | {"covered": result.covered}))
                return
            # Stale before the first answer: exit 3 rather than a stream of errors.
            checker.wait_until_covered(min_position=min_position)
            stream = sys.stdin.buffer if str(bulk) == "-" else bulk.open("rb")
            with stream:
                answers = BulkAnswers(
                    hasher=hasher,
                    checker=checker,
                    chunks=iter(lambda: stream.read(READ_BYTES), b""),
                    csv_in=csv_format,
                    addresses=addresses,
                )
                for chunk in answers.render(purpose, channel, csv_out=csv_format):
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
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
