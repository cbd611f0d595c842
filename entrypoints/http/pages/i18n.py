"""Which language a page speaks, and its messages: Babel catalogs read once, in memory."""

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["DEFAULT_LANGUAGE", "LOCALE_DIR", "N_", "Catalogs", "negotiate"]

DEFAULT_LANGUAGE = "fr"
"""The operator's users and its regulator read French: a page with no preference is French."""
LOCALE_DIR = Path(__file__).with_name("locale")
_MAX_ACCEPT_LANGUAGE = 40
"""Ranges of ``Accept-Language`` looked at; a longer header is cut, never an error."""


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name, known to pybabel
    """Marks a message for the catalogs where it is defined; it is translated where shown."""
    return message


class Catalogs:
    """The languages found under a locale folder, and their translations.

    Each ``<lang>/LC_MESSAGES/<domain>.po`` is read once and compiled in memory; the domains of
    one language are merged into one `Translations`.
    """

    def __init__(self, root: Path = LOCALE_DIR) -> None:
        self._root = root
        self.languages: tuple[str, ...] = tuple(
            sorted(p.name for p in root.iterdir() if (p / "LC_MESSAGES").is_dir())
        )
        if DEFAULT_LANGUAGE not in self.languages:
            raise ValueError(f"no {DEFAULT_LANGUAGE!r} catalog under {root}")

    @cache  # noqa: B019 - one Catalogs per process; the cache lives as long as it does
    def translations(self, language: str) -> Translations:
        if language not in self.languages:
            raise ValueError(f"no catalog for language {language!r}")
        merged = Translations()
        for po_file in sorted((self._root / language / "LC_MESSAGES").glob("*.po")):
            merged.merge(_compiled(po_file, language))
        return merged


def _compiled(po_file: Path, language: str) -> Translations:
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=po_file.stem)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=po_file.stem)


def negotiate(languages: tuple[str, ...], asked: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a catalog, else the best ``Accept-Language`` range, else French."""
    if asked is not None and asked.lower() in languages:
        return asked.lower()
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for item in (accept_language or "").split(",")[:_MAX_ACCEPT_LANGUAGE]:
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in languages:
            continue
        q = _quality(params)
        # Equal weights keep the header's order: only a strictly better range replaces.
        if q > best_q:
            best, best_q = primary, q
    return best


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0
