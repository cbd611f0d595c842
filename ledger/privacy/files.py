"""Files that hold personal data: readable and writable by their owner only.

The embedded SQLite file holds the wrapped data keys and every event, and an export holds a
person's data decrypted: neither may be readable by the machine's other users.
"""

import logging
import os
import stat
from pathlib import Path

from ledger.domain.errors import ConfigurationError

__all__ = [
    "OWNER_ONLY_DIRECTORY",
    "OWNER_ONLY_FILE",
    "private_directory",
    "private_file",
    "write_private_text",
]

logger = logging.getLogger(__name__)

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIRECTORY = 0o700
_LISTED_OR_WRITTEN_BY_OTHERS = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH
# The files SQLite keeps beside a database; it creates them with the database's own mode.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> Path:
    """Create ``path`` (mode 0700), or take read and write away from group and others.

    An existing directory keeps its search bits: others may still pass through it to a
    directory of their own below (the development PostgreSQL cluster lives under ``var/``), but
    can neither list it nor create, rename or delete anything in it.
    """
    path.mkdir(mode=OWNER_ONLY_DIRECTORY, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _LISTED_OR_WRITTEN_BY_OTHERS:
        tightened = mode & ~_LISTED_OR_WRITTEN_BY_OTHERS
        _chmod(path, tightened)
        logger.warning(
            "the data directory %s was open to group or others (mode %04o); it is now %04o",
            path,
            mode,
            tightened,
        )
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty (mode 0600) if missing, else make it and its SQLite files 0600.

    An existing file is changed by name, never opened: closing any descriptor of a SQLite file
    drops every POSIX lock the process holds on it, those of its open connections included.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE))
    except FileExistsError:
        pass
    except OSError as error:
        raise ConfigurationError(f"cannot create {path}: {error.strerror}") from None
    for name in (path.name, *(path.name + suffix for suffix in _SQLITE_SIDE_FILES)):
        file = path.with_name(name)
        if file.exists() and stat.S_IMODE(file.stat().st_mode) != OWNER_ONLY_FILE:
            _chmod(file, OWNER_ONLY_FILE)
    return path


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in UTF-8, the file readable by its owner only (even one that
    existed before with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        # Before the first byte: a file that existed keeps its mode through O_CREAT.
        os.fchmod(file.fileno(), OWNER_ONLY_FILE)
        file.write(text)


def _chmod(path: Path, mode: int) -> None:
    try:
        path.chmod(mode)
    except OSError as error:
        raise ConfigurationError(
            f"cannot make {path} private (mode {mode:04o}): {error.strerror}"
        ) from None
