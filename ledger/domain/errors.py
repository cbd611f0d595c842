"""Errors of the write side.

Every error the ledger raises on purpose is a ``LedgerError``::

    LedgerError
    +-- InvalidFieldError              bad input, nothing written; ``field`` names it
    |   +-- InvalidAddressError
    |   +-- UnknownChannelError
    |   +-- NaiveDatetimeError
    |   +-- FutureOccurrenceError
    |   +-- OversizeEvidenceError
    |   +-- LineError                  a line of an import file (ledger.write.importer)
    +-- RuleViolationError             a well-formed command the current state refuses
    |   +-- UnknownPurposeError        (field "purpose")
    |   +-- UnknownPolicyVersionError  (field "policy_version" or "version")
    |   +-- PolicyTextMismatchError
    |   +-- PurposeNotCoveredError     (field "purpose": the policy version does not cover it)
    |   +-- DuplicatePurposeError
    |   +-- DuplicatePolicyVersionError
    |   +-- ConsentNotPendingError
    |   +-- RightsRequestNotOpenError
    |   +-- RightsRequestAlreadyExtendedError
    |   +-- RightsRequestExtensionError    (field "due_at": not later than the deadline)
    |   +-- DuplicateRightsRequestError
    +-- ConcurrencyConflictError       retries on a version conflict ran out (retryable)
    +-- StoreUnavailableError          the database did not answer; nothing written (retryable)
    +-- CommandFailedError             handling this one command failed unexpectedly; nothing
    |                                  of it written, the rest of its batch unharmed
    +-- ConfigurationError             missing or unusable secrets and settings at start-up
    +-- PersonalDataTamperedError      sealed personal data fails authentication
    |                                  (ledger.privacy.personal)
    +-- NotSealedError                 a person's events are not all checkpointed yet
    |                                  (ledger.audit.export)
    +-- TamperedEventError             a stored event differs from its sealed leaf: no bundle
    |                                  (ledger.audit.export)
    +-- UnsubscribeTokenError          an unsubscribe link that cannot be honoured as given
        +-- MalformedTokenError        not a token of ours at all
        +-- UnknownTokenKeyError       signed with a key this deployment does not hold
        +-- TokenSignatureError        the MAC does not verify: forged or altered
        +-- ExpiredTokenError          genuine, but past its expiry
"""

from typing import ClassVar

from schemas import quoted


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    retryable: ClassVar[bool] = False


class InvalidFieldError(LedgerError, ValueError):
    """A command field is malformed; nothing was written."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidAddressError(InvalidFieldError):
    """The email address cannot be an address."""


class UnknownChannelError(InvalidFieldError):
    """The channel is not one the ledger knows."""


class NaiveDatetimeError(InvalidFieldError):
    """A datetime without a time zone: the ledger only takes UTC-aware times."""


class FutureOccurrenceError(InvalidFieldError):
    """``occurred_at`` lies in the future beyond the allowed clock skew."""


class OversizeEvidenceError(InvalidFieldError):
    """The evidence or personal data is larger than the ledger stores."""


class RuleViolationError(LedgerError):
    """A well-formed command that the current state of the ledger refuses."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownPurposeError(RuleViolationError):
    """The purpose was never registered."""

    def __init__(self, purpose: str) -> None:
        super().__init__("purpose", f"unknown purpose {quoted(purpose)}")
        self.purpose = purpose


class UnknownPolicyVersionError(RuleViolationError):
    """The privacy-policy version was never published."""

    def __init__(self, version: str, *, field: str = "policy_version") -> None:
        super().__init__(field, f"unpublished policy version {quoted(version)}")
        self.version = version


class PolicyTextMismatchError(RuleViolationError):
    """The accepted text is not the published text of that version."""

    def __init__(self, version: str) -> None:
        super().__init__(
            "text_sha256", f"does not match the text of policy version {quoted(version)}"
        )
        self.version = version


class PurposeNotCoveredError(RuleViolationError):
    """A consent is given under a policy version, which must cover its purpose."""

    def __init__(self, purpose: str, version: str) -> None:
        super().__init__(
            "purpose",
            f"policy version {quoted(version)} does not cover purpose {quoted(purpose)}",
        )
        self.purpose = purpose
        self.version = version


class DuplicatePurposeError(RuleViolationError):
    """A purpose is registered once; its meaning never changes."""

    def __init__(self, purpose: str) -> None:
        super().__init__("purpose", f"purpose {quoted(purpose)} is already registered")
        self.purpose = purpose


class DuplicatePolicyVersionError(RuleViolationError):
    """A policy version is published once; its text never changes."""

    def __init__(self, version: str) -> None:
        super().__init__("version", f"policy version {quoted(version)} is already published")
        self.version = version


class ConsentNotPendingError(RuleViolationError):
    """Only a consent waiting for double opt-in can be confirmed."""

    def __init__(self, purpose: str, channel: str) -> None:
        super().__init__(
            "purpose", f"no pending consent for {quoted(purpose)} on {quoted(channel)}"
        )
        self.purpose = purpose
        self.channel = channel


class RightsRequestNotOpenError(RuleViolationError):
    """The rights request is unknown or already closed."""

    def __init__(self, request_id: object) -> None:
        super().__init__("request_id", f"no open rights request {request_id}")
        self.request_id = request_id


class RightsRequestAlreadyExtendedError(RuleViolationError):
    """GDPR art. 12(3) allows one extension of the one-month deadline."""

    def __init__(self, request_id: object) -> None:
        super().__init__("request_id", f"rights request {request_id} was already extended")
        self.request_id = request_id


class RightsRequestExtensionError(RuleViolationError):
    """An extension (GDPR art. 12(3)) moves the deadline later, never earlier."""

    def __init__(self, request_id: object, reason: str) -> None:
        super().__init__("due_at", f"rights request {request_id}: {reason}")
        self.request_id = request_id


class DuplicateRightsRequestError(RuleViolationError):
    """A rights request id is used once."""

    def __init__(self, request_id: object) -> None:
        super().__init__("request_id", f"rights request {request_id} already exists")
        self.request_id = request_id


class ConcurrencyConflictError(LedgerError):
    """Another writer kept changing the same person; the command may be retried."""

    retryable = True

    def __init__(self, subject: str, attempts: int) -> None:
        super().__init__(f"version conflict on one person after {attempts} attempts")
        self.subject = subject
        self.attempts = attempts


class StoreUnavailableError(LedgerError):
    """The database failed the batch this command was in; nothing of it was written."""

    retryable = True


class CommandFailedError(LedgerError):
    """Deciding one command's events raised an error no rule names (a defect, not the input's
    fault nor the store's): that command alone is refused, the others of its batch go on."""

    def __init__(self, command_type: str) -> None:
        super().__init__(f"the ledger could not handle this {command_type}")
        self.command_type = command_type


class ConfigurationError(LedgerError):
    """A secret or setting the ledger needs is missing or unusable."""


class UnsubscribeTokenError(LedgerError):
    """An unsubscribe token that is not a genuine, current token of this deployment."""


class MalformedTokenError(UnsubscribeTokenError):
    """The text cannot be a token: bad alphabet, too short or too long, bad layout."""


class UnknownTokenKeyError(UnsubscribeTokenError):
    """The token names a signing key this deployment does not hold (retired or never ours)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"unknown unsubscribe key {quoted(key_id)}")
        self.key_id = key_id


class TokenSignatureError(UnsubscribeTokenError):
    """The token's MAC does not verify: it was forged or altered."""


class ExpiredTokenError(UnsubscribeTokenError):
    """A genuine token past its expiry."""

    def __init__(self, expires_at: object) -> None:
        super().__init__(f"unsubscribe link expired at {quoted(expires_at)}")
        self.expires_at = expires_at
