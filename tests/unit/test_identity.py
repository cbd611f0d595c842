"""Unit tests of who a person is: address normalisation, subjects, and the secrets behind them."""

import base64
import hashlib
import hmac
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import ConfigurationError, InvalidAddressError
from ledger.domain.identity import SubjectHasher, normalise_address
from ledger.privacy.secrets import decode_secret, load_or_create_secret

SECRET = b"s" * 32
# A local part that no error message may repeat.
PRIVATE = "jeanne.private"
LONG_DOMAIN = ".".join(["b" * 63, "b" * 63, "b" * 62])  # 190 octets, a valid domain
CREATORS = 16
# "EXAMPLE。org" in the full-width forms East Asian input methods type.
FULL_WIDTH_DOMAIN = "\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\u3002org"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("alice@example.org", "alice@example.org"),
        ("Alice.Martin@Example.ORG", "alice.martin@example.org"),
        ("  alice@example.org\t\n", "alice@example.org"),
        ("jürgen@bücher.de", "jürgen@xn--bcher-kva.de"),
        ("JÜRGEN@BÜCHER.DE", "jürgen@xn--bcher-kva.de"),
        ("jurgen@XN--BCHER-KVA.de", "jurgen@xn--bcher-kva.de"),
        ("user@例え.テスト", "user@xn--r8jz45g.xn--zckzah"),
        (f"user@{FULL_WIDTH_DOMAIN}", "user@example.org"),
        ("e\u0301lise@example.org", "\u00e9lise@example.org"),
        ("a+tag@localhost", "a+tag@localhost"),
        ("Chloé.Bernard@Exemple.FR", "chloé.bernard@exemple.fr"),
        ("luc@exémple.fr", "luc@xn--exmple-cva.fr"),
        # The Kelvin sign is canonically equivalent to K: the same person as "k".
        ("\u212aim@example.org", "kim@example.org"),
        # A capital sigma at the end of a word lowercases to the final form (Final_Sigma).
        ("ΟΔΟΣ@example.org", "οδος@example.org"),
        ("Straße@example.org", "straße@example.org"),
    ],
)
def test_addresses_are_normalised(address: str, expected: str) -> None:
    assert normalise_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        PRIVATE,
        f"{PRIVATE}@@example.org",
        f"{PRIVATE}@example@org",
        "@example.org",
        f"{PRIVATE}@",
        "jeanne private@example.org",
        f"{PRIVATE}@exa mple.org",
        f"{PRIVATE}\n@example.org",
        f"{PRIVATE}\x00@example.org",
        f"{PRIVATE}\u200b@example.org",
        f"{PRIVATE}@example\u00a0.org",
        "j" * 65 + "@example.org",
        "é" * 33 + "@example.org",
        f"{PRIVATE}@-example.org",
        f"{PRIVATE}@exa_mple.org",
        f"{PRIVATE}@example..org",
        f"{PRIVATE}@example.org.",
        f"{PRIVATE}@[192.0.2.1]",
        f"{PRIVATE}@" + "b" * 64 + ".org",
        "j" * 64 + "@" + LONG_DOMAIN,
        f'"{PRIVATE}"@example.org',
        f"Jeanne <{PRIVATE}@example.org>",
        f"{PRIVATE},x@example.org",
        # Compatibility characters: a full-width letter, a ligature.
        f"\uff4a{PRIVATE}@example.org",
        f"\ufb01{PRIVATE}@example.org",
    ],
)
def test_bad_addresses_are_refused_without_repeating_them(address: str) -> None:
    with pytest.raises(InvalidAddressError) as refused:
        normalise_address(address)

    assert refused.value.field == "address"
    assert PRIVATE not in str(refused.value)
    assert "example" not in str(refused.value)
    assert "jjjj" not in str(refused.value)


@pytest.mark.parametrize(
    ("one", "other"),
    [("οδος@example.org", "οδοσ@example.org"), ("straße@example.org", "strasse@example.org")],
)
def test_lowercasing_is_not_case_folding(one: str, other: str) -> None:
    # casefold() would merge these; mail servers keep them apart, and so does the ledger.
    assert one.casefold() == other.casefold()
    hasher = SubjectHasher(secret=SECRET)

    assert hasher.subject_for(one) != hasher.subject_for(other)


def test_the_kelvin_sign_names_the_same_subject_as_k() -> None:
    hasher = SubjectHasher(secret=SECRET)

    assert hasher.subject_for("\u212aim@example.org") == hasher.subject_for("kim@example.org")


def test_the_longest_address_is_accepted() -> None:
    address = "j" * 63 + "@" + LONG_DOMAIN

    assert len(address) == 254
    assert normalise_address(address) == address


@given(st.emails() | st.text())
def test_normalising_is_idempotent(address: str) -> None:
    try:
        normalised = normalise_address(address)
    except InvalidAddressError:
        return
    assert normalise_address(normalised) == normalised


def test_a_subject_is_the_keyed_hash_of_the_normalised_address() -> None:
    expected = hmac.new(SECRET, b"alice@example.org", hashlib.sha256).hexdigest()

    assert SubjectHasher(secret=SECRET).subject_for(" Alice@Example.org ") == expected


@given(st.emails())
def test_a_subject_ignores_case(address: str) -> None:
    hasher = SubjectHasher(secret=SECRET)

    assert hasher.subject_for(address.upper()) == hasher.subject_for(address.lower())


def test_a_subject_depends_on_the_secret() -> None:
    address = "alice@example.org"

    assert SubjectHasher(secret=SECRET).subject_for(address) != SubjectHasher(
        secret=b"t" * 32
    ).subject_for(address)


def test_a_subject_is_lowercase_hex() -> None:
    subject = SubjectHasher(secret=SECRET).subject_for("alice@example.org")

    assert len(subject) == 64
    assert set(subject) <= set("0123456789abcdef")


def test_a_subject_of_a_bad_address_is_refused() -> None:
    with pytest.raises(InvalidAddressError):
        SubjectHasher(secret=SECRET).subject_for("not an address")


def test_a_short_subject_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        SubjectHasher(secret=b"s" * 31)


def test_the_hasher_repr_hides_the_secret() -> None:
    assert "sss" not in repr(SubjectHasher(secret=SECRET))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "subject.key"

    secret = load_or_create_secret(path)

    assert len(secret) == 32
    assert _mode(path) == 0o600
    assert path.read_bytes() == base64.b64encode(secret) + b"\n"


def test_a_secret_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "subject.key"

    assert load_or_create_secret(path) == load_or_create_secret(path)


def test_secrets_of_other_lengths_can_be_made(tmp_path: Path) -> None:
    assert len(load_or_create_secret(tmp_path / "long.key", nbytes=64)) == 64


def test_separate_files_hold_separate_secrets(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path / "a.key") != load_or_create_secret(tmp_path / "b.key")


def test_concurrent_creators_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    start = threading.Barrier(CREATORS)

    def create(_: int) -> bytes:
        start.wait(timeout=30)
        return load_or_create_secret(path)

    with ThreadPoolExecutor(max_workers=CREATORS) as executor:
        secrets = set(executor.map(create, range(CREATORS)))

    assert len(secrets) == 1
    assert [file.name for file in tmp_path.iterdir()] == ["master.key"]


def test_a_secret_made_by_another_process_is_read(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    theirs = os.urandom(32)
    path.write_bytes(base64.b64encode(theirs) + b"\n")
    path.chmod(0o600)

    assert load_or_create_secret(path) == theirs


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666])
def test_a_secret_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    secret = load_or_create_secret(path)
    path.chmod(mode)

    with pytest.raises(ConfigurationError, match="0600") as refused:
        load_or_create_secret(path)

    assert base64.b64encode(secret).decode() not in str(refused.value)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        base64.b64encode(b"x" * 16) + b"\n",
        base64.b64encode(b"x" * 33) + b"\n",
        b"not base64 at all!\n",
        b"A" * 10_000,
    ],
)
def test_a_secret_file_of_the_wrong_content_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    path.chmod(0o600)

    with pytest.raises(ConfigurationError, match="32 bytes"):
        load_or_create_secret(path)
    assert path.read_bytes() == content


def test_a_secret_file_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.key"
    load_or_create_secret(target)
    link = tmp_path / "master.key"
    link.symlink_to(target)

    with pytest.raises(ConfigurationError, match="cannot open"):
        load_or_create_secret(link)


def test_a_secret_in_a_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot create"):
        load_or_create_secret(tmp_path / "missing" / "master.key")


def test_a_secret_from_settings_is_decoded() -> None:
    secret = os.urandom(32)

    assert decode_secret(base64.b64encode(secret).decode(), name="CONSENT_MASTER_KEY") == secret


def test_a_secret_from_settings_may_carry_surrounding_whitespace() -> None:
    secret = os.urandom(32)
    value = f"  {base64.b64encode(secret).decode()}\n"

    assert decode_secret(value, name="CONSENT_MASTER_KEY") == secret


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_secret_setting_is_named(value: str | None) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_MASTER_KEY is not set"):
        decode_secret(value, name="CONSENT_MASTER_KEY")


@pytest.mark.parametrize(
    "value",
    [
        "hunter2-not-base64!",
        base64.b64encode(b"h" * 31).decode(),
        base64.b64encode(b"h" * 48).decode(),
        "aHVudGVyMmh1bnRlcjI=é",
    ],
)
def test_an_unusable_secret_setting_is_named_but_not_echoed(value: str) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_MASTER_KEY") as refused:
        decode_secret(value, name="CONSENT_MASTER_KEY")

    assert value not in str(refused.value)
    assert "hunter" not in str(refused.value)


@given(
    secret=st.binary(min_size=32, max_size=200),
    local=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=40),
)
def test_the_subject_is_the_standard_hmac_sha256_for_any_secret(secret: bytes, local: str) -> None:
    # Secrets longer than a SHA-256 block are hashed first (RFC 2104): both branches are drawn.
    address = f"{local}@example.org"
    expected = hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()
    assert SubjectHasher(secret=secret).subject_for(address) == expected
