"""Reading events from JSON (upcasting old schema versions) and writing them back."""

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from schemas.errors import (
    InvalidEventError,
    MalformedEventError,
    UnknownEventTypeError,
    UnsupportedSchemaVersionError,
)
from schemas.events import (
    EVENT_CLASSES,
    Event,
    EventBase,
    upcast_consent_granted_v1_v2,
    upcast_policy_version_published_v1_v2,
    upcast_purpose_registered_v1_v2,
)

Upcaster = Callable[[Mapping[str, Any]], dict[str, Any]]

_UPCASTERS: Mapping[tuple[str, int], Upcaster] = MappingProxyType(
    {
        ("ConsentGranted", 1): upcast_consent_granted_v1_v2,
        ("PurposeRegistered", 1): upcast_purpose_registered_v1_v2,
        ("PolicyVersionPublished", 1): upcast_policy_version_published_v1_v2,
    }
)
"""The function that lifts a payload of ``(event_type, schema_version)`` by one version."""

_EVENT_ADAPTER: TypeAdapter[EventBase] = TypeAdapter(Event)


def _current_version(cls: type[EventBase]) -> int:
    version: int = cls.model_fields["schema_version"].default
    return version


def _load(data: Mapping[str, Any] | bytes | str) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEventError(f"event payload is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise MalformedEventError("event payload is not a JSON object")
    return payload


def _event_id(payload: Mapping[str, Any]) -> str | None:
    # Errors carry the id to find the event again, but only a well-formed one: an arbitrary string
    # in its place could hold anything, personal data included.
    raw = payload.get("event_id")
    try:
        return str(raw if isinstance(raw, UUID) else UUID(str(raw)))
    except ValueError:
        return None


def parse_event(data: Mapping[str, Any] | bytes | str) -> EventBase:
    """Read an event from JSON (bytes or text) or from a decoded mapping.

    Payloads of an older schema version are upcast to the current one first.

    Raises:
        MalformedEventError: `data` is not a JSON object.
        UnknownEventTypeError: no event has this event_type.
        UnsupportedSchemaVersionError: schema_version is newer than this code, or was never
            released.
        InvalidEventError: the payload breaks its event's schema.
    """
    payload = _load(data)
    event_id = _event_id(payload)
    event_type = payload.get("event_type")
    if not isinstance(event_type, str) or event_type not in EVENT_CLASSES:
        raise UnknownEventTypeError(event_type, event_id=event_id)

    current = _current_version(EVENT_CLASSES[event_type])
    version = payload.get("schema_version")
    # A wrong or missing version is left to validation, which reports it against the field.
    if isinstance(version, int) and not isinstance(version, bool):
        while version < current:
            upcast = _UPCASTERS.get((event_type, version))
            if upcast is None:
                raise UnsupportedSchemaVersionError(event_type, version, current, event_id=event_id)
            payload = upcast(payload)
            version = payload["schema_version"]
        if version > current:
            raise UnsupportedSchemaVersionError(event_type, version, current, event_id=event_id)

    try:
        return _EVENT_ADAPTER.validate_python(payload)
    except ValidationError as error:
        # The first element of each location is the union's tag, i.e. the event type itself. The
        # original error is not chained: its text quotes input values, which may be personal.
        details = [
            {**detail, "loc": detail["loc"][1:]}
            for detail in error.errors(
                include_url=False, include_context=False, include_input=False
            )
        ]
        raise InvalidEventError(event_type, details, event_id=event_id) from None


def dump_event(event: EventBase) -> dict[str, Any]:
    """Return the event as JSON-compatible data: what `parse_event` reads back."""
    return event.model_dump(mode="json")


def event_to_json(event: EventBase) -> bytes:
    """Return the event as compact UTF-8 JSON with sorted keys: the same event, the same bytes."""
    return json.dumps(
        dump_event(event), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()
