"""Unit tests of the event contract: parsing, validation rules, upcasting and schema files."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from schemas import (
    CATALOG_SUBJECT,
    EVENT_CLASSES,
    EVIDENCE_MAX_JSON_BYTES,
    Channel,
    ConsentGranted,
    ConsentGrantedV1,
    DoubleOptIn,
    ErasedPersonalData,
    Evidence,
    InvalidEventError,
    MalformedEventError,
    ObjectionRecorded,
    PersonalData,
    PurposeRegistered,
    PurposeRegisteredV1,
    RightsRequestOpened,
    SchemaError,
    SealedPersonalData,
    Source,
    UnknownEventTypeError,
    UnsupportedSchemaVersionError,
    dump_event,
    event_to_json,
    parse_event,
    upcast_consent_granted_v1_v2,
)
from schemas.generate import JSON_DIR, main, render_schemas, stale_schemas, write_schemas

SHA = "ab" * 32
REQUEST_ID = "5a7e0c4e-6f1c-4c41-9d0e-2b7a8f3f1c11"

# Fields of each event type besides the envelope, as they arrive in JSON.
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "PurposeRegistered": {
        "purpose": "newsletter",
        "legal_basis": "consent",
        "description": "The monthly newsletter.",
        "max_age_days": 1095,
        "direct_marketing": True,
    },
    "PolicyVersionPublished": {
        "version": "2024-05",
        "text_sha256": SHA,
        "url": "https://example.com/privacy/2024-05",
        "effective_at": "2024-05-01T00:00:00Z",
        "purposes": ["newsletter", "marketing_email"],
        "requires_reconsent": False,
    },
    "PolicyChangeAnnounced": {
        "versions": ["2024-05"],
        "channel": "email",
        "announced_at": "2024-04-01T00:00:00Z",
    },
    "PolicyVersionAccepted": {"version": "2024-05", "text_sha256": SHA},
    "ConsentGranted": {
        "purpose": "newsletter",
        "channel": "email",
        "policy_version": "2024-05",
        "double_opt_in": "pending",
    },
    "ConsentConfirmed": {"purpose": "newsletter", "channel": "email"},
    "ConsentWithdrawn": {"purpose": "newsletter", "channel": "sms", "reason": "user_request"},
    "UnsubscribeClicked": {"campaign_id": "spring-sale", "method": "one_click_post"},
    "ObjectionRecorded": {"all_direct_marketing": True},
    "ProcessingRestricted": {"purposes": []},
    "RestrictionLifted": {"purposes": ["analytics_cookies"]},
    "RightsRequestOpened": {
        "request_id": REQUEST_ID,
        "right": "access",
        "received_at": "2024-06-01T10:00:00Z",
        "due_at": "2024-07-01T10:00:00Z",
    },
    "RightsRequestExtended": {
        "request_id": REQUEST_ID,
        "due_at": "2024-09-01T10:00:00Z",
        "reason": "complex request",
    },
    "RightsRequestClosed": {"request_id": REQUEST_ID, "outcome": "fulfilled"},
    "SubjectErased": {"request_id": REQUEST_ID},
    "InteractionRecorded": {"kind": "click", "purpose": "newsletter"},
    "ComplaintReceived": {
        "feedback_type": "abuse",
        "provider": "mail.example.net",
        "user_agent": "SomeGenerator/1.0",
        "arrival_date": "2005-03-08T23:29:13Z",
        "original_message_id": "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>",
        "campaign_id": "spring-sale",
        "report_sha256": "a" * 64,
    },
    "AddressUndeliverable": {
        "kind": "hard_bounce",
        "status": "5.1.1",
        "soft_bounces": None,
        "original_message_id": None,
        "report_sha256": "b" * 64,
    },
}

CATALOG_EVENTS = {"PurposeRegistered", "PolicyVersionPublished", "PolicyChangeAnnounced"}


def payload(event_type: str, /, **overrides: Any) -> dict[str, Any]:
    """A valid JSON-shaped payload of `event_type`, with `overrides` applied."""
    data: dict[str, Any] = {
        "event_id": str(uuid4()),
        "event_type": event_type,
        "schema_version": EVENT_CLASSES[event_type].model_fields["schema_version"].default,
        "subject": CATALOG_SUBJECT if event_type in CATALOG_EVENTS else "user:42",
        "occurred_at": "2024-06-01T10:00:00Z",
        "recorded_at": "2024-06-01T10:00:01.250000+00:00",
        "command_id": str(uuid4()),
        "source": "web_form",
        "actor": "signup-form",
        **EVENT_FIELDS[event_type],
    }
    data.update(overrides)
    return data


def invalid(data: dict[str, Any] | str) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(data)
    return caught.value


def test_samples_cover_every_event_type() -> None:
    assert EVENT_FIELDS.keys() == EVENT_CLASSES.keys()


def test_event_classes_are_keyed_by_their_event_type() -> None:
    for name, cls in EVENT_CLASSES.items():
        assert cls.__name__ == name
        assert cls.model_fields["event_type"].default == name


@pytest.mark.parametrize("event_type", sorted(EVENT_FIELDS))
def test_every_event_parses_to_its_class(event_type: str) -> None:
    data = payload(event_type)

    event = parse_event(json.dumps(data))

    assert type(event) is EVENT_CLASSES[event_type]
    assert event.event_id == UUID(data["event_id"])
    assert parse_event(dump_event(event)) == event


def test_json_bytes_are_compact_with_sorted_keys() -> None:
    event = parse_event(payload("ConsentConfirmed"))

    raw = event_to_json(event)

    assert raw == json.dumps(dump_event(event), sort_keys=True, separators=(",", ":")).encode()
    assert parse_event(raw) == event


def test_extra_field_is_rejected() -> None:
    error = invalid(payload("ConsentConfirmed", colour="blue"))

    assert error.field == "colour"
    assert error.event_type == "ConsentConfirmed"


def test_extra_field_in_evidence_is_rejected() -> None:
    error = invalid(payload("ConsentConfirmed", evidence={"form_id": "f1", "ip": "1.2.3.4"}))

    assert error.field == "evidence.ip"


@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_naive_datetime_is_rejected_naming_the_field(field: str) -> None:
    error = invalid(payload("ConsentConfirmed", **{field: "2024-06-01T10:00:00"}))

    assert error.field == field
    assert field in str(error)
    assert "naive" in str(error)


def test_naive_datetime_is_rejected_in_python_too() -> None:
    with pytest.raises(ValidationError, match="naive"):
        ConsentGranted(
            event_id=uuid4(),
            subject="user:1",
            occurred_at=datetime(2024, 6, 1, 10, 0),  # noqa: DTZ001 - the point of the test
            recorded_at=datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
            command_id="c1",
            source=Source.API,
            actor="api",
            purpose="newsletter",
            channel=Channel.EMAIL,
            policy_version="1",
            double_opt_in=DoubleOptIn.CONFIRMED,
        )


def test_datetimes_are_converted_to_utc() -> None:
    event = parse_event(payload("ConsentConfirmed", occurred_at="2024-06-01T12:00:00+02:00"))

    assert event.occurred_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert dump_event(event)["occurred_at"] == "2024-06-01T10:00:00Z"


def test_datetime_that_overflows_when_converted_is_an_invalid_event() -> None:
    error = invalid(payload("ConsentConfirmed", occurred_at="0001-01-01T00:00:00+01:00"))

    assert error.field == "occurred_at"


def test_events_are_frozen() -> None:
    event = parse_event(payload("ConsentConfirmed"))

    with pytest.raises(ValidationError, match="frozen"):
        event.actor = "someone else"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "line\nbreak"),
        ("actor", "zero\u200bwidth"),
        ("actor", ""),
        ("actor", "x" * 201),
        ("command_id", "has space"),
        ("command_id", "x" * 129),
        ("subject", "user 42"),
        ("event_id", "not-a-uuid"),
        ("source", "carrier_pigeon"),
        ("position", 0),
    ],
)
def test_envelope_fields_are_constrained(field: str, value: object) -> None:
    assert invalid(payload("ConsentConfirmed", **{field: value})).field == field


@pytest.mark.parametrize("purpose", ["Newsletter", "n", "1abc", "news-letter", "a" * 65])
def test_purpose_must_be_a_slug(purpose: str) -> None:
    assert invalid(payload("ConsentConfirmed", purpose=purpose)).field == "purpose"


def test_catalog_events_use_the_catalog_subject() -> None:
    with pytest.raises(InvalidEventError, match="catalog event"):
        parse_event(payload("PurposeRegistered", subject="user:42"))


def test_people_cannot_use_the_catalog_subject() -> None:
    with pytest.raises(InvalidEventError, match="reserved"):
        parse_event(payload("ConsentConfirmed", subject=CATALOG_SUBJECT))


def test_consent_granted_v1_is_read_as_v2_single_opt_in() -> None:
    stored = ConsentGrantedV1(
        event_id=uuid4(),
        subject="user:42",
        occurred_at=datetime(2021, 3, 1, tzinfo=UTC),
        recorded_at=datetime(2021, 3, 1, tzinfo=UTC),
        command_id="legacy-1",
        source=Source.IMPORT,
        actor="import",
        purpose="newsletter",
        channel=Channel.EMAIL,
        policy_version="2021-01",
        position=7,
    )
    raw = event_to_json(stored)
    assert json.loads(raw)["schema_version"] == 1

    event = parse_event(raw)

    assert isinstance(event, ConsentGranted)
    assert event.schema_version == 2
    assert event.double_opt_in is DoubleOptIn.NOT_APPLICABLE
    assert dump_event(event) == dump_event(stored) | {
        "schema_version": 2,
        "double_opt_in": "not_applicable",
    }


def test_purpose_registered_v1_is_read_as_v2_without_words_per_language() -> None:
    stored = PurposeRegisteredV1(
        event_id=uuid4(),
        subject=CATALOG_SUBJECT,
        occurred_at=datetime(2021, 3, 1, tzinfo=UTC),
        recorded_at=datetime(2021, 3, 1, tzinfo=UTC),
        command_id="legacy-2",
        source=Source.API,
        actor="api",
        purpose="newsletter",
        legal_basis="consent",
        description="The weekly letter",
        direct_marketing=True,
    )
    event = parse_event(event_to_json(stored))
    assert isinstance(event, PurposeRegistered)
    assert (event.schema_version, event.wording) == (2, {})
    assert dump_event(event) == dump_event(stored) | {"schema_version": 2, "wording": {}}


def test_a_purpose_carries_its_words_per_language_through_json() -> None:
    data = payload(
        "PurposeRegistered",
        subject=CATALOG_SUBJECT,
        wording={"fr": {"label": "La lettre", "description": "Chaque jeudi."}},
    )
    event = parse_event(data)
    assert isinstance(event, PurposeRegistered)
    assert event.wording["fr"].label == "La lettre"
    assert parse_event(event_to_json(event)) == event
    with pytest.raises(InvalidEventError):
        parse_event(data | {"wording": {"French": {"label": "x", "description": "y"}}})


def test_upcaster_leaves_its_input_alone() -> None:
    data = payload("ConsentGranted", schema_version=1)
    del data["double_opt_in"]
    before = dict(data)

    upcast = upcast_consent_granted_v1_v2(data)

    assert data == before
    assert ConsentGrantedV1.model_validate(data).schema_version == 1
    assert ConsentGranted.model_validate(upcast).double_opt_in is DoubleOptIn.NOT_APPLICABLE


def test_unknown_event_type_raises_a_typed_error() -> None:
    data = payload("ConsentConfirmed", event_type="ConsentTeleported")

    with pytest.raises(UnknownEventTypeError) as caught:
        parse_event(data)

    assert caught.value.event_type == "ConsentTeleported"
    assert caught.value.event_id == data["event_id"]
    assert isinstance(caught.value, SchemaError)


def test_missing_event_type_is_unknown() -> None:
    data = payload("ConsentConfirmed")
    del data["event_type"]

    with pytest.raises(UnknownEventTypeError):
        parse_event(data)


@pytest.mark.parametrize("version", [3, 0, -1])
def test_unsupported_schema_version_raises_a_typed_error(version: int) -> None:
    data = payload("ConsentGranted", schema_version=version)

    with pytest.raises(UnsupportedSchemaVersionError) as caught:
        parse_event(data)

    assert caught.value.event_type == "ConsentGranted"
    assert caught.value.schema_version == version
    assert caught.value.supported == 2
    assert caught.value.event_id == data["event_id"]


def test_non_integer_schema_version_is_an_invalid_event() -> None:
    assert invalid(payload("ConsentGranted", schema_version="2")).field == "schema_version"


@pytest.mark.parametrize("raw", [b"\xff\xfe{", "{not json", "[1, 2]", b"null"])
def test_payload_that_is_not_a_json_object_is_malformed(raw: bytes | str) -> None:
    with pytest.raises(MalformedEventError):
        parse_event(raw)


def test_error_keeps_only_a_well_formed_event_id() -> None:
    error = invalid(payload("ConsentConfirmed", event_id="alice@example.com", actor=""))

    assert error.event_id is None
    assert "alice" not in str(error)


def test_invalid_event_error_never_quotes_personal_input() -> None:
    address = "not an address@example.com"
    error = invalid(payload("ConsentConfirmed", personal={"kind": "clear", "address": address}))

    assert error.field == "personal.clear.address"
    assert address not in str(error)
    assert all("input" not in detail for detail in error.errors)
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize(
    ("personal", "expected"),
    [
        ({"kind": "clear", "address": "Alice@Example.com"}, PersonalData),
        (
            {"kind": "sealed", "key_id": "k1", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "Zm9v"},
            SealedPersonalData,
        ),
        ({"kind": "erased"}, ErasedPersonalData),
    ],
)
def test_personal_data_is_told_apart_by_kind(personal: dict[str, Any], expected: type) -> None:
    event = parse_event(payload("ConsentConfirmed", personal=personal))

    assert type(event.personal) is expected
    assert dump_event(event)["personal"]["kind"] == personal["kind"]


def test_lone_surrogate_in_free_text_is_rejected() -> None:
    # JSON may escape a lone surrogate, which UTF-8 cannot encode: if such an event were accepted,
    # it could never be written back.
    raw = json.dumps(payload("ConsentConfirmed", personal={"kind": "clear", "note": "\ud800"}))
    assert "\\ud800" in raw

    assert invalid(raw).field == "personal.clear.note"


@pytest.mark.parametrize(
    ("personal", "field"),
    [
        ({"kind": "plain", "address": "a@example.com"}, "personal"),
        ({"address": "a@example.com"}, "personal"),
        ({"kind": "erased", "address": "a@example.com"}, "personal.erased.address"),
        ({"kind": "sealed", "key_id": "k1", "nonce": "AAAA"}, "personal.sealed.ciphertext"),
        (
            {"kind": "sealed", "key_id": "k1", "nonce": "AA=A", "ciphertext": "Zm9v"},
            "personal.sealed.nonce",
        ),
        ({"kind": "clear", "ip": "300.1.1.1"}, "personal.clear.ip"),
        ({"kind": "clear", "address": "a@" + "b" * 320 + ".fr"}, "personal.clear.address"),
        ({"kind": "clear"}, "personal.clear"),
    ],
)
def test_personal_data_is_validated(personal: dict[str, Any], field: str) -> None:
    assert invalid(payload("ConsentConfirmed", personal=personal)).field == field


def test_ip_address_is_stored_in_canonical_form() -> None:
    assert PersonalData(ip="2001:DB8:0:0:0:0:0:1").ip == "2001:db8::1"


def test_evidence_over_the_size_limit_is_rejected() -> None:
    Evidence(form_id="f" * (EVIDENCE_MAX_JSON_BYTES - 200))

    with pytest.raises(ValidationError, match=f"over the limit of {EVIDENCE_MAX_JSON_BYTES}"):
        Evidence(form_id="f" * EVIDENCE_MAX_JSON_BYTES)


@pytest.mark.parametrize(
    "fields",
    [
        {"purpose": "newsletter"},
        {"all_direct_marketing": True},
        {"purpose": "newsletter", "all_direct_marketing": False},
    ],
)
def test_objection_names_one_scope(fields: dict[str, Any]) -> None:
    data = payload("ObjectionRecorded")
    del data["all_direct_marketing"]

    event = parse_event(data | fields)

    assert isinstance(event, ObjectionRecorded)


@pytest.mark.parametrize(
    "fields",
    [{}, {"all_direct_marketing": False}, {"purpose": "newsletter", "all_direct_marketing": True}],
)
def test_objection_without_exactly_one_scope_is_rejected(fields: dict[str, Any]) -> None:
    data = payload("ObjectionRecorded")
    del data["all_direct_marketing"]

    error = invalid(data | fields)

    assert error.field is None
    assert "either a purpose or all_direct_marketing" in str(error)


@pytest.mark.parametrize("due_at", ["2024-06-01T10:00:00Z", "2024-05-01T10:00:00Z"])
def test_rights_request_due_after_it_was_received(due_at: str) -> None:
    with pytest.raises(InvalidEventError, match="due_at must be after received_at"):
        parse_event(payload("RightsRequestOpened", due_at=due_at))


def test_deadline_is_compared_as_an_instant_across_zones() -> None:
    event = parse_event(
        payload(
            "RightsRequestOpened",
            received_at="2024-06-01T12:00:00+02:00",
            due_at="2024-06-01T11:00:00+00:00",
        )
    )

    assert isinstance(event, RightsRequestOpened)
    assert event.received_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def test_committed_json_schemas_are_current() -> None:
    assert stale_schemas() == []


def test_check_names_a_stale_schema_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "json"
    write_schemas(directory)
    assert main(["--check"], directory=directory) == 0

    stale = directory / "ConsentGranted.v2.json"
    schema = json.loads(stale.read_text(encoding="utf-8"))
    del schema["properties"]["double_opt_in"]
    stale.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (directory / "Event.json").unlink()
    (directory / "Forgotten.v1.json").write_text("{}\n", encoding="utf-8")

    assert main(["--check"], directory=directory) == 1
    assert stale_schemas(directory) == ["ConsentGranted.v2.json", "Event.json", "Forgotten.v1.json"]
    assert "ConsentGranted.v2.json" in capsys.readouterr().err


def test_generation_restores_the_committed_files(tmp_path: Path) -> None:
    directory = tmp_path / "json"
    shutil.copytree(JSON_DIR, directory)
    (directory / "SubjectErased.v1.json").write_text("{}\n", encoding="utf-8")
    (directory / "Forgotten.v1.json").write_text("{}\n", encoding="utf-8")

    assert main([], directory=directory) == 0

    assert stale_schemas(directory) == []
    assert {p.name: p.read_text(encoding="utf-8") for p in directory.iterdir()} == render_schemas()


def test_schema_files_cover_every_event_and_the_old_consent_version() -> None:
    names = set(render_schemas())

    assert {
        f"{name}.v{cls.model_fields['schema_version'].default}.json"
        for name, cls in EVENT_CLASSES.items()
    } <= names
    assert {"ConsentGranted.v1.json", "Event.json"} <= names
