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
    Channel,
    CommandId,
    DoubleOptIn,
    Evidence,
    InteractionKind,
    LegalBasis,
    Model,
    PersonalData,
    Right,
    RightsOutcome,
    Sha256Hex,
    ShortText,
    Slug,
    Source,
    SubjectId,
    UnsubscribeMethod,
    UtcDatetime,
    VersionLabel,
    WithdrawalReason,
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
    command_id: CommandId = Field(default_factory=new_command_id)
    source: Source = Source.API
    actor: ShortText = "api"
    evidence: Evidence | None = None


class CatalogCommand(Command):
    """A command about the ledger's catalog of purposes and policy versions."""


class PersonalFields(PersonalData):
    """A command's personal data: its address held to the ledger's address rule."""

    address: EmailAddress | None = None


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
    address: EmailAddress | None = None
    personal: Annotated[PersonalFields, BeforeValidator(_as_fields)] | None = None

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
    """``max_age_days`` of a direct-marketing purpose on consent defaults to three years."""

    purpose: Slug
    legal_basis: LegalBasis
    description: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    max_age_days: Annotated[int, Field(gt=0)] | None = None
    direct_marketing: StrictBool = False

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
    version: VersionLabel
    text_sha256: Sha256Hex
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    effective_at: UtcDatetime
    purposes: tuple[Slug, ...] = ()
    requires_reconsent: StrictBool = False


class GrantConsent(PersonCommand):
    purpose: Slug
    channel: Channel = Channel.EMAIL
    policy_version: VersionLabel
    double_opt_in: DoubleOptIn = DoubleOptIn.NOT_APPLICABLE


class ConfirmConsent(PersonCommand):
    purpose: Slug
    channel: Channel = Channel.EMAIL


class WithdrawConsent(PersonCommand):
    purpose: Slug
    channel: Channel = Channel.EMAIL
    reason: WithdrawalReason = WithdrawalReason.USER_REQUEST


class Unsubscribe(PersonCommand):
    """No purpose and no list: every marketing message."""

    purpose: Slug | None = None
    list_id: ShortText | None = None
    campaign_id: ShortText | None = None
    message_id: ShortText | None = None
    method: UnsubscribeMethod = UnsubscribeMethod.LINK_PAGE


class AcceptPolicy(PersonCommand):
    """``text_sha256`` defaults to the published text of ``version``."""

    version: VersionLabel
    text_sha256: Sha256Hex | None = None


class RecordObjection(PersonCommand):
    purpose: Slug | None = None
    all_direct_marketing: StrictBool = False

    @model_validator(mode="after")
    def check_scope(self) -> Self:
        """Either one purpose or all direct marketing, never both or neither."""
        if (self.purpose is None) != self.all_direct_marketing:
            raise ValueError("give a purpose, or all_direct_marketing=true, not both")
        return self


class RestrictProcessing(PersonCommand):
    """An empty ``purposes`` restricts every purpose."""

    purposes: tuple[Slug, ...] = ()


class LiftRestriction(PersonCommand):
    purposes: tuple[Slug, ...] = ()


class OpenRightsRequest(PersonCommand):
    """``received_at`` defaults to ``occurred_at``; ``due_at`` to one month later."""

    request_id: UUID = Field(default_factory=uuid4)
    right: Right
    received_at: UtcDatetime | None = None
    due_at: UtcDatetime | None = None

    @property
    def effective_received_at(self) -> datetime:
        return self.received_at or self.occurred_at

    @property
    def effective_due_at(self) -> datetime:
        return self.due_at or self.effective_received_at + RIGHTS_REQUEST_DEADLINE


class ExtendRightsRequest(PersonCommand):
    request_id: UUID
    due_at: UtcDatetime
    reason: ShortText


class CloseRightsRequest(PersonCommand):
    request_id: UUID
    outcome: RightsOutcome


class EraseSubject(PersonCommand):
    """GDPR art. 17 by crypto-shredding: the person's data key is destroyed."""

    request_id: UUID | None = None


class RecordInteraction(PersonCommand):
    """A signal that resets the inactivity clock: a click, not an open."""

    kind: InteractionKind
    purpose: Slug | None = None


COMMANDS: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        RegisterPurpose,
        PublishPolicyVersion,
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
    )
}
"""Every command by its name, for callers that build commands from text (CLI, import, HTTP)."""

_DATETIME_FIELDS = frozenset({"occurred_at", "effective_at", "received_at", "due_at"})

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
