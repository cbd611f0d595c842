"""Commands: what a caller asks the ledger to record, validated before anything is written."""

from datetime import datetime, timedelta
from typing import Annotated, Any, Self, TypeVar
from uuid import UUID, uuid4

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ledger.domain.errors import (
    InvalidAddressError,
    InvalidFieldError,
    NaiveDatetimeError,
    OversizeEvidenceError,
    UnknownChannelError,
)
from ledger.domain.identity import EmailAddress, holds_an_address
from schemas import (
    CATALOG_SUBJECT,
    AnnouncementChannel,
    Channel,
    CommandId,
    ComplaintFields,
    DoubleOptIn,
    Evidence,
    InteractionKind,
    LanguageTag,
    LegalBasis,
    Model,
    PersonalData,
    PolicyText,
    PurposeWording,
    Right,
    RightsOutcome,
    Sha256Hex,
    ShortText,
    Slug,
    Source,
    SubjectId,
    UndeliverableFields,
    UnsubscribeMethod,
    UtcDatetime,
    VersionLabel,
    WithdrawalReason,
    check_policy_text,
    error_reason,
)

RIGHTS_REQUEST_DEADLINE = timedelta(days=30)
"""GDPR art. 12(3): one month from receipt; 30 days is the conservative reading."""
PROSPECT_MAX_AGE_DAYS = 3 * 365
"""CNIL: a prospect may be contacted for three years after their last sign of life."""


def new_command_id() -> str:
    return str(uuid4())


class Command(Model):
    """Fields every command carries: who issued it, from where, when it happened."""

    occurred_at: UtcDatetime
    """When it happened, ISO 8601 with its zone (over HTTP: default now)."""
    command_id: CommandId = Field(default_factory=new_command_id)
    """The idempotency key: the same id again records nothing (HTTP: Idempotency-Key)."""
    source: Source = Source.API
    """Where the command came from."""
    actor: ShortText = "api"
    """Who issued it (HTTP: the API key)."""
    evidence: Evidence | None = None
    """Non-personal proof of what was shown: form, wording's hash, artefact."""


class CatalogCommand(Command):
    """A command about the ledger's catalog of purposes and policy versions."""


class PersonalFields(PersonalData):
    """A command's personal data: its address held to the ledger's address rule."""

    address: EmailAddress | None = None
    """The email address, as the person gave it."""


def _as_fields(value: Any) -> Any:
    # A caller's own PersonalData is checked again, as a command's: its address too.
    if isinstance(value, PersonalData) and not isinstance(value, PersonalFields):
        return value.model_dump(exclude_defaults=True)
    return value


ONE_PERSON: dict[str, Any] = {"oneOf": [{"required": ["subject"]}, {"required": ["address"]}]}
"""JSON Schema of `PersonCommand.check_one_person`: exactly one of subject or address."""


class PersonCommand(Command):
    """A command about one person, named by ``subject`` or by email ``address``."""

    model_config = ConfigDict(json_schema_extra=ONE_PERSON)

    subject: SubjectId | None = None
    """The person's subject: the caller's own id, or the keyed hash of an address (give
    exactly one of subject or address)."""
    address: EmailAddress | None = None
    """The person's email address, hashed into their subject (give exactly one of subject or
    address); kept only sealed under the person's key."""
    personal: Annotated[PersonalFields, BeforeValidator(_as_fields)] | None = None
    """Personal data kept with the event, sealed under the person's own key."""

    @field_validator("subject")
    @classmethod
    def check_not_the_catalog(cls, subject: str | None) -> str | None:
        """The catalog's key names no person: a person's command there would reach the catalog."""
        if subject == CATALOG_SUBJECT:
            msg = f"{CATALOG_SUBJECT} is reserved for the catalog, not a person"
            raise ValueError(msg)
        return subject

    @field_validator("subject")
    @classmethod
    def check_not_an_address(cls, subject: str | None) -> str | None:
        """A subject is kept in clear after an erasure: an address goes in ``address``, where
        it becomes its keyed hash and its sealed copy is erased with the person."""
        if subject is not None and holds_an_address(subject):
            msg = "holds an email address: give the address as address, not in the subject"
            raise ValueError(msg)
        return subject

    @model_validator(mode="after")
    def check_one_person(self) -> Self:
        """Exactly one way of naming the person, so two commands cannot disagree on who."""
        if (self.subject is None) == (self.address is None):
            raise ValueError("give exactly one of subject or address")
        return self


class RegisterPurpose(CatalogCommand):
    """Register a processing purpose; ``max_age_days`` of a direct-marketing purpose on consent
    defaults to three years."""

    purpose: Slug
    """The purpose's machine name, as checks and consents name it."""
    legal_basis: LegalBasis
    """The GDPR art. 6 basis of the processing."""
    description: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    """What the purpose is, in words a person understands."""
    max_age_days: Annotated[int, Field(gt=0)] | None = None
    """Days a consent lasts without an interaction (default for direct marketing on consent:
    three years)."""
    direct_marketing: StrictBool = False
    """Whether it is direct marketing: an objection to all direct marketing then denies it."""
    wording: dict[LanguageTag, PurposeWording] = Field(default_factory=dict)
    """The label and description a recipient reads, per language (``fr``, ``en``)."""

    @model_validator(mode="before")
    @classmethod
    def default_max_age(cls, data: Any) -> Any:
        """Prospects' consent lapses after three years without a sign of life (CNIL)."""
        if (
            isinstance(data, dict)
            and data.get("max_age_days") is None
            and data.get("direct_marketing") is True
            and data.get("legal_basis") == LegalBasis.CONSENT
        ):
            return {**data, "max_age_days": PROSPECT_MAX_AGE_DAYS}
        return data


class PublishPolicyVersion(CatalogCommand):
    """Publish a privacy-policy version: its text's hash, from when it applies, what it covers.

    ``text``, when given, is kept in the ledger: its SHA-256 must be ``text_sha256``.
    """

    version: VersionLabel
    """The version's label, as grants and acceptances name it."""
    text_sha256: Sha256Hex
    """SHA-256 of the policy text's exact bytes (hex), the proof of what was shown."""
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    """Where the text is published."""
    effective_at: UtcDatetime
    """From when the version applies."""
    purposes: tuple[Slug, ...] = ()
    """The purposes the version covers (none listed: every purpose)."""
    requires_reconsent: StrictBool = False
    """Whether consents given under older versions lapse when it takes effect."""
    text: PolicyText | None = None
    """The policy text itself, kept so that a dossier shows what the person accepted."""

    @field_validator("text")
    @classmethod
    def check_text(cls, text: PolicyText | None, info: ValidationInfo) -> PolicyText | None:
        # A field's own check, so that a refusal names ``text`` (``text_sha256`` comes first).
        digest = info.data.get("text_sha256")
        if digest is not None:
            check_policy_text(text, digest)
        return text


class AnnouncePolicyChange(CatalogCommand):
    """The operator told people of a policy change, by email or on its site."""

    versions: Annotated[tuple[VersionLabel, ...], Field(min_length=1)]
    """The policy versions the announcement concerns (at least one)."""
    channel: AnnouncementChannel
    """How people were told: ``email`` or ``site``."""
    announced_at: UtcDatetime | None = None
    """When people were told; defaults to ``occurred_at``."""


class GrantConsent(PersonCommand):
    """Record a person's consent to a purpose on a channel, under a policy version."""

    purpose: Slug
    """The purpose consented to."""
    channel: Channel = Channel.EMAIL
    """The channel consented to."""
    policy_version: VersionLabel
    """The privacy-policy version the person was shown; it must cover the purpose."""
    double_opt_in: DoubleOptIn = DoubleOptIn.NOT_APPLICABLE
    """``pending`` until the confirmation link is followed (then ConfirmConsent)."""


class ConfirmConsent(PersonCommand):
    """Confirm a pending double opt-in: the person followed the confirmation link."""

    purpose: Slug
    """The purpose whose pending double opt-in is confirmed."""
    channel: Channel = Channel.EMAIL
    """The channel of that consent."""


class WithdrawConsent(PersonCommand):
    """Record that a person withdrew their consent to a purpose on a channel."""

    purpose: Slug
    """The purpose withdrawn from."""
    channel: Channel = Channel.EMAIL
    """The channel withdrawn from."""
    reason: WithdrawalReason = WithdrawalReason.USER_REQUEST
    """Why (``complaint``: a spam complaint)."""


class Unsubscribe(PersonCommand):
    """Record an unsubscribe; no purpose and no list: every marketing message."""

    purpose: Slug | None = None
    """Leave this purpose only (none, and no list: every marketing message)."""
    list_id: ShortText | None = None
    """Leave this mailing list only."""
    campaign_id: ShortText | None = None
    """The campaign of the message the person left from."""
    message_id: ShortText | None = None
    """The Message-ID of that message."""
    method: UnsubscribeMethod = UnsubscribeMethod.LINK_PAGE
    """How the request reached us."""


class AcceptPolicy(PersonCommand):
    """Record that a person accepted a policy version; ``text_sha256`` defaults to the published
    text of ``version``."""

    version: VersionLabel
    """The policy version accepted."""
    text_sha256: Sha256Hex | None = None
    """SHA-256 of the text accepted (default: the published text of the version)."""


class RecordObjection(PersonCommand):
    """Record an objection (GDPR art. 21) to one purpose or to all direct marketing."""

    purpose: Slug | None = None
    """The purpose objected to (or set all_direct_marketing)."""
    all_direct_marketing: StrictBool = False
    """An objection to all direct marketing (GDPR art. 21(2)); never lifted by a consent."""

    @model_validator(mode="after")
    def check_scope(self) -> Self:
        """Either one purpose or all direct marketing, never both or neither."""
        if (self.purpose is None) != self.all_direct_marketing:
            raise ValueError("give a purpose, or all_direct_marketing=true, not both")
        return self


class RestrictProcessing(PersonCommand):
    """Restrict processing (GDPR art. 18); an empty ``purposes`` restricts every purpose."""

    purposes: tuple[Slug, ...] = ()
    """The purposes restricted (none listed: every purpose)."""


class LiftRestriction(PersonCommand):
    """End a restriction of processing (GDPR art. 18)."""

    purposes: tuple[Slug, ...] = ()
    """The purposes whose restriction ends (none listed: every one)."""


class OpenRightsRequest(PersonCommand):
    """Open a data-subject rights request; ``received_at`` defaults to ``occurred_at``, ``due_at``
    to one month later."""

    request_id: UUID = Field(default_factory=uuid4)
    """The request's id, named by its extension and closing (default: a new UUID)."""
    right: Right
    """The GDPR right exercised."""
    received_at: UtcDatetime | None = None
    """When the request was received (default: occurred_at)."""
    due_at: UtcDatetime | None = None
    """When the answer is due (default: one month after receipt)."""

    @property
    def effective_received_at(self) -> datetime:
        return self.received_at or self.occurred_at

    @property
    def effective_due_at(self) -> datetime:
        return self.due_at or self.effective_received_at + RIGHTS_REQUEST_DEADLINE


class ExtendRightsRequest(PersonCommand):
    """Move an open rights request's deadline later, once, with a reason."""

    request_id: UUID
    """The open request extended."""
    due_at: UtcDatetime
    """The new due date, later than the current one (one extension per request)."""
    reason: ShortText
    """Why more time is needed, as told to the person (GDPR art. 12(3))."""


class CloseRightsRequest(PersonCommand):
    """Close a rights request with its outcome."""

    request_id: UUID
    """The open request closed."""
    outcome: RightsOutcome
    """How it ended."""


class EraseSubject(PersonCommand):
    """GDPR art. 17 by crypto-shredding: the person's data key is destroyed."""

    request_id: UUID | None = None
    """The erasure rights request this fulfils, if any."""


class RecordInteraction(PersonCommand):
    """A signal that resets the inactivity clock: a click, not an open."""

    kind: InteractionKind
    """What the person did."""
    purpose: Slug | None = None
    """The purpose of the message interacted with (none: every purpose)."""


class RecordComplaint(PersonCommand, ComplaintFields):
    """A mailbox provider's complaint report (ARF); ``report_sha256`` makes it record once."""


class RecordUndeliverable(PersonCommand, UndeliverableFields):
    """A hard bounce, or as many soft bounces as the settings allow within their window."""


COMMANDS: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        RegisterPurpose,
        PublishPolicyVersion,
        AnnouncePolicyChange,
        GrantConsent,
        ConfirmConsent,
        WithdrawConsent,
        Unsubscribe,
        AcceptPolicy,
        RecordObjection,
        RestrictProcessing,
        LiftRestriction,
        OpenRightsRequest,
        ExtendRightsRequest,
        CloseRightsRequest,
        EraseSubject,
        RecordInteraction,
        RecordComplaint,
        RecordUndeliverable,
    )
}
"""Every command by its name, for callers that build commands from text (CLI, import, HTTP)."""

_DATETIME_FIELDS = frozenset(
    {"occurred_at", "effective_at", "received_at", "due_at", "arrival_date", "announced_at"}
)

C = TypeVar("C", bound=Command)


def field_error(error: ValidationError) -> InvalidFieldError:
    """The first problem of a pydantic error, as the typed ledger error naming the field."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    field = ".".join(loc) or "command"
    top = loc[0] if loc else ""
    reason = error_reason(first)
    if top == "address" or loc[-1:] == ["address"]:
        return InvalidAddressError(field, reason)
    if top == "channel":
        return UnknownChannelError(field, reason)
    if top in _DATETIME_FIELDS and "offset" in reason:
        return NaiveDatetimeError(field, "datetime has no time zone; give UTC, e.g. ...Z")
    if top == "evidence" and "bytes" in reason:
        return OversizeEvidenceError(field, reason)
    return InvalidFieldError(field, reason)


def build(cls: type[C], data: dict[str, Any] | None = None, /, **fields: Any) -> C:
    """Build a command, turning pydantic's error into a `LedgerError` naming the field."""
    try:
        return cls.model_validate({**(data or {}), **fields})
    except ValidationError as error:
        raise field_error(error) from None
