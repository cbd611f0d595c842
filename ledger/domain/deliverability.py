"""The rule book on what comes back from mailbox providers: complaints and undeliverable addresses.

Part of the rule book (`ledger.domain.rules`); pure. Neither is a consent decision, and each
denies with a reason of its own:

- a complaint (ARF) refuses every direct-marketing purpose, ``complained``, until a newer
  explicit consent for the purpose outweighs it (as an unsubscribe from everything); a
  ``not-spam`` report is recorded and changes nothing;
- an undeliverable address (a hard bounce, or too many soft ones) refuses email for every
  purpose, ``undeliverable``, until a later confirmed consent shows the address works.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from schemas import (
    AddressUndeliverable,
    ComplaintReceived,
    ConsentConfirmed,
    ConsentGranted,
    DoubleOptIn,
    EventBase,
    FeedbackType,
)

COMPLAINED = "complained"
"""The suppression reason, and the check's reason, of a complaint."""
UNDELIVERABLE = "undeliverable"
"""The suppression reason, and the check's reason, of an undeliverable address."""
COMPLAINT_SCOPE = "*"
"""A complaint covers every direct-marketing purpose."""
UNDELIVERABLE_SCOPE = "#undeliverable"
"""The scope of an undeliverable address: its own, like the erasure's (no purpose or list can be
spelled like this), so it never overwrites a consent decision."""
EMAIL = "email"


@dataclass(frozen=True, slots=True)
class HeardBack:
    """What a complaint or a bounce does to a person's suppressions."""

    scope: str | None
    """The scope suppressed, or None: recorded, nothing changes (a not-spam report)."""
    reason: str


def heard_back(event: EventBase) -> HeardBack | None:
    """The suppression ``event`` records, if it is a complaint or a bounce; None otherwise."""
    match event:
        case ComplaintReceived():
            refuses = event.feedback_type is not FeedbackType.NOT_SPAM
            return HeardBack(COMPLAINT_SCOPE if refuses else None, COMPLAINED)
        case AddressUndeliverable():
            return HeardBack(UNDELIVERABLE_SCOPE, UNDELIVERABLE)
        case _:
            return None


def confirms_address(event: EventBase) -> bool:
    """A confirmed consent by email: the address receives mail again."""
    match event:
        case ConsentConfirmed():
            return event.channel.value == EMAIL
        case ConsentGranted():
            return event.channel.value == EMAIL and event.double_opt_in is DoubleOptIn.CONFIRMED
        case _:
            return False


class Suppression(Protocol):
    @property
    def scope(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def last_position(self) -> int: ...


def denial(
    suppressions: Iterable[Suppression],
    *,
    consent_position: int | None,
    marketing: bool,
    channel: str,
) -> str | None:
    """``complained`` or ``undeliverable`` if one of them denies, checked in that order.

    ``consent_position`` is the position of the consent on file for the purpose and channel
    asked about: one newer than the complaint outweighs it.
    """
    held = tuple(suppressions)
    if marketing and any(
        s.reason == COMPLAINED and (consent_position is None or consent_position <= s.last_position)
        for s in held
    ):
        return COMPLAINED
    if channel == EMAIL and any(s.reason == UNDELIVERABLE for s in held):
        return UNDELIVERABLE
    return None


CONSENT_DECISION = "consent"
_DENIED_BY = {COMPLAINED: "complaint", UNDELIVERABLE: "deliverability"}


def denied_by(reason: str | None) -> str | None:
    """What kind of fact denies: ``consent`` (the person's choices and rights, the catalog),
    ``complaint`` or ``deliverability``; None when allowed. What the check and dossier show."""
    if reason is None:
        return None
    return _DENIED_BY.get(reason, CONSENT_DECISION)
