"""Property tests of the event contract: every valid event survives serialisation unchanged."""

import base64
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    CATALOG_SUBJECT,
    EVENT_CLASSES,
    AddressUndeliverable,
    AnnouncementChannel,
    Channel,
    ComplaintReceived,
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    DoubleOptIn,
    ErasedPersonalData,
    EventBase,
    Evidence,
    FeedbackType,
    InteractionKind,
    InteractionRecorded,
    LegalBasis,
    ObjectionRecorded,
    PersonalData,
    PolicyChangeAnnounced,
    PolicyVersionAccepted,
    PolicyVersionPublished,
    ProcessingRestricted,
    PurposeRegistered,
    RestrictionLifted,
    Right,
    RightsOutcome,
    RightsRequestClosed,
    RightsRequestExtended,
    RightsRequestOpened,
    SealedPersonalData,
    Source,
    SubjectErased,
    UndeliverableKind,
    UnsubscribeClicked,
    UnsubscribeMethod,
    WithdrawalReason,
    event_to_json,
    parse_event,
    policy_text_sha256,
)

E = TypeVar("E", bound=EventBase)

slugs = st.from_regex(r"[a-z][a-z0-9_]{1,63}", fullmatch=True)
sha256s = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
version_labels = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
subjects = st.from_regex(r"[A-Za-z0-9._:@-]{1,128}", fullmatch=True).filter(
    lambda subject: subject != CATALOG_SUBJECT
)
# What `str.isprintable` accepts: no control, format, separator or unassigned character, except
# the ASCII space.
_visible_chars = st.characters(exclude_categories=("C", "Z"))
short_texts = st.text(_visible_chars | st.just(" "), min_size=1, max_size=200)
command_ids = st.text(_visible_chars, min_size=1, max_size=128)
free_texts = st.text(min_size=1, max_size=300)
_base64 = st.binary(min_size=1, max_size=300).map(lambda raw: base64.b64encode(raw).decode())

# Offsets up to 14 hours either way: every value must come back as the same instant, in UTC.
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Hypothesis takes naive bounds and attaches a zone drawn from `timezones` to each value.
aware_datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=_offsets,
)

evidence = st.builds(
    Evidence,
    consent_text_sha256=st.none() | sha256s,
    form_id=st.none() | short_texts,
    form_version=st.none() | version_labels,
    double_opt_in_token_id=st.none() | short_texts,
    artefact_sha256=st.none() | sha256s,
)


@st.composite
def clear_personal(draw: st.DrawFn) -> PersonalData:
    fields = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "address": st.emails().filter(lambda address: len(address) <= 254),
                "ip": st.ip_addresses().map(str),
                "user_agent": free_texts,
                "page_url": free_texts,
                "note": free_texts,
            },
        ).filter(bool)
    )
    return PersonalData(**fields)


personal = st.one_of(
    clear_personal(),
    st.builds(SealedPersonalData, key_id=short_texts, nonce=_base64, ciphertext=_base64),
    st.just(ErasedPersonalData()),
)


policy_texts = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300)


def events_of(cls: type[E], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[E]:
    """Valid events of `cls`, with a random envelope and `fields` drawn as given."""
    return st.builds(
        cls,
        event_id=st.uuids(),
        subject=st.just(CATALOG_SUBJECT) if cls.catalog else subjects,
        occurred_at=aware_datetimes,
        recorded_at=aware_datetimes,
        command_id=command_ids,
        source=st.sampled_from(Source),
        actor=short_texts,
        evidence=st.none() | evidence,
        personal=st.none() | personal,
        position=st.none() | st.integers(min_value=1, max_value=2**63 - 1),
        **fields,
    )


@st.composite
def rights_requests_opened(draw: st.DrawFn) -> RightsRequestOpened:
    received_at = draw(aware_datetimes)
    delay = draw(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=92)))
    return draw(
        events_of(
            RightsRequestOpened,
            request_id=st.uuids(),
            right=st.sampled_from(Right),
            received_at=st.just(received_at),
            due_at=st.just(received_at + delay),
        )
    )


EVENTS: dict[str, st.SearchStrategy[EventBase]] = {
    "PurposeRegistered": events_of(
        PurposeRegistered,
        purpose=slugs,
        legal_basis=st.sampled_from(LegalBasis),
        description=st.text(min_size=1, max_size=1000),
        max_age_days=st.none() | st.integers(min_value=1, max_value=100_000),
        direct_marketing=st.booleans(),
    ),
    "PolicyVersionPublished": st.one_of(
        st.none().map(lambda _: (None, None)),
        policy_texts.map(lambda text: (text, policy_text_sha256(text))),
    ).flatmap(
        lambda kept: events_of(
            PolicyVersionPublished,
            version=version_labels,
            text_sha256=sha256s if kept[0] is None else st.just(kept[1]),
            text=st.just(kept[0]),
            url=st.none() | st.from_regex(r"https?://[!-~]{1,200}", fullmatch=True),
            effective_at=aware_datetimes,
            purposes=st.lists(slugs, max_size=5).map(tuple),
            requires_reconsent=st.booleans(),
        )
    ),
    "PolicyChangeAnnounced": events_of(
        PolicyChangeAnnounced,
        versions=st.lists(version_labels, min_size=1, max_size=3).map(tuple),
        channel=st.sampled_from(AnnouncementChannel),
        announced_at=aware_datetimes,
    ),
    "PolicyVersionAccepted": events_of(
        PolicyVersionAccepted, version=version_labels, text_sha256=sha256s
    ),
    "ConsentGranted": events_of(
        ConsentGranted,
        purpose=slugs,
        channel=st.sampled_from(Channel),
        policy_version=version_labels,
        double_opt_in=st.sampled_from(DoubleOptIn),
    ),
    "ConsentConfirmed": events_of(
        ConsentConfirmed, purpose=slugs, channel=st.sampled_from(Channel)
    ),
    "ConsentWithdrawn": events_of(
        ConsentWithdrawn,
        purpose=slugs,
        channel=st.sampled_from(Channel),
        reason=st.sampled_from(WithdrawalReason),
    ),
    "UnsubscribeClicked": events_of(
        UnsubscribeClicked,
        purpose=st.none() | slugs,
        list_id=st.none() | short_texts,
        campaign_id=st.none() | short_texts,
        message_id=st.none() | short_texts,
        method=st.sampled_from(UnsubscribeMethod),
    ),
    "ObjectionRecorded": events_of(
        ObjectionRecorded, purpose=slugs, all_direct_marketing=st.just(False)
    )
    | events_of(ObjectionRecorded, purpose=st.none(), all_direct_marketing=st.just(True)),
    "ProcessingRestricted": events_of(
        ProcessingRestricted, purposes=st.lists(slugs, max_size=5).map(tuple)
    ),
    "RestrictionLifted": events_of(
        RestrictionLifted, purposes=st.lists(slugs, max_size=5).map(tuple)
    ),
    "RightsRequestOpened": rights_requests_opened(),
    "RightsRequestExtended": events_of(
        RightsRequestExtended, request_id=st.uuids(), due_at=aware_datetimes, reason=short_texts
    ),
    "RightsRequestClosed": events_of(
        RightsRequestClosed, request_id=st.uuids(), outcome=st.sampled_from(RightsOutcome)
    ),
    "SubjectErased": events_of(SubjectErased, request_id=st.none() | st.uuids()),
    "InteractionRecorded": events_of(
        InteractionRecorded, kind=st.sampled_from(InteractionKind), purpose=st.none() | slugs
    ),
    "ComplaintReceived": events_of(
        ComplaintReceived,
        feedback_type=st.sampled_from(FeedbackType),
        provider=st.none() | short_texts,
        user_agent=st.none() | short_texts,
        arrival_date=st.none() | aware_datetimes,
        original_message_id=st.none() | short_texts,
        campaign_id=st.none() | short_texts,
        report_sha256=sha256s,
    ),
    "AddressUndeliverable": events_of(
        AddressUndeliverable,
        kind=st.sampled_from(UndeliverableKind),
        status=st.none() | st.from_regex(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
        soft_bounces=st.none() | st.integers(min_value=1, max_value=10_000),
        original_message_id=st.none() | short_texts,
        report_sha256=sha256s,
    ),
}


def test_strategies_cover_every_event_type() -> None:
    assert EVENTS.keys() == EVENT_CLASSES.keys()


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@given(data=st.data())
def test_json_round_trip_gives_the_same_event(event_type: str, data: st.DataObject) -> None:
    event = data.draw(EVENTS[event_type])

    raw = event_to_json(event)
    parsed = parse_event(raw)

    assert parsed == event
    assert type(parsed) is type(event)
    assert event_to_json(parsed) == raw
