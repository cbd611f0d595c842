"""Options several CLI commands share: who the person is, idempotency, when it happened."""

from datetime import datetime
from typing import Annotated

import typer

from schemas import parse_utc_datetime


def parse_time(text: str) -> datetime:
    """A time option, read as the API reads one (`schemas.parse_utc_datetime`)."""
    try:
        return parse_utc_datetime(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


TIME_HELP = "with its zone, e.g. 2026-03-01T12:00:00Z or 2026-03-01T12:00:00.250+01:00"

SubjectOption = Annotated[
    str | None, typer.Option(help="The person's own id (give this or --address).")
]
AddressOption = Annotated[
    str | None, typer.Option(help="The person's email address (keyed-hashed into the subject).")
]
CommandIdOption = Annotated[
    str | None,
    typer.Option("--command-id", help="Idempotency key: the same id twice records once."),
]
OccurredOption = Annotated[
    datetime | None,
    typer.Option(
        help=f"When it happened, {TIME_HELP} (default: now).", parser=parse_time, metavar="TIME"
    ),
]
WhenOption = Annotated[
    datetime | None,
    typer.Option(help=f"A time {TIME_HELP} (default: now).", parser=parse_time, metavar="TIME"),
]
TopicOption = Annotated[
    str | None, typer.Option(help="The event topic (default: CONSENT_KAFKA_TOPIC).")
]
