"""``consent-ledger unsubscribe-headers``: the List-Unsubscribe headers of one message."""

import json
from datetime import timedelta
from typing import Annotated

import typer

from entrypoints.bootstrap import unsubscribe_base_url
from entrypoints.bootstrap_keys import build_hasher, build_token_codec
from entrypoints.cli.console import err, load_settings
from ledger.domain.errors import LedgerError
from ledger.links.tokens import unsubscribe_headers as headers_for


def unsubscribe_headers(
    subject: Annotated[
        str | None, typer.Option(help="The person's own id (give this or --address).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="The recipient's address; only its keyed hash goes into the link."),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option(help="Unsubscribe from this purpose (default: everything).")
    ] = None,
    list_id: Annotated[
        str | None, typer.Option("--list", help="Unsubscribe from this list instead.")
    ] = None,
    campaign: Annotated[str | None, typer.Option(help="The campaign of the message.")] = None,
    message_id: Annotated[str | None, typer.Option(help="The message's own id.")] = None,
    expires_in_days: Annotated[
        int | None,
        typer.Option(
            min=30,
            help="The link stops working after this many days (default: never). At least 30: "
            "senders must honour unsubscribes for 30 days after sending.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of headers.")] = False,
) -> None:
    """Print the List-Unsubscribe and List-Unsubscribe-Post headers (RFC 8058) of one message.

    The link names the person by subject, never by address, and is signed with the newest
    key of CONSENT_UNSUBSCRIBE_KEYS.
    """
    if (subject is None) == (address is None):
        err.print("[red]give exactly one of --subject or --address[/red]")
        raise typer.Exit(code=2)
    if purpose is not None and list_id is not None:
        err.print("[red]give --purpose or --list, not both[/red]")
        raise typer.Exit(code=2)
    settings = load_settings()
    try:
        codec = build_token_codec(settings)
        base_url = unsubscribe_base_url(settings)
        who = build_hasher(settings).subject_for(address) if address is not None else subject
        token = codec.issue(
            subject=str(who),
            purpose=purpose,
            list_id=list_id,
            campaign_id=campaign,
            message_id=message_id,
            expires_in=None if expires_in_days is None else timedelta(days=expires_in_days),
        )
    except LedgerError as error:
        err.print(f"[red]cannot make the link:[/red] {error}")
        raise typer.Exit(code=2) from None
    headers = headers_for(token, public_url=base_url, mailto=settings.unsubscribe_mailto)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "List-Unsubscribe": headers.list_unsubscribe,
                    "List-Unsubscribe-Post": headers.list_unsubscribe_post,
                }
            )
        )
        return
    typer.echo(headers.lines())
