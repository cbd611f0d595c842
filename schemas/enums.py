"""The closed vocabularies used by event fields."""

from enum import StrEnum

__all__ = [
    "AnnouncementChannel",
    "Channel",
    "DoubleOptIn",
    "FeedbackType",
    "InteractionKind",
    "LegalBasis",
    "Right",
    "RightsOutcome",
    "Source",
    "UndeliverableKind",
    "UnsubscribeMethod",
    "WithdrawalReason",
]


class Source(StrEnum):
    """Where the command that produced an event came from."""

    WEB_FORM = "web_form"
    API = "api"
    IMPORT = "import"
    UNSUBSCRIBE_LINK = "unsubscribe_link"
    ONE_CLICK = "one_click"
    CONFIRMATION_LINK = "confirmation_link"
    PREFERENCE_CENTRE = "preference_centre"
    MAIL_CLIENT = "mail_client"
    COMPLAINT_LOOP = "complaint_loop"
    BOUNCE = "bounce"
    """A delivery status notification (RFC 3464) from a mail server."""
    ADMIN = "admin"
    RETENTION = "retention"
    SYSTEM = "system"


class Channel(StrEnum):
    """How a person may be contacted."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    POSTAL = "postal"
    PUSH = "push"


class LegalBasis(StrEnum):
    """The GDPR art. 6 ground a purpose relies on."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    LEGAL_OBLIGATION = "legal_obligation"


class DoubleOptIn(StrEnum):
    """Where a grant stands in the double opt-in flow."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    NOT_APPLICABLE = "not_applicable"


class UnsubscribeMethod(StrEnum):
    """How an unsubscribe request reached us."""

    ONE_CLICK_POST = "one_click_post"
    LINK_PAGE = "link_page"
    PREFERENCE_CENTRE = "preference_centre"
    MAIL_CLIENT = "mail_client"
    COMPLAINT_LOOP = "complaint_loop"
    ADMIN = "admin"


class Right(StrEnum):
    """A data-subject right (GDPR art. 15 to 21, and the French post-mortem directive)."""

    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    PORTABILITY = "portability"
    POST_MORTEM = "post_mortem"


class RightsOutcome(StrEnum):
    """How a rights request ended."""

    FULFILLED = "fulfilled"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class InteractionKind(StrEnum):
    """A sign of life that resets a consent's inactivity clock.

    An email open is deliberately absent: mail clients prefetch images (Apple Mail Privacy
    Protection opens every message), so an open proves nothing about the person.
    """

    CLICK = "click"
    REPLY = "reply"
    PURCHASE = "purchase"
    LOGIN = "login"
    FORM_SUBMIT = "form_submit"


class WithdrawalReason(StrEnum):
    """Why a consent was withdrawn."""

    USER_REQUEST = "user_request"
    COMPLAINT = "complaint"
    BOUNCE = "bounce"
    ADMIN = "admin"
    LAPSED = "lapsed"
    """No interaction for longer than the purpose's ``max_age_days`` (recorded by retention)."""
    RECONSENT_REQUIRED = "reconsent_required"
    """Given under a policy version a newer one, requiring re-consent, superseded."""
    OTHER = "other"


class FeedbackType(StrEnum):
    """The ``Feedback-Type`` of an ARF report (RFC 5965 section 7.3)."""

    ABUSE = "abuse"
    FRAUD = "fraud"
    VIRUS = "virus"
    NOT_SPAM = "not-spam"
    """The person marked the message as not spam: recorded, it changes nothing."""
    OTHER = "other"


class UndeliverableKind(StrEnum):
    """Why an address is held undeliverable."""

    HARD_BOUNCE = "hard_bounce"
    """A permanent failure (RFC 3464 ``Action: failed``, status 5.x.x)."""
    SOFT_BOUNCES = "soft_bounces"
    """Transient failures (status 4.x.x), as many as the settings allow within their window."""


class AnnouncementChannel(StrEnum):
    """How people were told of a change of the privacy policy."""

    EMAIL = "email"
    SITE = "site"
