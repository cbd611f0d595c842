"""Who a person is to the ledger: a normalised email address and its keyed hash, the subject.

The same key derives the ids that commands are stored under, so that no stored id can be traced
back to the caller's text (which may hold an address) without it.
"""

import hashlib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import idna

from ledger.domain.errors import ConfigurationError, InvalidAddressError

__all__ = ["COMMAND_ID_PREFIX", "MIN_SUBJECT_SECRET_BYTES", "SubjectHasher", "normalise_address"]

MIN_SUBJECT_SECRET_BYTES = 32
"""The shortest secret `SubjectHasher` accepts: as long as the HMAC-SHA256 output."""

_MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1
_MAX_ADDRESS_OCTETS = 254  # RFC 5321 path limit of 256, less the angle brackets
_FIELD = "address"
_SHA256_BLOCK = 64

COMMAND_ID_PREFIX = "kc1:"
"""What every stored command id starts with: a keyed hash of the caller's id, version 1."""
# Hashed before the caller's id: no normalised address holds a NUL, so a command id's hash
# never equals the subject of an address, even when the caller's id is that address.
_COMMAND_ID_DOMAIN = b"consent-ledger/command-id\0"
_COMMAND_ID_HEX = 32  # 128 bits: ids only need to differ within one person's commands


def normalise_address(address: str) -> str:
    """Return the one spelling of ``address`` the ledger hashes, or raise `InvalidAddressError`.

    Surrounding whitespace is dropped, the local part is lowercased (in NFC, so the composed and
    decomposed spellings of a letter agree) and the domain is IDNA-encoded (UTS #46, as browsers
    do) to lowercase ASCII. The ledger compares addresses case-insensitively so that an
    unsubscribe always matches the address that subscribed, even if a mail server would not.

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
    local = local.lower() if local.isascii() else unicodedata.normalize("NFC", local.lower())
    if len(local.encode()) > _MAX_LOCAL_OCTETS:
        raise InvalidAddressError(_FIELD, f"local part is longer than {_MAX_LOCAL_OCTETS} octets")
    normalised = f"{local}@{_ascii_domain(domain)}"
    if len(normalised.encode()) > _MAX_ADDRESS_OCTETS:
        raise InvalidAddressError(_FIELD, f"is longer than {_MAX_ADDRESS_OCTETS} octets")
    return normalised


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
