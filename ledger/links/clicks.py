"""Recording the click of an unsubscribe link: once per link, again only after a re-subscription."""

import asyncio

from ledger.domain.aggregates import Person
from ledger.domain.commands import Unsubscribe
from ledger.domain.rules import EVERY_PURPOSE
from ledger.links.tokens import UnsubscribeClaim
from ledger.write.service import CommandResult, Ledger
from schemas import Source, UnsubscribeMethod

__all__ = ["record_click"]

ACTOR = "unsubscribe-link"


def _still_unsubscribed(person: Person, claim: UnsubscribeClaim) -> bool:
    if EVERY_PURPOSE in person.unsubscribed:
        return True
    if claim.purpose is not None:
        return claim.purpose in person.unsubscribed
    if claim.list_id is not None:
        return claim.list_id in person.unsubscribed_lists
    return False


def _command(
    claim: UnsubscribeClaim,
    *,
    command_id: str,
    method: UnsubscribeMethod,
    source: Source,
    ledger: Ledger,
) -> Unsubscribe:
    return Unsubscribe(
        subject=claim.subject,
        purpose=claim.purpose,
        list_id=claim.list_id,
        campaign_id=claim.campaign_id,
        message_id=claim.message_id,
        method=method,
        source=source,
        actor=ACTOR,
        occurred_at=ledger.clock(),
        command_id=command_id,
    )


async def record_click(
    ledger: Ledger, claim: UnsubscribeClaim, *, method: UnsubscribeMethod, source: Source
) -> CommandResult:
    """Record the unsubscribe a verified link asks for; returns once it is durable.

    Every click of one link shares the link's command id, so mail clients retrying and people
    clicking twice record one event. But a person who subscribed again since must be able to
    leave again with an old link: then the click is recorded under a new id, derived from the
    person's version so that repeated clicks are still recorded once.

    Waits on the event loop (`Ledger.record`): a click holds no thread while its batch commits.
    """
    result = await ledger.record(
        _command(claim, command_id=claim.command_id, method=method, source=source, ledger=ledger)
    )
    if not result.duplicate:
        return result
    person = await asyncio.to_thread(ledger.person, claim.subject)
    if person is None or _still_unsubscribed(person, claim):
        return result
    again = f"{claim.command_id}.{person.version}"
    return await ledger.record(
        _command(claim, command_id=again, method=method, source=source, ledger=ledger)
    )
