"""The event contract of the consent ledger: pydantic models, registry and JSON Schemas."""

from schemas import base, enums, events
from schemas.base import *  # noqa: F403
from schemas.enums import *  # noqa: F403
from schemas.errors import (
    InvalidEventError,
    MalformedEventError,
    SchemaError,
    UnknownEventTypeError,
    UnsupportedSchemaVersionError,
    error_reason,
)
from schemas.events import *  # noqa: F403
from schemas.personal import (
    EVIDENCE_MAX_JSON_BYTES,
    ErasedPersonalData,
    Evidence,
    Personal,
    PersonalData,
    SealedPersonalData,
)
from schemas.registry import dump_event, event_to_json, parse_event
from schemas.topics import DEAD_LETTER_TOPIC, EVENTS_TOPIC, dead_letter_topic_for

__all__ = [
    "DEAD_LETTER_TOPIC",
    "EVENTS_TOPIC",
    "EVIDENCE_MAX_JSON_BYTES",
    "ErasedPersonalData",
    "Evidence",
    "InvalidEventError",
    "MalformedEventError",
    "Personal",
    "PersonalData",
    "SchemaError",
    "SealedPersonalData",
    "UnknownEventTypeError",
    "UnsupportedSchemaVersionError",
    "dead_letter_topic_for",
    "dump_event",
    "error_reason",
    "event_to_json",
    "parse_event",
]
__all__ += base.__all__
__all__ += enums.__all__
__all__ += events.__all__
