"""Personal data and evidence, kept apart from the rest of an event so the ledger can encrypt it."""

import ipaddress
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from schemas.base import Model, PrintableText, Sha256Hex

EVIDENCE_MAX_JSON_BYTES = 4096
"""The largest serialised `Evidence` accepted, in bytes of compact UTF-8 JSON."""

_BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _normalise_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None


AddressText = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^\s@]+@[^\s@]+$")]
"""An email address as the person gave it. The event contract checks only its shape (one ``@``,
no whitespace), which every address the ledger takes has: the ledger's commands hold it to the
one address rule, `ledger.domain.identity.normalise_address`."""
IpAddress = Annotated[str, AfterValidator(_normalise_ip)]
Base64Text = Annotated[str, StringConstraints(min_length=4, pattern=_BASE64_PATTERN)]


class PersonalData(Model):
    """Personal data in clear, as a command carries it before the ledger encrypts it."""

    kind: Literal["clear"] = "clear"
    """``clear``: not yet sealed."""
    address: AddressText | None = None
    """The email address, as the person gave it."""
    ip: IpAddress | None = None
    """The IP address the person acted from."""
    user_agent: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    """The browser's User-Agent."""
    page_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    """The page the person acted on."""
    note: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    """Free text about the event (it may name the person: it is sealed with the rest)."""

    @model_validator(mode="after")
    def check_not_empty(self) -> Self:
        """Refuse an empty record: it would be encrypted and stored for nothing."""
        if (self.address, self.ip, self.user_agent, self.page_url, self.note) == (None,) * 5:
            raise ValueError(
                "personal data must set at least one of address, ip, user_agent, page_url, note"
            )
        return self


class SealedPersonalData(Model):
    """Personal data as stored: AES-GCM ciphertext of a `PersonalData`'s JSON."""

    kind: Literal["sealed"] = "sealed"
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    nonce: Base64Text
    ciphertext: Base64Text


class ErasedPersonalData(Model):
    """What a reader sees in place of personal data whose key was destroyed."""

    kind: Literal["erased"] = "erased"


Personal = Annotated[
    PersonalData | SealedPersonalData | ErasedPersonalData, Field(discriminator="kind")
]


class Evidence(Model):
    """Non-personal proof of an event: what was shown, through which form, with what artefact.

    Fields have no length bound of their own; the whole record is bounded instead, so one long
    form identifier does not need a schema change.
    """

    consent_text_sha256: Sha256Hex | None = None
    """SHA-256 (hex) of the consent wording shown next to the checkbox."""
    form_id: PrintableText | None = None
    """The form the person used."""
    form_version: PrintableText | None = None
    """The version of that form."""
    double_opt_in_token_id: PrintableText | None = None
    """The id of the confirmation link that was followed (never the token itself)."""
    artefact_sha256: Sha256Hex | None = None
    """SHA-256 (hex) of an artefact kept elsewhere: a screenshot, a signed form, a recording."""

    @model_validator(mode="after")
    def check_size(self) -> Self:
        """Keep evidence small enough that it never dominates an event."""
        size = len(self.model_dump_json().encode())
        if size > EVIDENCE_MAX_JSON_BYTES:
            raise ValueError(
                f"evidence is {size} bytes of JSON, over the limit of {EVIDENCE_MAX_JSON_BYTES}"
            )
        return self
