"""Who a report is about: found from the original message it carries, never guessed.

In order: the signed token of its ``List-Unsubscribe`` link (`ledger.links.tokens`), then the
``X-Consent-Subject`` header the sender's messages carry, then a recipient address the report
names (``Original-Rcpt-To``, or a DSN's ``Final-Recipient``), taken only when the ledger already
knows that person: providers redact addresses, and a redacted one must not invent a person.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message

from ledger.domain.errors import InvalidFieldError, UnsubscribeTokenError
from ledger.domain.identity import SubjectHasher
from ledger.feedback.parsing import Reject, one_line
from ledger.links.tokens import UnsubscribeTokenCodec
from schemas import SUBJECT_PATTERN

SUBJECT_HEADER = "X-Consent-Subject"
"""The header a sender adds to each message: the recipient's subject (never the address)."""
CAMPAIGN_HEADER = "X-Campaign-ID"
"""The header naming the message's campaign, when its unsubscribe link does not."""
_LINK_TOKEN = re.compile(r"<https?://[^>\s]*/u/([A-Za-z0-9_-]+)>")
_SUBJECT = re.compile(SUBJECT_PATTERN)


@dataclass(frozen=True, slots=True)
class Recipient:
    subject: str
    campaign_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unattributed:
    reason: str


class Attribution:
    """Finds the person a report is about; ``known`` says whether the ledger has a subject."""

    def __init__(
        self,
        *,
        hasher: SubjectHasher,
        tokens: UnsubscribeTokenCodec | None,
        known: Callable[[str], bool],
    ) -> None:
        self._hasher = hasher
        self._tokens = tokens
        self._known = known

    def recipient(
        self, original: Message | None, addresses: Sequence[str]
    ) -> Recipient | Unattributed:
        message_id = None if original is None else one_line(original.get("Message-ID"))
        campaign = None if original is None else one_line(original.get(CAMPAIGN_HEADER))
        if original is not None:
            found = self._from_link(original, message_id, campaign) or self._from_header(
                original, message_id, campaign
            )
            if found is not None:
                return found
        for address in addresses:
            try:
                subject = self._hasher.subject_for(address)
            except InvalidFieldError:
                continue
            if self._known(subject):
                return Recipient(subject, campaign, message_id)
        if addresses:
            return Unattributed(Reject.UNKNOWN_RECIPIENT)
        return Unattributed(Reject.UNATTRIBUTABLE)

    def _from_link(
        self, original: Message, message_id: str | None, campaign: str | None
    ) -> Recipient | None:
        if self._tokens is None:
            return None
        for header in original.get_all("List-Unsubscribe", []):
            for token in _LINK_TOKEN.findall(" ".join(str(header).split())):
                try:
                    claim = self._tokens.verify(token, check_expiry=False)
                except UnsubscribeTokenError:
                    continue
                return Recipient(
                    claim.subject,
                    claim.campaign_id or campaign,
                    claim.message_id or message_id,
                )
        return None

    def _from_header(
        self, original: Message, message_id: str | None, campaign: str | None
    ) -> Recipient | None:
        value = one_line(original.get(SUBJECT_HEADER), 128)
        if value is None or not _SUBJECT.match(value) or value.startswith("@"):
            return None
        return Recipient(value, campaign, message_id)
