"""The event envelope and every event of the consent ledger, with their upcasters."""

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self, get_args
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from schemas.base import (
    CommandId,
    Model,
    Sha256Hex,
    ShortText,
    Slug,
    SubjectId,
    UtcDatetime,
    VersionLabel,
)
from schemas.enums import (
    AnnouncementChannel,
    Channel,
    DoubleOptIn,
    FeedbackType,
    InteractionKind,
    LegalBasis,
    Right,
    RightsOutcome,
    Source,
    UndeliverableKind,
    UnsubscribeMethod,
    WithdrawalReason,
)
from schemas.personal import Evidence, Personal

__all__ = [
    "CATALOG_SUBJECT",
    "EVENT_CLASSES",
    "POLICY_TEXT_MAX_CHARS",
    "AddressUndeliverable",
    "ComplaintFields",
    "ComplaintReceived",
    "ConsentConfirmed",
    "ConsentGranted",
    "ConsentGrantedV1",
    "ConsentWithdrawn",
    "DsnStatus",
    "Event",
    "EventBase",
    "InteractionRecorded",
    "LanguageTag",
    "ObjectionRecorded",
    "PolicyChangeAnnounced",
    "PolicyText",
    "PolicyVersionAccepted",
    "PolicyVersionPublished",
    "PolicyVersionPublishedV1",
    "ProcessingRestricted",
    "PurposeRegistered",
    "PurposeRegisteredV1",
    "PurposeWording",
    "RestrictionLifted",
    "RightsRequestClosed",
    "RightsRequestExtended",
    "RightsRequestOpened",
    "SubjectErased",
    "UndeliverableFields",
    "UnsubscribeClicked",
    "check_policy_text",
    "policy_text_sha256",
    "upcast_consent_granted_v1_v2",
    "upcast_policy_version_published_v1_v2",
    "upcast_purpose_registered_v1_v2",
]

CATALOG_SUBJECT = "@catalog"
"""The subject of catalog events (purposes, policy versions); no person may use it."""

PurposeDescription = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
"""A language as the pages name it: ISO 639 lower case (``fr``, ``en``)."""

_HttpUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")]
POLICY_TEXT_MAX_CHARS = 200_000
"""A privacy policy is a few pages; the cap keeps one event far below a Kafka record's limit."""
PolicyText = Annotated[str, StringConstraints(min_length=1, max_length=POLICY_TEXT_MAX_CHARS)]


def policy_text_sha256(text: str) -> str:
    """The SHA-256 a policy version records of its text: hex, of the UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def check_policy_text(text: str | None, text_sha256: str) -> None:
    """Raise `ValueError` when a policy's ``text`` is given and is not the one hashed."""
    if text is not None and policy_text_sha256(text) != text_sha256:
        raise ValueError("text_sha256 is not the SHA-256 of text (UTF-8)")


class EventBase(Model):
    """The envelope every event shares."""

    catalog: ClassVar[bool] = False
    """Whether the event describes the catalog rather than a person."""

    event_id: UUID
    event_type: str
    schema_version: int
    subject: SubjectId
    occurred_at: UtcDatetime
    recorded_at: UtcDatetime
    command_id: CommandId
    source: Source
    actor: ShortText
    evidence: Evidence | None = None
    personal: Personal | None = None
    position: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def check_subject(self) -> Self:
        """Keep catalog events and personal events on their own sides of `CATALOG_SUBJECT`."""
        if self.catalog and self.subject != CATALOG_SUBJECT:
            raise ValueError(
                f"{self.event_type} is a catalog event: subject must be {CATALOG_SUBJECT}"
            )
        if not self.catalog and self.subject == CATALOG_SUBJECT:
            raise ValueError(f"subject {CATALOG_SUBJECT} is reserved for catalog events")
        return self


class PurposeRegisteredV1(EventBase):
    """Version 1 of `PurposeRegistered`, worded in one language only; never written again."""

    catalog: ClassVar[bool] = True

    event_type: Literal["PurposeRegistered"] = "PurposeRegistered"
    schema_version: Literal[1] = 1
    purpose: Slug
    legal_basis: LegalBasis
    description: PurposeDescription
    max_age_days: Annotated[int, Field(gt=0)] | None = None
    direct_marketing: bool


class PurposeWording(Model):
    """How a purpose is named to a person in one language: a short label and a description."""

    label: ShortText
    """The purpose's name as the person reads it (a checkbox's label)."""
    description: PurposeDescription
    """What the person receives or allows, in a sentence or two."""


class PurposeRegistered(EventBase):
    """A processing purpose exists."""

    catalog: ClassVar[bool] = True

    event_type: Literal["PurposeRegistered"] = "PurposeRegistered"
    schema_version: Literal[2] = 2
    purpose: Slug
    legal_basis: LegalBasis
    description: PurposeDescription
    max_age_days: Annotated[int, Field(gt=0)] | None = None
    direct_marketing: bool
    """An objection under GDPR art. 21 covers every purpose where this is true."""
    wording: dict[LanguageTag, PurposeWording] = Field(default_factory=dict)
    """The purpose in the words a recipient reads, by language (``fr``, ``en``); a page in a
    language missing here falls back to ``description``."""


def upcast_purpose_registered_v1_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    """Read a version 1 `PurposeRegistered` payload as version 2."""
    # Version 1 had one description, in no stated language: no wording per language.
    return {**data, "schema_version": 2, "wording": {}}


class PolicyVersionPublishedV1(EventBase):
    """A privacy-policy version exists."""

    # Version 1 of `PolicyVersionPublished`, before texts were kept; never written again. Its
    # docstring and title are its released schema's, kept as they were.
    model_config = ConfigDict(title="PolicyVersionPublished")

    catalog: ClassVar[bool] = True

    event_type: Literal["PolicyVersionPublished"] = "PolicyVersionPublished"
    schema_version: Literal[1] = 1
    version: VersionLabel
    text_sha256: Sha256Hex
    url: _HttpUrl | None = None
    effective_at: UtcDatetime
    purposes: tuple[Slug, ...]
    requires_reconsent: bool


class PolicyVersionPublished(PolicyVersionPublishedV1):
    """A privacy-policy version exists; ``text`` is the text itself, when it was given."""

    schema_version: Literal[2] = 2  # type: ignore[assignment]
    text: PolicyText | None = None

    @model_validator(mode="after")
    def check_text(self) -> Self:
        """The text kept is the one hashed: what the dossier shows is what people accepted."""
        check_policy_text(self.text, self.text_sha256)
        return self


def upcast_policy_version_published_v1_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    """Read a version 1 `PolicyVersionPublished` payload as version 2."""
    # Version 1 kept the text's hash only.
    return {**data, "schema_version": 2, "text": None}


class PolicyChangeAnnounced(EventBase):
    """The operator told people that its privacy policy changes (the policy promises it)."""

    catalog: ClassVar[bool] = True

    event_type: Literal["PolicyChangeAnnounced"] = "PolicyChangeAnnounced"
    schema_version: Literal[1] = 1
    versions: Annotated[tuple[VersionLabel, ...], Field(min_length=1)]
    """The versions concerned: the one announced, and the one it replaces if any."""
    channel: AnnouncementChannel
    announced_at: UtcDatetime


class PolicyVersionAccepted(EventBase):
    """A person accepted a privacy-policy version."""

    event_type: Literal["PolicyVersionAccepted"] = "PolicyVersionAccepted"
    schema_version: Literal[1] = 1
    version: VersionLabel
    text_sha256: Sha256Hex


class ConsentGrantedV1(EventBase):
    """Version 1 of `ConsentGranted`, before double opt-in was recorded; never written again."""

    event_type: Literal["ConsentGranted"] = "ConsentGranted"
    schema_version: Literal[1] = 1
    purpose: Slug
    channel: Channel
    policy_version: VersionLabel


class ConsentGranted(EventBase):
    """A person gave consent for a purpose on a channel."""

    event_type: Literal["ConsentGranted"] = "ConsentGranted"
    schema_version: Literal[2] = 2
    purpose: Slug
    channel: Channel
    policy_version: VersionLabel
    double_opt_in: DoubleOptIn


def upcast_consent_granted_v1_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    """Read a version 1 `ConsentGranted` payload as version 2."""
    # Double opt-in did not exist when version 1 was written: every grant was single opt-in.
    return {**data, "schema_version": 2, "double_opt_in": DoubleOptIn.NOT_APPLICABLE.value}


class ConsentConfirmed(EventBase):
    """A person confirmed a pending grant (double opt-in)."""

    event_type: Literal["ConsentConfirmed"] = "ConsentConfirmed"
    schema_version: Literal[1] = 1
    purpose: Slug
    channel: Channel


class ConsentWithdrawn(EventBase):
    """A person's consent for a purpose on a channel was withdrawn."""

    event_type: Literal["ConsentWithdrawn"] = "ConsentWithdrawn"
    schema_version: Literal[1] = 1
    purpose: Slug
    channel: Channel
    reason: WithdrawalReason


class UnsubscribeClicked(EventBase):
    """An unsubscribe link or one-click POST was used.

    Without a purpose and without a list it covers every marketing message (a global opt-out).
    """

    event_type: Literal["UnsubscribeClicked"] = "UnsubscribeClicked"
    schema_version: Literal[1] = 1
    purpose: Slug | None = None
    list_id: ShortText | None = None
    campaign_id: ShortText | None = None
    message_id: ShortText | None = None
    method: UnsubscribeMethod


class ObjectionRecorded(EventBase):
    """A person objected (GDPR art. 21) to one purpose or to all direct marketing."""

    event_type: Literal["ObjectionRecorded"] = "ObjectionRecorded"
    schema_version: Literal[1] = 1
    purpose: Slug | None = None
    all_direct_marketing: bool = False

    @model_validator(mode="after")
    def check_scope(self) -> Self:
        """Require exactly one scope, so an objection is never silently global or empty."""
        if (self.purpose is not None) == self.all_direct_marketing:
            raise ValueError("an objection names either a purpose or all_direct_marketing")
        return self


class ProcessingRestricted(EventBase):
    """Processing of a person's data was restricted (GDPR art. 18)."""

    event_type: Literal["ProcessingRestricted"] = "ProcessingRestricted"
    schema_version: Literal[1] = 1
    purposes: tuple[Slug, ...]
    """The purposes restricted; empty means every purpose."""


class RestrictionLifted(EventBase):
    """A restriction of processing was lifted."""

    event_type: Literal["RestrictionLifted"] = "RestrictionLifted"
    schema_version: Literal[1] = 1
    purposes: tuple[Slug, ...]
    """The purposes released; empty means every purpose."""


class RightsRequestOpened(EventBase):
    """A person exercised a data-subject right; the clock to answer starts."""

    event_type: Literal["RightsRequestOpened"] = "RightsRequestOpened"
    schema_version: Literal[1] = 1
    request_id: UUID
    right: Right
    received_at: UtcDatetime
    due_at: UtcDatetime

    @model_validator(mode="after")
    def check_deadline(self) -> Self:
        """Refuse a request that would be overdue the moment it arrived."""
        if self.due_at <= self.received_at:
            raise ValueError("due_at must be after received_at")
        return self


class RightsRequestExtended(EventBase):
    """The deadline of a rights request was extended (GDPR art. 12(3) allows it once)."""

    event_type: Literal["RightsRequestExtended"] = "RightsRequestExtended"
    schema_version: Literal[1] = 1
    request_id: UUID
    due_at: UtcDatetime
    reason: ShortText


class RightsRequestClosed(EventBase):
    """A rights request was answered or abandoned."""

    event_type: Literal["RightsRequestClosed"] = "RightsRequestClosed"
    schema_version: Literal[1] = 1
    request_id: UUID
    outcome: RightsOutcome


class SubjectErased(EventBase):
    """A person's data key was destroyed (GDPR art. 17 by crypto-shredding)."""

    event_type: Literal["SubjectErased"] = "SubjectErased"
    schema_version: Literal[1] = 1
    request_id: UUID | None = None


class InteractionRecorded(EventBase):
    """A person showed a sign of life that resets the inactivity clock of their consents."""

    event_type: Literal["InteractionRecorded"] = "InteractionRecorded"
    schema_version: Literal[1] = 1
    kind: InteractionKind
    purpose: Slug | None = None


class ComplaintFields(Model):
    """What a complaint report (ARF, RFC 5965) says: the event's fields and its command's."""

    feedback_type: FeedbackType
    provider: ShortText | None = None
    """Who reported: the report's ``Reporting-MTA``, else the domain it came from."""
    user_agent: ShortText | None = None
    """The reporting software's ``User-Agent`` field (the provider's, not the person's)."""
    arrival_date: UtcDatetime | None = None
    """When the reported message reached the provider (``Arrival-Date``)."""
    original_message_id: ShortText | None = None
    """The ``Message-ID`` of the message complained about."""
    campaign_id: ShortText | None = None
    report_sha256: Sha256Hex
    """SHA-256 of the report as received: the same report, recorded once."""


class ComplaintReceived(EventBase, ComplaintFields):
    """A mailbox provider reported a person's complaint about a message (ARF, RFC 5965).

    Unless it is a ``not-spam`` report, it refuses every direct-marketing purpose with its own
    reason, ``complained``; it is not a withdrawal, and only a newer explicit consent outweighs it.
    """

    event_type: Literal["ComplaintReceived"] = "ComplaintReceived"
    schema_version: Literal[1] = 1


DsnStatus = Annotated[str, StringConstraints(pattern=r"^[245]\.\d{1,3}\.\d{1,3}$")]
"""A delivery status code (RFC 3463), such as ``5.1.1``."""


class UndeliverableFields(Model):
    """Why an address is undeliverable: the event's fields and its command's."""

    kind: UndeliverableKind
    status: DsnStatus | None = None
    """The DSN ``Status`` (RFC 3463), e.g. ``5.1.1``; the diagnostic text, which may quote the
    address, is personal data and travels encrypted."""
    soft_bounces: Annotated[int, Field(ge=1)] | None = None
    """For ``soft_bounces``: how many were counted within the window."""
    original_message_id: ShortText | None = None
    report_sha256: Sha256Hex


class AddressUndeliverable(EventBase, UndeliverableFields):
    """A person's address cannot receive mail (RFC 3464): a deliverability suppression.

    Not a consent decision: it denies email with the reason ``undeliverable`` until a later
    confirmed consent (double opt-in) shows the address works again.
    """

    event_type: Literal["AddressUndeliverable"] = "AddressUndeliverable"
    schema_version: Literal[1] = 1


Event = Annotated[
    PurposeRegistered
    | PolicyVersionPublished
    | PolicyChangeAnnounced
    | PolicyVersionAccepted
    | ConsentGranted
    | ConsentConfirmed
    | ConsentWithdrawn
    | UnsubscribeClicked
    | ObjectionRecorded
    | ProcessingRestricted
    | RestrictionLifted
    | RightsRequestOpened
    | RightsRequestExtended
    | RightsRequestClosed
    | SubjectErased
    | InteractionRecorded
    | ComplaintReceived
    | AddressUndeliverable,
    Field(discriminator="event_type"),
]
"""Any current event, told apart by ``event_type``."""

EVENT_CLASSES: Mapping[str, type[EventBase]] = MappingProxyType(
    {cls.__name__: cls for cls in get_args(get_args(Event)[0])}
)
"""The class of each current event, by event type."""
