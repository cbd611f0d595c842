"""Writes the auditors' catalogs (audit.po, fr and en) from the messages the code marks.

Run after adding a message: it keeps every translation already in fr/audit.po, gives English
its own id, and lists the French messages still to translate (it never invents one).
"""

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po
from jinja2 import Environment, FileSystemLoader

ROOT = Path(__file__).resolve().parents[1] / "entrypoints"
LOCALE = ROOT / "http" / "pages" / "locale"
TEMPLATES = "http/pages/templates/**.html"
SHARED = ("common", "recipient")
HEADER = "# The auditors' pages: search, dossier, downloads (written by scripts/audit_catalogs.py)."


def audit_messages() -> list[str]:
    # Babel's Jinja extractor skips a template it cannot parse: compile them first, so a
    # syntax error stops this script instead of dropping that template's translations.
    environment = Environment(
        loader=FileSystemLoader(ROOT / "http" / "pages" / "templates"), autoescape=True
    )
    environment.add_extension("jinja2.ext.i18n")
    environment.filters["when"] = str
    for name in environment.list_templates():
        environment.get_template(name)
    found: list[str] = []
    for file, _line, message, _comments, _context in extract_from_dir(
        ROOT,
        method_map=[(TEMPLATES, "jinja2"), ("**.py", "python")],
        options_map={TEMPLATES: {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}},
    ):
        text = message if isinstance(message, str) else message[0]
        if "audit" in file and text not in found:
            found.append(text)
    return found


def known(lang: str, domain: str) -> dict[str, str]:
    path = LOCALE / lang / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id}


def main() -> int:
    shared = set().union(*(known("fr", d) for d in SHARED))
    messages = [m for m in audit_messages() if m not in shared]
    french = known("fr", "audit")
    missing = [m for m in messages if not french.get(m)]
    for lang in ("fr", "en"):
        catalog = Catalog(
            locale=lang,
            domain="audit",
            project="consent-ledger",
            header_comment=HEADER,
            fuzzy=False,
        )
        for message in messages:
            catalog.add(message, message if lang == "en" else french.get(message, ""))
        with (LOCALE / lang / "LC_MESSAGES" / "audit.po").open("wb") as handle:
            write_po(handle, catalog, omit_header=False, sort_output=False, width=100)
    for message in missing:
        print(f"to translate: {message}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
