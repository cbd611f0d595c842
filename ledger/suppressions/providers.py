"""Other providers' suppression exports, read into the ledger's events.

The column layouts, as each provider documents its CSV exports:

- ``sendgrid``: one file per list (Suppressions > export): ``email``, ``created`` (Unix
  seconds), and for bounces ``reason`` and ``status``. ``--kind`` says which list: an
  ``unsubscribe`` (global unsubscribes, group unsubscribes), a ``bounce`` (bounces, blocks,
  invalid emails) or a ``spam_report``.
- ``mailchimp``: the audience export's ``unsubscribed`` and ``cleaned`` files: ``Email Address``,
  then ``UNSUB_TIME`` and ``UNSUB_REASON`` (an unsubscribe) or ``CLEAN_TIME`` and
  ``CLEAN_CAMPAIGN_TITLE`` (a cleaned, undeliverable address); times ``YYYY-MM-DD HH:MM:SS``
  (UTC).
- ``brevo``: the contacts export, ``;`` or ``,`` separated: ``EMAIL``, ``EMAIL_BLACKLISTED``
  (``Yes``/``true``/``1``: an unsubscribe; other lines are skipped as rejects) and, if present,
  ``BLACKLISTED_AT`` or ``UPDATED_AT`` (ISO 8601).

A line becomes an unsubscribe from everything, an undeliverable address or a complaint,
``source`` ``import``, the actor ``import:<provider>``; the provider's reason is kept, sealed
with the person's key (it may quote the address). Each line's command id derives from the
provider and the line: importing the same file again records nothing new.
"""

import csv
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

from ledger.domain import commands
from ledger.domain.commands import Command, build
from ledger.domain.errors import InvalidFieldError
from ledger.write.importer import ImportOptions
from schemas import FeedbackType, Source, UndeliverableKind, UnsubscribeMethod

_TRUE = frozenset({"yes", "true", "1", "y"})


class Provider(StrEnum):
    SENDGRID = "sendgrid"
    MAILCHIMP = "mailchimp"
    BREVO = "brevo"


class Kind(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    SPAM_REPORT = "spam_report"


_ADDRESS = {
    Provider.SENDGRID: "email",
    Provider.MAILCHIMP: "Email Address",
    Provider.BREVO: "EMAIL",
}


def provider_rows(
    stream: IO[str], provider: Provider
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) of a provider's CSV export; a line that cannot be read is its error."""
    first = stream.readline()
    delimiter = ";" if provider is Provider.BREVO and first.count(";") > first.count(",") else ","
    reader = csv.DictReader([first], delimiter=delimiter)
    header = reader.fieldnames or []
    if _ADDRESS[provider] not in header:
        msg = f"a {provider.value} export has a {_ADDRESS[provider]!s} column"
        raise InvalidFieldError("header", msg)
    rows = csv.DictReader(stream, fieldnames=header, delimiter=delimiter)
    for row in rows:
        if None in row:
            yield rows.line_num + 1, "more fields than the header names"
            continue
        yield rows.line_num + 1, dict(row)


def _time(text: str | None, field: str) -> datetime:
    value = (text or "").strip()
    if not value:
        return datetime.now(UTC)
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise InvalidFieldError(field, "not a Unix time nor an ISO 8601 date and time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def converter(provider: Provider, kind: Kind) -> Any:
    """What a line of ``provider``'s export (of ``kind``, for SendGrid) becomes."""

    def convert(row: dict[str, Any], options: ImportOptions) -> Command:
        address = (row.get(_ADDRESS[provider]) or "").strip()
        line_kind, when, reason = _read(provider, kind, row)
        digest = hashlib.sha256(
            "\x1f".join([provider.value, *(f"{k}={v}" for k, v in sorted(row.items()))]).encode()
        ).hexdigest()
        fields: dict[str, Any] = {
            "address": address,
            "occurred_at": when,
            "command_id": f"import-{provider.value}-{digest[:40]}",
            "source": Source.IMPORT,
            "actor": f"{options.actor}:{provider.value}",
        }
        if reason:
            fields["personal"] = {"note": f"{provider.value}: {reason}"[:2000]}
        if line_kind is Kind.BOUNCE:
            status = (row.get("status") or "").strip()
            return build(
                commands.RecordUndeliverable,
                fields,
                kind=UndeliverableKind.HARD_BOUNCE,
                status=status if status[:2] in {"5.", "4."} else None,
                report_sha256=digest,
            )
        if line_kind is Kind.SPAM_REPORT:
            return build(
                commands.RecordComplaint,
                fields,
                feedback_type=FeedbackType.ABUSE,
                provider=provider.value,
                report_sha256=digest,
            )
        return build(commands.Unsubscribe, fields, method=UnsubscribeMethod.ADMIN)

    return convert


def _read(provider: Provider, kind: Kind, row: dict[str, Any]) -> tuple[Kind, datetime, str]:
    """The line's kind, when it happened, and the provider's reason."""
    if provider is Provider.SENDGRID:
        return kind, _time(row.get("created"), "created"), (row.get("reason") or "").strip()
    if provider is Provider.MAILCHIMP:
        if row.get("CLEAN_TIME"):
            reason = (row.get("CLEAN_CAMPAIGN_TITLE") or "cleaned").strip()
            return Kind.BOUNCE, _time(row.get("CLEAN_TIME"), "CLEAN_TIME"), reason
        reason = (row.get("UNSUB_REASON") or "").strip()
        return Kind.UNSUBSCRIBE, _time(row.get("UNSUB_TIME"), "UNSUB_TIME"), reason
    if (row.get("EMAIL_BLACKLISTED") or "").strip().lower() not in _TRUE:
        raise InvalidFieldError("EMAIL_BLACKLISTED", "not blocklisted: nothing to suppress")
    when = row.get("BLACKLISTED_AT") or row.get("UPDATED_AT")
    return Kind.UNSUBSCRIBE, _time(when, "BLACKLISTED_AT"), "blocklisted"
