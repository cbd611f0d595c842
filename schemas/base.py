"""The frozen base model and the constrained field types shared by every schema."""

import json
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints

__all__ = [
    "SUBJECT_PATTERN",
    "CommandId",
    "Model",
    "PrintableText",
    "Sha256Hex",
    "ShortText",
    "Slug",
    "SubjectId",
    "UtcDatetime",
    "VersionLabel",
    "parse_utc_datetime",
    "quoted",
]


class Model(BaseModel):
    """A frozen model that rejects unknown fields."""

    # The ledger writes every key, null or not, so the published JSON Schemas list them all as
    # required: consumers in other languages can rely on their presence. Field docstrings become
    # descriptions there, so the contract documents itself.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        use_attribute_docstrings=True,
    )


def quoted(value: object) -> str:
    """``value`` as it is on the wire, for a message: JSON (a string in double quotes; an
    enum's value; a datetime in ISO 8601), never a Python repr such as ``<Channel.EMAIL: ...>``."""
    if isinstance(value, Enum):
        value = value.value
    elif isinstance(value, datetime):
        value = value.isoformat()
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def _to_utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("datetime has no UTC offset; naive datetimes are ambiguous")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime is out of range once converted to UTC") from None


def _check_printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("text must not contain control, format or line-separator characters")
    return value


_WHITESPACE = re.compile(r"\s")
r"""Unicode whitespace: for a str pattern, ``\s`` matches what ``str.isspace`` accepts."""


def _check_no_whitespace(value: str) -> str:
    # A regex search, not a per-character loop: this runs on every command id, on the hot path.
    if _WHITESPACE.search(value):
        raise ValueError("text must not contain whitespace")
    return value


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
"""A machine name such as a purpose: lowercase letter, then 1 to 63 of ``[a-z0-9_]``."""

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lowercase hexadecimal digits."""


def parse_utc_datetime(text: str) -> datetime:
    """The one reading of a time given as text, by the API and the CLI alike: ISO 8601 with
    its zone (``2026-03-01T12:00:00Z``, ``...12:00:00.250+01:00``), fractional seconds allowed,
    in UTC. A bare number is refused: it would be read as seconds since 1970, silently."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # fromisoformat's own message repeats the text.
        raise ValueError(
            "not an ISO 8601 date and time with its zone, e.g. 2026-03-01T12:00:00Z"
        ) from None
    return _to_utc(parsed)


def _from_text(value: object) -> object:
    if isinstance(value, str):
        return parse_utc_datetime(value)
    if not isinstance(value, datetime):
        raise ValueError("a date and time is an ISO 8601 string with its zone, not a number")
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_from_text), AfterValidator(_to_utc)]
"""An aware datetime, converted to UTC: an ISO 8601 string with its zone (`parse_utc_datetime`)
or a datetime; naive datetimes and numbers are rejected."""

SUBJECT_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
SubjectId = Annotated[str, StringConstraints(pattern=SUBJECT_PATTERN)]
"""The opaque key of a person (or the catalog): 1 to 128 of ``[A-Za-z0-9._:@-]``."""

PrintableText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_check_printable)]
"""At least one printable character (``str.isprintable``); bound its length where it is used."""

ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_check_printable)
]
"""1 to 200 printable characters."""

CommandId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_check_printable),
    AfterValidator(_check_no_whitespace),
]
"""The caller's idempotency key (often a UUID): 1 to 128 printable characters, no whitespace."""

VersionLabel = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
"""A version label such as ``2024-05`` or ``v3.1``: 1 to 64 of ``[A-Za-z0-9._-]``."""
