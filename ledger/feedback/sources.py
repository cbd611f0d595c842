"""Reports from files: an mbox, a Maildir, ``.eml`` files, or a directory of them."""

import mailbox
from collections.abc import Iterator
from pathlib import Path

EML_SUFFIXES = frozenset({".eml", ".msg", ".txt"})


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def count_reports(path: Path) -> int:
    """How many reports `read_reports` will give (for progress); reads no message."""
    if _is_maildir(path):
        return sum(1 for folder in ("new", "cur") for _ in (path / folder).iterdir())
    if path.is_dir():
        return sum(1 for p in sorted(path.rglob("*")) if p.suffix.lower() in EML_SUFFIXES)
    if path.suffix.lower() in EML_SUFFIXES:
        return 1
    return sum(1 for line in path.open("rb") if line.startswith(b"From "))


def read_reports(path: Path) -> Iterator[bytes]:
    """Each report's raw bytes: a Maildir's messages (new, then cur), a directory's ``.eml``
    files in name order, one ``.eml`` file, or every message of an mbox."""
    if _is_maildir(path):
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.iterkeys()):
            yield box.get_bytes(key)
        return
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix.lower() in EML_SUFFIXES:
                yield file.read_bytes()
        return
    if path.suffix.lower() in EML_SUFFIXES:
        yield path.read_bytes()
        return
    messages = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in messages.iterkeys():
            yield messages.get_bytes(key)
    finally:
        messages.close()
