"""Unsubscribe tokens: what is signed verifies, anything else is refused with a typed error."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.errors import (
    ConfigurationError,
    ExpiredTokenError,
    InvalidFieldError,
    MalformedTokenError,
    TokenSignatureError,
    UnknownTokenKeyError,
    UnsubscribeTokenError,
)
from ledger.links.tokens import (
    MAC_BYTES,
    UnsubscribeClaim,
    UnsubscribeTokenCodec,
    parse_keys,
    unsubscribe_headers,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SUBJECT = "9f" * 32
OLD = b"o" * 32
NEW = b"n" * 32


def codec(keys: dict[str, bytes] | None = None, *, now: datetime = NOW) -> UnsubscribeTokenCodec:
    return UnsubscribeTokenCodec(keys or {"k2": NEW}, clock=lambda: now)


def test_round_trip_carries_every_field() -> None:
    token = codec().issue(
        subject=SUBJECT,
        purpose="newsletter",
        campaign_id="2026-11 spring sale",
        message_id="<abc.123@mail.example.org>",
        expires_in=timedelta(days=60),
    )
    claim = codec().verify(token)
    assert claim == UnsubscribeClaim(
        subject=SUBJECT,
        purpose="newsletter",
        campaign_id="2026-11 spring sale",
        message_id="<abc.123@mail.example.org>",
        issued_at=NOW,
        expires_at=NOW + timedelta(days=60),
    )


def test_token_is_compact_url_safe_and_never_holds_an_address() -> None:
    token = codec().issue(subject=SUBJECT, list_id="weekly", campaign_id="c-2026-11")
    assert len(token) < 120
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert codec().verify(token).list_id == "weekly"


@pytest.mark.parametrize("subject", ["p-1", "crm:Customer.42@eu", "A" * 128])
def test_callers_own_subject_ids_round_trip(subject: str) -> None:
    assert codec().verify(codec().issue(subject=subject)).subject == subject


def test_one_changed_byte_anywhere_is_refused() -> None:
    token = codec().issue(subject=SUBJECT, purpose="newsletter", campaign_id="c1")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for index in range(len(raw)):
        for flip in (0x01, 0x80):
            altered = bytearray(raw)
            altered[index] ^= flip
            text = base64.urlsafe_b64encode(bytes(altered)).rstrip(b"=").decode()
            with pytest.raises(UnsubscribeTokenError):
                codec().verify(text)


def test_a_changed_mac_is_a_signature_error() -> None:
    token = codec().issue(subject=SUBJECT)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-MAC_BYTES] ^= 1
    with pytest.raises(TokenSignatureError):
        codec().verify(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


def test_a_non_canonical_spelling_of_the_same_bytes_is_refused() -> None:
    token = codec().issue(subject=SUBJECT, purpose="newsletter")
    assert len(token) % 4 != 0, "this token must end in a partial base64 group"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twins = [token[:-1] + char for char in alphabet if char != token[-1]]
    for twin in twins:
        with pytest.raises(UnsubscribeTokenError):
            codec().verify(twin)


@pytest.mark.parametrize("text", ["", "a", "!!!!", "abc=", "A" * 2000, "AAAA" * 6])
def test_garbage_is_malformed(text: str) -> None:
    with pytest.raises(MalformedTokenError):
        codec().verify(text)


def test_rotation_newest_signs_old_still_verifies_retired_is_unknown() -> None:
    before = codec({"k1": OLD}).issue(subject=SUBJECT, purpose="newsletter")
    rotated = codec({"k2": NEW, "k1": OLD})
    assert rotated.signing_key_id == "k2"
    assert rotated.verify(before).purpose == "newsletter"
    after = rotated.issue(subject=SUBJECT, purpose="newsletter")
    assert codec({"k2": NEW}).verify(after).subject == SUBJECT
    with pytest.raises(UnknownTokenKeyError):
        codec({"k2": NEW}).verify(before)


def test_a_key_id_claimed_with_another_secret_does_not_verify() -> None:
    forged = codec({"k2": b"x" * 32}).issue(subject=SUBJECT)
    with pytest.raises(TokenSignatureError):
        codec({"k2": NEW}).verify(forged)


def test_same_link_resigned_under_a_new_key_is_the_same_click() -> None:
    claim = codec({"k1": OLD}).verify(codec({"k1": OLD}).issue(subject=SUBJECT, list_id="l"))
    resigned = codec({"k2": NEW}).verify(codec({"k2": NEW}).encode(claim))
    assert resigned.command_id == claim.command_id
    other = codec().verify(codec().issue(subject=SUBJECT, list_id="m"))
    assert other.command_id != claim.command_id


def test_expiry() -> None:
    token = codec().issue(subject=SUBJECT, expires_in=timedelta(days=30))
    assert codec(now=NOW + timedelta(days=30) - timedelta(seconds=1)).verify(token)
    with pytest.raises(ExpiredTokenError):
        codec(now=NOW + timedelta(days=30)).verify(token)


def test_bad_fields_are_refused_before_signing() -> None:
    with pytest.raises(InvalidFieldError, match="purpose or a list"):
        codec().issue(subject=SUBJECT, purpose="newsletter", list_id="weekly")
    with pytest.raises(InvalidFieldError) as caught:
        codec().issue(subject="has space")
    assert caught.value.field == "subject"
    with pytest.raises(InvalidFieldError, match="255 bytes"):
        codec().issue(subject=SUBJECT, campaign_id="é" * 200)


def test_keys_setting_parses_newest_first_and_errors_never_show_a_key() -> None:
    new = base64.b64encode(NEW).decode()
    old = base64.b64encode(OLD).decode()
    keys = parse_keys(f"k2:{new}, k1:{old}", setting="CONSENT_UNSUBSCRIBE_KEYS")
    assert list(keys) == ["k2", "k1"]
    assert keys == {"k2": NEW, "k1": OLD}
    for bad in (new, f"k2:{new},k2:{old}", "k 2:" + new, "k2:" + base64.b64encode(b"s").decode()):
        with pytest.raises(ConfigurationError) as caught:
            parse_keys(bad, setting="CONSENT_UNSUBSCRIBE_KEYS")
        assert "CONSENT_UNSUBSCRIBE_KEYS" in str(caught.value)
        assert new not in str(caught.value)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        UnsubscribeTokenCodec({"k": b"short"})
    with pytest.raises(ConfigurationError):
        UnsubscribeTokenCodec({})


def test_headers_name_the_https_link_and_one_click() -> None:
    headers = unsubscribe_headers("TOKEN", public_url="https://mail.example.org/api/")
    assert headers.lines() == (
        "List-Unsubscribe: <https://mail.example.org/api/u/TOKEN>\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    )
    with_mailto = unsubscribe_headers(
        "TOKEN", public_url="https://x.example", mailto="leave@x.example"
    )
    assert with_mailto.list_unsubscribe == (
        "<https://x.example/u/TOKEN>, <mailto:leave@x.example?subject=unsubscribe%20TOKEN>"
    )


def test_a_link_made_for_one_use_never_verifies_as_another() -> None:
    unsubscribe = UnsubscribeTokenCodec({"k1": NEW}, clock=lambda: NOW)
    confirm = unsubscribe.for_use("confirm")
    preferences = unsubscribe.for_use("preferences")
    codecs = (unsubscribe, confirm, preferences)
    for maker in codecs:
        token = maker.issue(subject=SUBJECT, purpose="newsletter")
        for checker in codecs:
            if checker.use == maker.use:
                assert checker.verify(token).purpose == "newsletter"
            else:
                with pytest.raises(TokenSignatureError):
                    checker.verify(token)
    claim = confirm.verify(confirm.issue(subject=SUBJECT, purpose="newsletter"))
    assert claim.command_id_for("confirm") != claim.command_id
    with pytest.raises(ConfigurationError):
        UnsubscribeTokenCodec({"k1": NEW}, use="anything")
