"""Errors raised when a payload cannot be read as an event.

    ValueError
    └── SchemaError
        ├── MalformedEventError
        ├── UnknownEventTypeError
        ├── UnsupportedSchemaVersionError
        └── InvalidEventError

These errors end up in logs and dead-letter records, so they leave out the values of the
payload's fields (pydantic's ``input``), which may be personal data; they keep the event id only
when it is a well-formed UUID.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.base import quoted

_OBJECT_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type", "dataclass_type"})
_VALIDATOR_PREFIXES = ("Value error, ", "Assertion failed, ")


def error_reason(detail: Mapping[str, Any]) -> str:
    """Pydantic's message for one error in wire terms: no Python class or exception names.

    pydantic says "instance of PersonalFields" of an object it wanted and prefixes what a
    validator raised with "Value error, "; a caller sent JSON and needs neither.
    """
    if detail.get("type") in _OBJECT_TYPES:
        return "Input should be a JSON object"
    message = str(detail.get("msg", "invalid"))
    for prefix in _VALIDATOR_PREFIXES:
        message = message.removeprefix(prefix)
    return message


class SchemaError(ValueError):
    """A payload is not a readable event."""

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


class MalformedEventError(SchemaError):
    """The payload is not a JSON object."""


class UnknownEventTypeError(SchemaError):
    """The payload's event_type names no known event."""

    def __init__(self, event_type: object, *, event_id: str | None = None) -> None:
        super().__init__(
            f"unknown event type {quoted(event_type)} (event {event_id})", event_id=event_id
        )
        self.event_type = event_type


class UnsupportedSchemaVersionError(SchemaError):
    """The payload's schema_version is one this code cannot read (newer, or never released)."""

    def __init__(
        self, event_type: str, schema_version: int, supported: int, *, event_id: str | None = None
    ) -> None:
        super().__init__(
            f"{event_type} schema version {schema_version} is not supported "
            f"(this code reads up to version {supported}) (event {event_id})",
            event_id=event_id,
        )
        self.event_type = event_type
        self.schema_version = schema_version
        self.supported = supported


class InvalidEventError(SchemaError):
    """The payload breaks its event's schema.

    `field` is the dotted path of the first offending field, or None when the event as a whole
    breaks a rule; `errors` are pydantic's error details (type, loc, msg) without input values.
    """

    def __init__(
        self,
        event_type: str,
        errors: Sequence[Mapping[str, Any]],
        *,
        event_id: str | None = None,
    ) -> None:
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        where = f" at {field}" if field else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"invalid {event_type} (event {event_id}){where}: {error_reason(first)}{more}",
            event_id=event_id,
        )
        self.event_type = event_type
        self.field = field
        self.errors = tuple(errors)
