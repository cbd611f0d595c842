"""C2SP signed notes with Ed25519 keys, and the C2SP tlog-checkpoint bodies they sign.

The formats are those of https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint, as
implemented by Go's golang.org/x/mod/sumdb/note: a checkpoint signed here opens there, and a
verifier key printed here is one ``note.NewVerifier`` accepts. This module imports only the
standard library, `cryptography` and `ledger.audit.tlog.verify`, so an auditor can copy it.
"""

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.audit.tlog.verify import HASH_SIZE, AuditError

__all__ = [
    "ED25519_SEED_SIZE",
    "Checkpoint",
    "CheckpointFormatError",
    "KeyFormatError",
    "MalformedNoteError",
    "NoteSigner",
    "NoteVerifier",
    "SignatureError",
    "generate_signer",
    "open_note",
    "parse_checkpoint",
    "private_key_bytes",
    "signer_from_seed",
]

ED25519_SEED_SIZE = 32
"""Length in bytes of the stored private key: the RFC 8032 seed."""

_ALG_ED25519 = b"\x01"  # C2SP signed-note signature type of Ed25519
_PUBLIC_KEY_SIZE = 32
_KEY_ID_SIZE = 4
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
# The spec asks for a cap of at least 16; Go's note.Open refuses more than 100.
_MAX_SIGNATURES = 100
_MAX_TREE_SIZE = 2**64 - 1  # tree sizes are uint64 in RFC 9162 and in Go's checkpoint parser
# Bounded so that int() never meets a number long enough to be refused or slow to parse.
_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)


class SignatureError(AuditError):
    """The note carries no valid signature by the trusted key ``key_name``."""

    def __init__(self, *, key_name: str, reason: str) -> None:
        super().__init__(f"note signed by {key_name}: {reason}")
        self.key_name = key_name


class MalformedNoteError(SignatureError):
    """The text is not (or could not become) a C2SP signed note, so nothing in it is trusted."""


class KeyFormatError(AuditError, ValueError):
    """A key name, verifier key or private seed is malformed; ``key_name`` as far as known."""

    def __init__(self, *, key_name: str, reason: str) -> None:
        super().__init__(f"key {json.dumps(key_name)}: {reason}")
        self.key_name = key_name


class CheckpointFormatError(AuditError, ValueError):
    """A checkpoint body breaks the C2SP tlog-checkpoint format; ``line`` is 1-based, 0 if none."""

    def __init__(self, *, line: int, reason: str) -> None:
        super().__init__(f"checkpoint line {line}: {reason}" if line else f"checkpoint: {reason}")
        self.line = line


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log ``origin``, its tree ``size`` and the ``root_hash`` at it."""

    origin: str
    size: int
    root_hash: bytes

    def __post_init__(self) -> None:
        if not self.origin or any(_is_control(char) for char in self.origin):
            raise CheckpointFormatError(line=1, reason="origin must be non-empty, one line")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise CheckpointFormatError(line=2, reason="tree size must be a uint64")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError(line=3, reason=f"root hash must be {HASH_SIZE} bytes")

    def body(self) -> str:
        """Return the note text: origin, decimal size, base64 root, each ending in a newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """Return the checkpoint whose `Checkpoint.body` is ``body``, or raise `CheckpointFormatError`.

    Extension lines are refused: this log never writes them, and the spec advises against them.
    """
    if not body.endswith("\n"):
        raise CheckpointFormatError(line=0, reason="must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) != 3:
        raise CheckpointFormatError(line=0, reason=f"has {len(lines)} lines, not 3")
    origin, size_text, root_text = lines
    if not _TREE_SIZE.fullmatch(size_text) or int(size_text) > _MAX_TREE_SIZE:
        raise CheckpointFormatError(line=2, reason="tree size is not a decimal uint64")
    root_hash = _decode_base64(root_text)
    if root_hash is None:
        raise CheckpointFormatError(line=3, reason="root hash is not canonical base64")
    return Checkpoint(origin, int(size_text), root_hash)


@dataclass(frozen=True)
class NoteVerifier:
    """The trusted public key ``name`` signs with: an Ed25519 ``public_key`` of 32 raw bytes."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != _PUBLIC_KEY_SIZE:
            raise KeyFormatError(key_name=self.name, reason="an Ed25519 key is 32 bytes")

    @classmethod
    def from_key(cls, vkey: str) -> "NoteVerifier":
        """Parse ``<name>+<8 hex key id>+<base64(0x01 || public key)>`` (Go's verifier key)."""
        name, _, rest = vkey.partition("+")
        key_id_hex, _, key_text = rest.partition("+")
        _check_name(name)
        if not _KEY_ID_HEX.fullmatch(key_id_hex):
            raise KeyFormatError(key_name=name, reason="key id must be 8 hex digits")
        typed_key = _decode_base64(key_text)
        if typed_key is None or not typed_key.startswith(_ALG_ED25519):
            raise KeyFormatError(key_name=name, reason="not a base64 Ed25519 verifier key")
        verifier = cls(name, typed_key[len(_ALG_ED25519) :])
        if verifier.key_id != bytes.fromhex(key_id_hex):
            raise KeyFormatError(key_name=name, reason="key id does not match name and key")
        return verifier

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id that signature lines by this key start with."""
        return _key_id(self.name, self.public_key)

    def key(self) -> str:
        """Return the verifier key string `from_key` parses."""
        return _verifier_key(self.name, self.public_key)

    def verifies(self, body: str, signature: bytes) -> bool:
        """Say whether ``signature`` (without the key id) is this key's signature of ``body``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature, body.encode("utf-8")
            )
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, eq=False)
class NoteSigner:
    """The key ``name`` signs notes with; compares by identity so keys are never compared."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def key_id(self) -> bytes:
        """First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), as C2SP recommends."""
        return _key_id(self.name, self._public_key())

    def sign(self, body: str) -> str:
        """Return the signed note: ``body``, a blank line, then this key's signature line."""
        _check_note_text(body, key_name=self.name)
        if not body.endswith("\n"):
            raise MalformedNoteError(key_name=self.name, reason="the text must end with newline")
        signature = self.private_key.sign(body.encode("utf-8"))
        encoded = base64.b64encode(self.key_id + signature).decode("ascii")
        return f"{body}\n{_SIGNATURE_PREFIX}{self.name} {encoded}\n"

    def verifier(self) -> NoteVerifier:
        """Return the verifier of this key's signatures."""
        return NoteVerifier(self.name, self._public_key())

    def verifier_key(self) -> str:
        """Return ``<name>+<8 hex key id>+<base64(0x01 || public key)>`` to publish."""
        return _verifier_key(self.name, self._public_key())

    def _public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def open_note(text: str, verifier: NoteVerifier) -> str:
    """Return the text of the signed note ``text`` once ``verifier``'s signature on it checks.

    Signatures by other keys (same name or same key id, but not both) are ignored, as the spec
    requires; a signature by the trusted key that fails makes the whole note fail. Raise
    `MalformedNoteError` for text that is not a signed note and `SignatureError` otherwise.
    """

    def malformed(reason: str) -> MalformedNoteError:
        return MalformedNoteError(key_name=verifier.name, reason=reason)

    _check_note_text(text, key_name=verifier.name)
    # The text may itself hold blank lines: the last one is the separator.
    split = text.rfind("\n\n")
    if split < 0:
        raise malformed("no blank line before the signatures")
    body, signature_block = text[: split + 1], text[split + 2 :]
    if not signature_block.endswith("\n"):
        raise malformed("the signature block must end with newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise malformed(f"more than {_MAX_SIGNATURES} signatures")
    verified = False
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise malformed("a signature line must start with an em dash and a space")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        signed = _decode_base64(encoded)
        if not _is_valid_name(name) or signed is None or len(signed) <= _KEY_ID_SIZE:
            raise malformed("a signature line must be '<name> <base64(key id || signature)>'")
        if name != verifier.name or signed[:_KEY_ID_SIZE] != verifier.key_id:
            continue
        if not verifier.verifies(body, signed[_KEY_ID_SIZE:]):
            raise SignatureError(key_name=verifier.name, reason="the signature does not verify")
        verified = True
    if not verified:
        raise SignatureError(key_name=verifier.name, reason="no signature by this key")
    return body


def generate_signer(name: str) -> NoteSigner:
    """Return a signer for ``name`` with a fresh Ed25519 key."""
    return NoteSigner(name, Ed25519PrivateKey.generate())


def signer_from_seed(name: str, seed: bytes) -> NoteSigner:
    """Return the signer for ``name`` whose private key is the 32-byte RFC 8032 ``seed``."""
    if len(seed) != ED25519_SEED_SIZE:
        raise KeyFormatError(key_name=name, reason=f"a seed is {ED25519_SEED_SIZE} bytes")
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


def private_key_bytes(signer: NoteSigner) -> bytes:
    """Return the 32-byte seed `signer_from_seed` takes back: keep it secret."""
    return signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _key_id(name: str, public_key: bytes) -> bytes:
    material = name.encode("utf-8") + b"\n" + _ALG_ED25519 + public_key
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


def _verifier_key(name: str, public_key: bytes) -> str:
    typed_key = base64.b64encode(_ALG_ED25519 + public_key).decode("ascii")
    return f"{name}+{_key_id(name, public_key).hex()}+{typed_key}"


def _is_control(char: str) -> bool:
    return char < " "


def _is_valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(char.isspace() or _is_control(char) for char in name)
        and _is_utf8(name)
    )


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise KeyFormatError(
            key_name=name, reason="a key name is non-empty, without spaces, '+' or controls"
        )


def _is_utf8(text: str) -> bool:
    # A str can hold lone surrogates, which have no UTF-8 encoding.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_note_text(text: str, *, key_name: str) -> None:
    if not _is_utf8(text) or any(_is_control(char) and char != "\n" for char in text):
        raise MalformedNoteError(
            key_name=key_name, reason="a note is UTF-8 without control characters but newline"
        )


def _decode_base64(text: str) -> bytes | None:
    """Return the bytes of canonical standard base64 ``text``, or None."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Re-encoding refuses the spellings a lenient decoder lets through (data after padding).
    if base64.b64encode(decoded).decode("ascii") != text:
        return None
    return decoded
