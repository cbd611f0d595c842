"""Server secrets: decoded from settings, or generated once into the data directory."""

import base64
import binascii
import os
import stat
import uuid
from pathlib import Path

from ledger.domain.errors import ConfigurationError

__all__ = ["DEFAULT_SECRET_BYTES", "decode_secret", "load_or_create_secret"]

DEFAULT_SECRET_BYTES = 32
"""The length of a generated secret: an AES-256 key, or an HMAC-SHA256 key of full strength."""

_OWNER_ONLY = 0o600
_GROUP_OR_OTHER = stat.S_IRWXG | stat.S_IRWXO
# A secret file is one line of base64; anything far longer is not one of ours.
_MAX_FILE_BYTES = 4096


def decode_secret(value: str | None, *, name: str, nbytes: int = DEFAULT_SECRET_BYTES) -> bytes:
    """Decode the base64 secret given in setting ``name``; it must hold exactly ``nbytes`` bytes.

    Errors name the setting, never its value.
    """
    if value is None or not value.strip():
        raise ConfigurationError(f"{name} is not set: give {nbytes} random bytes in base64")
    decoded = _decode(value.strip().encode("ascii", errors="replace"), nbytes=nbytes)
    if decoded is None:
        raise ConfigurationError(f"{name} is not {nbytes} bytes in base64")
    return decoded


def load_or_create_secret(path: Path, *, nbytes: int = DEFAULT_SECRET_BYTES) -> bytes:
    """Read the secret in ``path``, generating it first if the file does not exist yet.

    The file is created readable by its owner only and holds the base64 of ``nbytes`` random
    bytes and a newline. Processes starting together end up with the same secret: the file
    appears complete or not at all, and whoever loses the race reads the winner's. A file that
    group or others may read, or that does not hold ``nbytes`` bytes, is refused rather than used
    or replaced: replacing it would orphan everything derived from the old secret.
    """
    if not path.exists():
        _create(path, nbytes=nbytes)
    return _read(path, nbytes=nbytes)


def _create(path: Path, *, nbytes: int) -> None:
    content = base64.b64encode(os.urandom(nbytes)) + b"\n"
    # Written in full under a private name first and then linked into place: link never
    # replaces an existing file, so a reader can never see a half-written secret.
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _OWNER_ONLY)
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the secret file {path}: {error.strerror}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.link(staging, path)
    except FileExistsError:
        pass
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the secret file {path}: {error.strerror}"
        ) from None
    finally:
        staging.unlink(missing_ok=True)


def _read(path: Path, *, nbytes: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise ConfigurationError(f"cannot open the secret file {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        # Checked on the open file, so the file read is the file checked.
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigurationError(f"the secret file {path} is not a regular file")
        if mode & _GROUP_OR_OTHER:
            raise ConfigurationError(
                f"the secret file {path} is open to group or others "
                f"(mode {stat.S_IMODE(mode):04o}); make it 0600"
            )
        content = file.read(_MAX_FILE_BYTES + 1)
    decoded = _decode(content.strip(), nbytes=nbytes) if len(content) <= _MAX_FILE_BYTES else None
    if decoded is None:
        raise ConfigurationError(f"the secret file {path} does not hold {nbytes} bytes in base64")
    return decoded


def _decode(encoded: bytes, *, nbytes: int) -> bytes | None:
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    return decoded if len(decoded) == nbytes else None
