"""Reading what mailbox providers send back: ARF complaints (RFC 5965) and DSN bounces (RFC 3464).

Parsed with the standard library's ``email`` package. A report is one of `Complaint`, `Bounce`
or `Rejected` (with the reason, a wire value): nothing here raises on a bad report.
"""

import email
import email.parser
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from schemas import FeedbackType

TEXT_MAX = 200
"""Header values kept in events are at most this long (the schema's short text)."""
# Their default policy, compat32: the modern one parses every header into objects, several
# times slower, and `email.policy` alone costs a command line a tenth of a second to import.
_PARSER = email.parser.BytesParser()
_HEADERS = email.parser.HeaderParser()
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([A-Za-z0-9.-]+)", re.IGNORECASE)
_NOT_COMPLAINTS = frozenset({"auth-failure"})
"""Feedback types that report a machine's failure (RFC 6591), not a person's complaint."""


class Reject:
    """Why a report records nothing; the values are what the reject store and callers see."""

    NOT_A_REPORT = "not_a_report"
    UNKNOWN_REPORT_TYPE = "unknown_report_type"
    NO_FEEDBACK_FIELDS = "no_feedback_fields"
    NOT_A_COMPLAINT = "not_a_complaint"
    NO_FAILURE = "no_failure"
    UNATTRIBUTABLE = "unattributable"
    UNKNOWN_RECIPIENT = "unknown_recipient"


COMPLAINT = "complaint"
BOUNCE = "bounce"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    provider: str | None = None
    kind: str = UNKNOWN
    """``complaint``, ``bounce``, or ``unknown`` when not even that could be read."""


@dataclass(frozen=True, slots=True)
class Complaint:
    """An ARF report: what the provider says, and the original message's headers."""

    feedback_type: FeedbackType
    provider: str | None
    user_agent: str | None
    arrival_date: datetime | None
    reported_at: datetime | None
    """The report's own ``Date``: about when the person complained."""
    original: Message | None
    recipients: tuple[str, ...]
    """``Original-Rcpt-To`` addresses (providers often redact them)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient of a DSN: its address, whether the failure is permanent, and why."""

    address: str | None
    status: str
    permanent: bool
    diagnostic: str | None


@dataclass(frozen=True, slots=True)
class Bounce:
    provider: str | None
    reported_at: datetime | None
    failures: tuple[Failure, ...]
    original: Message | None


Report = Complaint | Bounce | Rejected


def parse_report(raw: bytes) -> Report:
    """The report ``raw`` (a whole message, headers first) holds."""
    try:
        message = _PARSER.parsebytes(raw)
    except (ValueError, TypeError, LookupError):
        return Rejected(Reject.NOT_A_REPORT)
    content_type = str(message.get("Content-Type", ""))
    if _media(message) != "multipart/report" or not message.is_multipart():
        return Rejected(Reject.NOT_A_REPORT)
    found = _REPORT_TYPE.search(content_type)
    report_type = found.group(1).lower() if found else ""
    parts = [(_media(part), part) for part in message.get_payload() if isinstance(part, Message)]
    if report_type == "feedback-report":
        return _complaint(message, parts)
    if report_type == "delivery-status":
        return _bounce(message, parts)
    return Rejected(Reject.UNKNOWN_REPORT_TYPE, _sender_domain(message))


def with_content_type(body: bytes, content_type: str) -> bytes:
    """A MIME body given without its headers (an HTTP ``multipart/report`` body) as a message."""
    folded = " ".join(content_type.split())
    return f"Content-Type: {folded}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1") + body


def one_line(value: object, limit: int = TEXT_MAX) -> str | None:
    """A header value on one line, printable, at most ``limit`` characters; None if empty."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text.isprintable():
        text = "".join(ch for ch in text if ch.isprintable())
    return text[:limit].strip() or None


def _media(part: Message) -> str:
    """A part's media type, lowercase, read from its header (text/plain when it has none);
    `Message.get_content_type` costs more than the rest of the reading together."""
    header = part.get("Content-Type")
    if header is None:
        return "text/plain"
    return str(header).partition(";")[0].strip().lower()


def _embedded(media: str, part: Message) -> Message | None:
    """The message a ``message/*`` part carries, or a ``text/rfc822-headers`` part's headers."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    if media == "text/rfc822-headers":
        text = part.get_payload(decode=True)
        if isinstance(text, bytes):
            return _HEADERS.parsestr(text.decode("utf-8", errors="replace"))
    return None


Parts = list[tuple[str, Message]]
_ORIGINAL = frozenset({"message/rfc822", "text/rfc822-headers", "message/global"})


def _original(parts: Parts) -> Message | None:
    for media, part in parts[2:] or parts[1:]:
        if media in _ORIGINAL:
            return _embedded(media, part)
    return None


def _sender_domain(message: Message) -> str | None:
    sender = str(message.get("From", ""))
    match = re.search(r"@([A-Za-z0-9.-]+)", sender)
    return one_line(match.group(1).lower()) if match else None


def _mta(value: object) -> str | None:
    """``dns; mail.example.com`` as ``mail.example.com``."""
    text = one_line(value)
    return None if text is None else one_line(text.rpartition(";")[2])


def _date(value: object) -> datetime | None:
    text = one_line(value)
    if text is None:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _feedback_type(value: str) -> FeedbackType | None:
    """RFC 5965 section 7.3: an unknown type is read as ``other``; auth-failure is no complaint."""
    if value in _NOT_COMPLAINTS:
        return None
    try:
        return FeedbackType(value)
    except ValueError:
        return FeedbackType.OTHER


def _complaint(message: Message, parts: Parts) -> Report:
    fields = next((_embedded(m, p) for m, p in parts if m == "message/feedback-report"), None)
    provider = _sender_domain(message)
    if fields is None or not fields.get("Feedback-Type"):
        return Rejected(Reject.NO_FEEDBACK_FIELDS, provider, COMPLAINT)
    feedback_type = _feedback_type(str(fields["Feedback-Type"]).strip().lower())
    provider = _mta(fields.get("Reporting-MTA")) or provider
    if feedback_type is None:
        return Rejected(Reject.NOT_A_COMPLAINT, provider, COMPLAINT)
    return Complaint(
        feedback_type=feedback_type,
        provider=provider,
        user_agent=one_line(fields.get("User-Agent")),
        arrival_date=_date(fields.get("Arrival-Date") or fields.get("Received-Date")),
        reported_at=_date(message.get("Date")),
        original=_original(parts),
        recipients=tuple(
            address
            for value in fields.get_all("Original-Rcpt-To", [])
            if (address := _address(value)) is not None
        ),
    )


def _address(value: object) -> str | None:
    """The address of ``<a@b>``, ``rfc822; a@b`` or ``a@b``."""
    text = one_line(value, 320)
    if text is None:
        return None
    text = text.rpartition(";")[2].strip().strip("<>").strip()
    return text if "@" in text else None


_DELIVERY_STATUS = frozenset({"message/delivery-status", "message/global-delivery-status"})


def _bounce(message: Message, parts: Parts) -> Report:
    status_part = next((p for m, p in parts if m in _DELIVERY_STATUS), None)
    blocks = status_part.get_payload() if status_part is not None else None
    if not isinstance(blocks, list) or not blocks:
        return Rejected(Reject.NO_FEEDBACK_FIELDS, _sender_domain(message), BOUNCE)
    per_message, recipients = blocks[0], blocks[1:]
    reporting = per_message.get("Reporting-MTA") if isinstance(per_message, Message) else None
    provider = _mta(reporting) or _sender_domain(message)
    failures = []
    for block in recipients:
        if not isinstance(block, Message):
            continue
        action = str(block.get("Action", "")).strip().lower()
        status = one_line(block.get("Status"), 16) or ""
        code = _STATUS.match(status.split(" ")[0])
        if action not in {"failed", "delayed"} or code is None:
            continue
        failures.append(
            Failure(
                address=_address(block.get("Final-Recipient") or block.get("Original-Recipient")),
                status=code.group(0),
                permanent=action == "failed" and code.group(1) == "5",
                diagnostic=one_line(block.get("Diagnostic-Code"), 2000),
            )
        )
    if not failures:
        return Rejected(Reject.NO_FAILURE, provider, BOUNCE)
    return Bounce(
        provider=provider,
        reported_at=_date(message.get("Date")),
        failures=tuple(failures),
        original=_original(parts),
    )
