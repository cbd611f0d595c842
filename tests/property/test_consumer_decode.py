"""The consumer reads every record as the event registry does, on its fast path or not."""

import json
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.runner import UndecodableRecordError, decode
from schemas import SchemaError, event_to_json, parse_event
from schemas.record_auth import MAX_POSITION
from tests.property.test_schema_properties import EVENTS
from tests.topics import TOPIC_KEYS

TOPIC = "consent.events.v1"


class Record(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def signed(key: bytes | None, value: bytes | None) -> Record:
    """A record as the relay authenticates it (the MAC covers key and value)."""
    mac = TOPIC_KEYS.mac(topic=TOPIC, key=key or b"", headers=[], value=value or b"")
    return Record(key, value, [("mac", mac)])


def _registry(record: Record) -> str:
    """What the consumer made of a record through `parse_event` alone: the event's JSON, or why
    the record is refused."""
    assert record.value is not None
    try:
        event = parse_event(record.value)
    except SchemaError as error:
        return f"{type(error).__name__}: {error}"
    if event.position is None:
        return "event has no position"
    if not 0 < event.position <= MAX_POSITION:
        return "position out of range: not between 1 and 2^63 - 1"
    if record.key != event.subject.encode():
        return "record key is not the event's subject"
    return event_to_json(event).decode()


def _consumer(record: Record) -> str:
    try:
        event, position = decode(record, topic=TOPIC, keys=TOPIC_KEYS)
    except UndecodableRecordError as error:
        return error.reason
    assert position == event.position
    return event_to_json(event).decode()


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@given(data=st.data(), position=st.integers(1, 2**63 - 1))
def test_a_valid_event_reads_the_same(event_type: str, data: st.DataObject, position: int) -> None:
    event = data.draw(EVENTS[event_type]).model_copy(update={"position": position})
    record = signed(event.subject.encode(), event_to_json(event))
    assert _consumer(record) == _registry(record)


def _altered(payload: dict[str, Any], field: str, value: Any) -> bytes:
    return json.dumps({**payload, field: value}).encode()


@given(
    data=st.data(),
    field=st.sampled_from(
        ["schema_version", "event_type", "occurred_at", "purpose", "subject", "position", "actor"]
    ),
    value=st.none()
    | st.integers(-2, 3)
    | st.sampled_from(["", "x", "ConsentGranted", "2026-01-01", "\ud800", "a\u0000b"]),
)
def test_an_altered_event_reads_the_same_or_fails_the_same(
    data: st.DataObject, field: str, value: Any
) -> None:
    event = data.draw(EVENTS["ConsentGranted"]).model_copy(update={"position": 7})
    payload = json.loads(event_to_json(event))
    record = signed(event.subject.encode(), _altered(payload, field, value))
    assert _consumer(record) == _registry(record)


def test_an_old_version_is_upcast_as_the_registry_does() -> None:
    payload = json.loads(
        event_to_json(
            parse_event(
                {
                    "event_id": "00000000-0000-0000-0000-000000000001",
                    "event_type": "ConsentGranted",
                    "schema_version": 1,
                    "subject": "ann",
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "recorded_at": "2026-01-01T00:00:00Z",
                    "command_id": "c-1",
                    "source": "api",
                    "actor": "api",
                    "purpose": "newsletter",
                    "channel": "email",
                    "policy_version": "v1",
                    "position": 3,
                }
            )
        )
    )
    old = {k: v for k, v in payload.items() if k != "double_opt_in"} | {"schema_version": 1}
    value = json.dumps(old).encode()
    event, position = decode(signed(b"ann", value), topic=TOPIC, keys=TOPIC_KEYS)
    assert (event, position) == (parse_event(value), 3)
    assert event.schema_version == 2


def test_records_without_key_or_value_or_with_another_key_are_refused() -> None:
    value = b'{"event_type": "Nope"}'
    for record, reason in (
        (signed(None, value), "record has no key"),
        (signed(b"ann", None), "record has no value"),
        (signed(b"ann", b"{not json"), _registry(signed(b"ann", b"{not json"))),
    ):
        with pytest.raises(UndecodableRecordError) as refused:
            decode(record, topic=TOPIC, keys=TOPIC_KEYS)
        assert refused.value.reason == reason


def test_records_not_authenticated_by_a_topic_key_are_refused() -> None:
    value = event_to_json(
        parse_event(
            {
                "event_id": "00000000-0000-0000-0000-000000000002",
                "event_type": "ConsentGranted",
                "subject": "ann",
                "occurred_at": "2026-01-01T00:00:00Z",
                "recorded_at": "2026-01-01T00:00:00Z",
                "command_id": "c-2",
                "source": "api",
                "actor": "api",
                "purpose": "newsletter",
                "channel": "email",
                "policy_version": "v1",
                "double_opt_in": "not_applicable",
                "position": 3,
            }
        )
    )
    genuine = signed(b"ann", value)
    assert decode(genuine, topic=TOPIC, keys=TOPIC_KEYS)[1] == 3
    (mac,) = genuine.headers
    other = mac[1].split(b":")[0] + b":" + b"0" * 64
    for record, why in (
        (Record(b"ann", value, []), "no mac header"),
        (Record(b"ann", value.replace(b'"position":3', b'"position":4'), [mac]), "forged"),
        (Record(b"ann", value, [("mac", other)]), "forged"),
        (Record(b"ann", value, [("mac", b"k9:" + b"0" * 64)]), "unknown topic key"),
        (Record(b"ann", value, [mac, ("position", b"3")]), "forged"),
    ):
        with pytest.raises(UndecodableRecordError) as refused:
            decode(record, topic=TOPIC, keys=TOPIC_KEYS)
        assert why in refused.value.reason
    with pytest.raises(UndecodableRecordError):
        decode(genuine, topic="another.topic.v1", keys=TOPIC_KEYS)
