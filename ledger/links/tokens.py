"""Signed unsubscribe links: compact, unguessable tokens naming who unsubscribes from what.

A token is the base64url text (no padding) of::

    payload || key_id || len(key_id) || MAC

where ``MAC`` is HMAC-SHA256 under the key ``key_id`` names, over a context string, the payload
and the key id, truncated to 16 bytes (128 bits). The payload is binary::

    version (1) | flags (1) | issued_at (4, Unix seconds) | [expires_at (4)]
    | subject (32 raw bytes when it is a keyed hash in hex, else length (1) + UTF-8)
    | [purpose] | [list_id] | [campaign_id] | [message_id]     (each length (1) + UTF-8)

The payload names the person by subject (the keyed hash of the address, or the caller's own id),
never by address. It is signed, not encrypted: whoever holds the link can read who and what it
names, as a link in a mail always could; nobody can change it or make a new one without a key.

Keys rotate: the codec holds several, the first signs, every one verifies. A token whose key was
retired is refused as `UnknownTokenKeyError`.
"""

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Self

from pydantic import ValidationError, model_validator

from ledger.domain.commands import field_error
from ledger.domain.errors import (
    ConfigurationError,
    ExpiredTokenError,
    InvalidFieldError,
    MalformedTokenError,
    TokenSignatureError,
    UnknownTokenKeyError,
)
from ledger.links.headers import ONE_CLICK_BODY, UnsubscribeHeaders, unsubscribe_headers
from ledger.privacy.secrets import DEFAULT_SECRET_BYTES, decode_secret
from schemas import Model, ShortText, Slug, SubjectId, UtcDatetime, quoted

__all__ = [
    "FIELD_FLAGS",
    "MAC_BYTES",
    "MAX_FIELD_BYTES",
    "ONE_CLICK_BODY",
    "UnsubscribeClaim",
    "UnsubscribeHeaders",
    "UnsubscribeTokenCodec",
    "parse_keys",
    "unsubscribe_headers",
]

TOKEN_VERSION = 1
MAC_BYTES = 16
"""128 bits of HMAC-SHA256: forging one link takes about 2**128 tries."""
MAX_TOKEN_CHARS = 1024
"""Far above any token we make (five fields of at most 255 bytes): anything longer is refused
before decoding."""

# Keys with another use (the subject secret, say) never make a MAC that verifies here, and a
# link made for one use (unsubscribe, confirm, preferences) never verifies as another.
_CONTEXTS = {
    use: f"consent-ledger/{use}-token/v1\x00".encode()
    for use in ("unsubscribe", "confirm", "preferences", "form")
}
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_HEX_SUBJECT = re.compile(r"^[0-9a-f]{64}$")
MAX_FIELD_BYTES = 255
_EPOCH_LIMIT = 2**32

_HAS_EXPIRY = 0x01
_HEX = 0x02
_PURPOSE = 0x04
_LIST = 0x08
_CAMPAIGN = 0x10
_MESSAGE = 0x20
_KNOWN_FLAGS = _HAS_EXPIRY | _HEX | _PURPOSE | _LIST | _CAMPAIGN | _MESSAGE
_OPTIONAL = (
    (_PURPOSE, "purpose"),
    (_LIST, "list_id"),
    (_CAMPAIGN, "campaign_id"),
    (_MESSAGE, "message_id"),
)
FIELD_FLAGS = {name: flag for flag, name in _OPTIONAL}
"""The payload flag of each optional field, by name."""
_HEADER = struct.Struct(">BBI")
_SECONDS = struct.Struct(">I")


class UnsubscribeClaim(Model):
    """What one unsubscribe link says: this person leaves this purpose or list (or everything).

    Times are whole seconds: that is what the token holds.
    """

    subject: SubjectId
    purpose: Slug | None = None
    list_id: ShortText | None = None
    campaign_id: ShortText | None = None
    message_id: ShortText | None = None
    issued_at: UtcDatetime
    expires_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def check_fits(self) -> Self:
        """A purpose or a list, not both; every field and time fits the token's layout."""
        if self.purpose is not None and self.list_id is not None:
            raise ValueError("give a purpose or a list, not both")
        for name in ("list_id", "campaign_id", "message_id"):
            value = getattr(self, name)
            if value is not None and len(value.encode()) > MAX_FIELD_BYTES:
                raise ValueError(f"{name} is longer than {MAX_FIELD_BYTES} bytes in UTF-8")
        for name in ("issued_at", "expires_at"):
            value = getattr(self, name)
            if value is not None and (
                value.microsecond or not 0 <= value.timestamp() < _EPOCH_LIMIT
            ):
                raise ValueError(f"{name} must be whole seconds between 1970 and 2106")
        if self.expires_at is not None and self.expires_at <= self.issued_at:
            raise ValueError("expires_at must come after issued_at")
        return self

    @classmethod
    def build(cls, **fields: object) -> Self:
        """Validate, turning pydantic's error into an `InvalidFieldError` naming the field."""
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            raise field_error(error) from None

    @property
    def command_id(self) -> str:
        """The idempotency key of this link's click: every click of one link records once.

        Derived from the payload, not the token text, so a link re-signed under a new key is
        still the same click.
        """
        return self.command_id_for("unsubscribe")

    def command_id_for(self, use: str) -> str:
        """The idempotency key of this claim's click on a link for ``use`` (``confirm``...)."""
        return f"{use}-" + hashlib.sha256(_pack(self)).hexdigest()[:32]


def _seconds(value: datetime) -> int:
    return int(value.timestamp())


def _field(value: str) -> bytes:
    data = value.encode()
    return bytes([len(data)]) + data


def subject_part(subject: str) -> tuple[int, bytes]:
    """The flag and bytes of a subject in a payload: 32 raw bytes for a keyed hash in hex."""
    if _HEX_SUBJECT.match(subject):
        return _HEX, bytes.fromhex(subject)
    return 0, _field(subject)


def optional_part(values: Iterable[tuple[int, str | None]]) -> tuple[int, bytes]:
    """The flags and bytes of optional fields (flag, value), given in the payload's order."""
    flags = 0
    tail = bytearray()
    for flag, value in values:
        if value is not None:
            flags |= flag
            tail += _field(value)
    return flags, bytes(tail)


def payload(flags: int, issued: int, expires: int | None, body: bytes) -> bytes:
    """A whole payload: the header, the expiry if any, then the subject and optional fields."""
    if expires is None:
        return _HEADER.pack(TOKEN_VERSION, flags, issued) + body
    return _HEADER.pack(TOKEN_VERSION, flags | _HAS_EXPIRY, issued) + _SECONDS.pack(expires) + body


def _pack(claim: UnsubscribeClaim) -> bytes:
    subject_flag, subject = subject_part(claim.subject)
    flags, optional = optional_part((flag, getattr(claim, name)) for flag, name in _OPTIONAL)
    expires = None if claim.expires_at is None else _seconds(claim.expires_at)
    return payload(subject_flag | flags, _seconds(claim.issued_at), expires, subject + optional)


class _Reader:
    """Reads a payload front to back; any overrun is a `MalformedTokenError`."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise MalformedTokenError("truncated payload")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def text(self) -> str:
        try:
            return self.take(self.take(1)[0]).decode()
        except UnicodeDecodeError:
            raise MalformedTokenError("a field is not UTF-8") from None


def _unpack(payload: bytes) -> UnsubscribeClaim:
    reader = _Reader(payload)
    version, flags, issued = _HEADER.unpack(reader.take(_HEADER.size))
    if version != TOKEN_VERSION or flags & ~_KNOWN_FLAGS:
        raise MalformedTokenError("unknown token version or flags")
    fields: dict[str, object] = {"issued_at": datetime.fromtimestamp(issued, UTC)}
    if flags & _HAS_EXPIRY:
        (expires,) = _SECONDS.unpack(reader.take(_SECONDS.size))
        fields["expires_at"] = datetime.fromtimestamp(expires, UTC)
    fields["subject"] = reader.take(32).hex() if flags & _HEX else reader.text()
    for flag, name in _OPTIONAL:
        if flags & flag:
            fields[name] = reader.text()
    if reader.at != len(payload):
        raise MalformedTokenError("trailing bytes after the payload")
    try:
        return UnsubscribeClaim.build(**fields)
    except InvalidFieldError:
        raise MalformedTokenError("the payload does not make a valid claim") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if len(text) > MAX_TOKEN_CHARS or not _TOKEN.match(text):
        raise MalformedTokenError("not base64url text of a sensible length")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedTokenError("not base64url") from None
    # Unused low bits of the last character would let two spellings decode alike: a changed
    # character must never leave a token valid, so only the one canonical spelling is accepted.
    if _b64encode(data) != text:
        raise MalformedTokenError("not canonical base64url")
    return data


def _mac(secret: bytes, context: bytes, signed: bytes) -> bytes:
    return hmac.new(secret, context + signed, hashlib.sha256).digest()[:MAC_BYTES]


def _macs(secret: bytes, context: bytes) -> Callable[[bytes], bytes]:
    """`_mac` under one key and context, its key schedule and context hashed once."""
    keyed = hmac.new(secret, context, hashlib.sha256)

    def mac(signed: bytes) -> bytes:
        one = keyed.copy()
        one.update(signed)
        return one.digest()[:MAC_BYTES]

    return mac


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnsubscribeTokenCodec:
    """Makes and verifies tokens. ``keys`` maps key id to secret; the first key signs.

    ``use`` is what the tokens are for: ``unsubscribe`` (``/u/``), ``confirm`` (a double
    opt-in, ``/c/``), ``preferences`` (``/p/``) or ``form`` (the nonce of one preference form).
    It is signed into every MAC, so a token of one use is refused as a forgery by a codec of
    another (`for_use` makes one with the same keys).
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        clock: Callable[[], datetime] = utc_now,
        use: str = "unsubscribe",
    ) -> None:
        if use not in _CONTEXTS:
            raise ConfigurationError(f"no link use {quoted(use)}")
        if not keys:
            raise ConfigurationError("at least one unsubscribe key is needed")
        for key_id, secret in keys.items():
            if not _KEY_ID.match(key_id):
                raise ConfigurationError(
                    f"unsubscribe key id {quoted(key_id)} must be 1 to 16 of [A-Za-z0-9_-]"
                )
            if len(secret) < DEFAULT_SECRET_BYTES:
                raise ConfigurationError(
                    f"unsubscribe key {quoted(key_id)} must be at least"
                    f" {DEFAULT_SECRET_BYTES} bytes"
                )
        self._keys = dict(keys)
        self.signing_key_id = next(iter(self._keys))
        self.clock = clock
        self.use = use
        self._context = _CONTEXTS[use]
        signing_id = self.signing_key_id.encode("ascii")
        self._key_id_tail = signing_id + bytes([len(signing_id)])
        self._signing_mac = _macs(self._keys[self.signing_key_id], self._context)

    def __repr__(self) -> str:
        return f"UnsubscribeTokenCodec(key_ids={list(self._keys)}, use={self.use!r})"

    def for_use(self, use: str) -> "UnsubscribeTokenCodec":
        """A codec with the same keys and clock whose links are for ``use``."""
        return UnsubscribeTokenCodec(self._keys, clock=self.clock, use=use)

    def issue(
        self,
        *,
        subject: str,
        purpose: str | None = None,
        list_id: str | None = None,
        campaign_id: str | None = None,
        message_id: str | None = None,
        expires_in: timedelta | None = None,
    ) -> str:
        """A new token, signed with the newest key; a bad field is an `InvalidFieldError`."""
        issued_at = self.clock().astimezone(UTC).replace(microsecond=0)
        claim = UnsubscribeClaim.build(
            subject=subject,
            purpose=purpose,
            list_id=list_id,
            campaign_id=campaign_id,
            message_id=message_id,
            issued_at=issued_at,
            expires_at=None if expires_in is None else issued_at + expires_in,
        )
        return self.encode(claim)

    def encode(self, claim: UnsubscribeClaim) -> str:
        return self.sign(_pack(claim))

    def sign(self, packed: bytes) -> str:
        """The token of a packed payload (`payload`), signed with the newest key."""
        signed = packed + self._key_id_tail
        return _b64encode(signed + self._signing_mac(signed))

    def verify(self, token: str, *, check_expiry: bool = True) -> UnsubscribeClaim:
        """The claim of a genuine, unexpired token, or an `UnsubscribeTokenError` saying why.

        ``check_expiry=False`` still names who a genuine but expired link was sent to: a
        complaint about an old message must reach its recipient.
        """
        raw = _b64decode(token)
        if len(raw) < _HEADER.size + 2 + MAC_BYTES:
            raise MalformedTokenError("too short to be a token")
        signed, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        key_id_length = signed[-1]
        if key_id_length + 1 + _HEADER.size > len(signed):
            raise MalformedTokenError("key id runs past the token")
        key_id = signed[-1 - key_id_length : -1].decode("ascii", errors="replace")
        if not _KEY_ID.match(key_id):
            raise MalformedTokenError("not a key id")
        secret = self._keys.get(key_id)
        if secret is None:
            raise UnknownTokenKeyError(key_id)
        if not hmac.compare_digest(mac, _mac(secret, self._context, signed)):
            raise TokenSignatureError("the token's MAC does not verify")
        # Only a payload we signed is ever parsed.
        claim = _unpack(signed[: -1 - key_id_length])
        if check_expiry and claim.expires_at is not None and self.clock() >= claim.expires_at:
            raise ExpiredTokenError(claim.expires_at)
        return claim


def parse_keys(text: str, *, setting: str) -> dict[str, bytes]:
    """Keys from ``kid:base64,kid:base64`` (newest first); errors name the setting, not keys."""
    keys: dict[str, bytes] = {}
    for item in text.split(","):
        key_id, sep, secret = item.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ConfigurationError(
                f"{setting} must be key_id:base64 pairs, comma-separated, newest first; "
                "key ids are 1 to 16 of [A-Za-z0-9_-]"
            )
        if key_id in keys:
            raise ConfigurationError(f"{setting} names key id {quoted(key_id)} twice")
        keys[key_id] = decode_secret(secret, name=f"{setting} (key {key_id})")
    return keys
