"""Unsubscribe tokens: any claim round-trips; no mutation of a token ever verifies."""

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.errors import UnsubscribeTokenError
from ledger.links.tokens import UnsubscribeClaim, UnsubscribeTokenCodec

NOW = datetime(2026, 11, 26, tzinfo=UTC)
CODEC = UnsubscribeTokenCodec({"k2": b"n" * 32, "k1": b"o" * 32}, clock=lambda: NOW)
ALPHABET = string.ascii_letters + string.digits + "-_"

subjects = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.from_regex(r"\A[A-Za-z0-9._:@-]{1,128}\Z"),
)
short_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn")),
    min_size=1,
    max_size=60,
).filter(str.isprintable)
# hypothesis takes naive bounds and attaches the time zone itself.
times = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
).map(lambda value: value.replace(microsecond=0))


@st.composite
def claims(draw: st.DrawFn) -> UnsubscribeClaim:
    issued = draw(times)
    scope = draw(st.sampled_from(["purpose", "list_id", None]))
    fields: dict[str, object] = {"subject": draw(subjects), "issued_at": issued}
    if scope == "purpose":
        fields["purpose"] = draw(st.from_regex(r"\A[a-z][a-z0-9_]{1,63}\Z"))
    elif scope == "list_id":
        fields["list_id"] = draw(short_text)
    fields["campaign_id"] = draw(st.none() | short_text)
    fields["message_id"] = draw(st.none() | short_text)
    if draw(st.booleans()):
        fields["expires_at"] = issued + timedelta(seconds=draw(st.integers(1, 10**8)))
    return UnsubscribeClaim.build(**fields)


@given(claims())
def test_every_claim_round_trips(claim: UnsubscribeClaim) -> None:
    codec = UnsubscribeTokenCodec({"k2": b"n" * 32}, clock=lambda: claim.issued_at)
    assert codec.verify(codec.encode(claim)) == claim


@settings(max_examples=500)
@given(claims(), st.data())
def test_no_mutation_of_a_token_verifies(claim: UnsubscribeClaim, data: st.DataObject) -> None:
    codec = UnsubscribeTokenCodec({"k2": b"n" * 32}, clock=lambda: claim.issued_at)
    token = codec.encode(claim)
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "append"]))
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(ALPHABET))
    if kind == "replace":
        mutated = token[:at] + char + token[at + 1 :]
    elif kind == "insert":
        mutated = token[:at] + char + token[at:]
    elif kind == "delete":
        mutated = token[:at] + token[at + 1 :]
    elif kind == "truncate":
        mutated = token[:at]
    else:
        mutated = token + data.draw(st.text(ALPHABET, min_size=1, max_size=8))
    if mutated == token:
        return
    with pytest.raises(UnsubscribeTokenError):
        codec.verify(mutated)


@given(st.text(ALPHABET, max_size=200))
def test_random_text_never_verifies(text: str) -> None:
    with pytest.raises(UnsubscribeTokenError):
        CODEC.verify(text)
