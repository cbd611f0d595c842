"""Who a person is to the ledger: a normalised email address and its keyed hash, the subject.

The same key derives the ids that commands are stored under, so that no stored id can be traced
back to the caller's text (which may hold an address) without it.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated

import idna
from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

from ledger.domain.errors import ConfigurationError, InvalidAddressError

__all__ = [
    "COMMAND_ID_PREFIX",
    "MAX_ADDRESS_CHARS",
    "MIN_SUBJECT_SECRET_BYTES",
    "EmailAddress",
    "SubjectHasher",
    "normalise_address",
]

MIN_SUBJECT_SECRET_BYTES = 32
"""The shortest secret `SubjectHasher` accepts: as long as the HMAC-SHA256 output."""

MAX_ADDRESS_CHARS = 320
"""The longest address text a command or check takes, before normalising (surrounding spaces)."""

_MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1
_MAX_ADDRESS_OCTETS = 254  # RFC 5321 path limit of 256, less the angle brackets
_FIELD = "address"
_SHA256_BLOCK = 64
_SPECIALS = re.compile(r'[()<>\[\]:;\\,"]')
"""RFC 5322 specials other than ``@`` and ``.``: never in an unquoted local part."""

COMMAND_ID_PREFIX = "kc1:"
"""What every stored command id starts with: a keyed hash of the caller's id, version 1."""
# Hashed before the caller's id: no normalised address holds a NUL, so a command id's hash
# never equals the subject of an address, even when the caller's id is that address.
_COMMAND_ID_DOMAIN = b"consent-ledger/command-id\0"
_COMMAND_ID_HEX = 32  # 128 bits: ids only need to differ within one person's commands


def normalise_address(address: str) -> str:
    """Return the one spelling of ``address`` the ledger hashes, or raise `InvalidAddressError`.

    This is the address rule of every entry point (HTTP, CLI, import, checks by address):

    - surrounding whitespace is dropped; inner whitespace and control characters are refused;
    - exactly one ``@``; the local part holds any printable character of any script but the
      ASCII specials ``"(),:;<>[\\]``, so a quoted local part or a pasted ``Name <address>``
      never becomes a subject;
    - the local part is lowercased with Unicode's full lowercase mapping (`str.lower`, not
      `str.casefold`), then put in NFC, so composed and decomposed spellings agree and
      characters with a canonical equivalent become it (the Kelvin sign is ``k``). A final
      capital sigma lowercases to ``ς`` (Unicode's Final_Sigma rule), and final and medial sigma, or
      ``ß`` and ``ss``, stay different addresses: case folding would merge mailboxes that mail
      servers keep apart;
    - a local part with compatibility characters (full-width letters, ligatures, superscripts:
      not NFKC-stable once lowercased) is refused rather than guessed at;
    - the domain is IDNA-encoded (UTS #46, as browsers do; its mapping handles full-width forms
      and case) to lowercase ASCII.

    The ledger compares addresses case-insensitively so that an unsubscribe always matches the
    address that subscribed, even if a mail server would not.

    The reasons given never repeat the address: they end up in logs and HTTP responses.
    """
    candidate = address.strip()
    if not candidate:
        raise InvalidAddressError(_FIELD, "is empty")
    # str.isprintable is False for every whitespace but the ASCII space, and for controls.
    if " " in candidate or not candidate.isprintable():
        raise InvalidAddressError(_FIELD, "contains whitespace or control characters")
    if candidate.count("@") != 1:
        raise InvalidAddressError(_FIELD, "must contain exactly one '@'")
    local, _, domain = candidate.partition("@")
    if not local:
        raise InvalidAddressError(_FIELD, "has an empty local part")
    if _SPECIALS.search(local):
        raise InvalidAddressError(_FIELD, 'local part contains one of the characters "(),:;<>[\\]')
    local = local.lower() if local.isascii() else _unicode_local(local)
    if len(local.encode()) > _MAX_LOCAL_OCTETS:
        raise InvalidAddressError(_FIELD, f"local part is longer than {_MAX_LOCAL_OCTETS} octets")
    normalised = f"{local}@{_ascii_domain(domain)}"
    if len(normalised.encode()) > _MAX_ADDRESS_OCTETS:
        raise InvalidAddressError(_FIELD, f"is longer than {_MAX_ADDRESS_OCTETS} octets")
    return normalised


def _unicode_local(local: str) -> str:
    lowered = unicodedata.normalize("NFC", local.lower())
    if not unicodedata.is_normalized("NFKC", lowered):
        raise InvalidAddressError(
            _FIELD, "local part contains compatibility characters (full-width letters, ligatures)"
        )
    return lowered


_EMBEDDED_ADDRESS = re.compile(r"@[^@\s.]+\.[^@\s]")
"""An ``@`` followed by a domain (a label, a dot, more): an address inside a longer id."""


def holds_an_address(text: str) -> bool:
    """Whether ``text`` is an address by the ledger's rule, or holds one (``signup-ann@x.fr``).

    A caller's own id is stored in clear in every event and on the topic, and survives the
    person's erasure (only the data key is destroyed): it must not be the address itself.
    """
    if "@" not in text:
        return False
    if _EMBEDDED_ADDRESS.search(text):
        return True
    try:
        normalise_address(text)
    except InvalidAddressError:
        return False
    return True


def _valid_address(value: str) -> str:
    try:
        normalise_address(value)
    except InvalidAddressError as error:
        raise PydanticCustomError(
            "email_address", "not a valid email address: {reason}", {"reason": error.reason}
        ) from None
    return value.strip()


EmailAddress = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ADDRESS_CHARS),
    AfterValidator(_valid_address),
]
"""An address as a command carries it: the person's own spelling (trimmed), valid by
`normalise_address`, the one address rule."""


# Real lists share few domains (a handful of mailbox providers hold most addresses), and the
# UTS 46 mapping costs tens of microseconds: remember recent answers.
@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    if not domain:
        raise InvalidAddressError(_FIELD, "has an empty domain")
    try:
        encoded = idna.encode(domain, uts46=True, std3_rules=True)
    except UnicodeError:
        # idna's own messages quote the domain, so they are not passed on.
        raise InvalidAddressError(_FIELD, "domain is not a valid domain name") from None
    # A root dot names the same domain, but web forms refuse it, and one address must have one
    # spelling.
    if encoded.endswith(b"."):
        raise InvalidAddressError(_FIELD, "domain ends with a dot")
    return encoded.decode("ascii").lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubjectHasher:
    """Turns an email address into its subject: a keyed hash that cannot be reversed by guessing.

    It also turns a caller's command id into the id stored (`command_id_for`).

    A plain hash of an address can be found by hashing candidate addresses; the server secret
    prevents that, and lets every service that holds it derive the same subject.
    """

    secret: bytes = field(repr=False)
    # HMAC-SHA256 (RFC 2104) with its two keyed SHA-256 states computed once: each address then
    # costs two state copies and two short updates instead of hmac's per-call key setup, a
    # third of the time, which a bulk check of millions of addresses feels.
    _inner: "hashlib._Hash" = field(init=False, repr=False, compare=False)
    _outer: "hashlib._Hash" = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SUBJECT_SECRET_BYTES:
            raise ConfigurationError(
                f"the subject secret must be at least {MIN_SUBJECT_SECRET_BYTES} bytes long"
            )
        key = self.secret
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in key)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in key)))

    def subject_for(self, address: str) -> str:
        """The subject of ``address``: lowercase hex HMAC-SHA256 of its normalised spelling."""
        return self._hmac(normalise_address(address).encode())

    def command_id_for(self, caller_id: str) -> str:
        """The id a command given ``caller_id`` (an Idempotency-Key, a derived id) is stored under.

        Callers put addresses in their ids, and an import derives its ids from whole lines: a
        plain hash of either is found again by hashing guesses, long after the person was erased.
        The same caller id always gives the same stored id, so idempotency holds.
        """
        digest = self._hmac(_COMMAND_ID_DOMAIN + caller_id.encode())
        return COMMAND_ID_PREFIX + digest[:_COMMAND_ID_HEX]

    def _hmac(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
