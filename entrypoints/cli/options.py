"""Options several CLI commands share: who the person is, idempotency, when it happened."""

from datetime import datetime
from typing import Annotated

import typer

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
        help="When it happened, with a time zone (default: now).", formats=["%Y-%m-%dT%H:%M:%S%z"]
    ),
]
TopicOption = Annotated[
    str | None, typer.Option(help="The event topic (default: CONSENT_KAFKA_TOPIC).")
]
