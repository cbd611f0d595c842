"""Write, or with ``--check`` verify, the committed JSON Schema files of the event contract.

Usage: ``python -m schemas.generate [--check]``.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.events import (
    EVENT_CLASSES,
    ConsentGrantedV1,
    Event,
    EventBase,
    PolicyVersionPublishedV1,
    PurposeRegisteredV1,
)

JSON_DIR = Path(__file__).parent / "json"
"""Where the committed schema files live."""

_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Released versions stay published after a newer one replaces them: old events are still stored.
_LEGACY_CLASSES: tuple[type[EventBase], ...] = (
    ConsentGrantedV1,
    PolicyVersionPublishedV1,
    PurposeRegisteredV1,
)


def _render(schema: dict[str, Any]) -> str:
    return json.dumps({"$schema": _DIALECT, **schema}, indent=2, sort_keys=True) + "\n"


def _event_file_name(cls: type[EventBase]) -> str:
    fields = cls.model_fields
    return f"{fields['event_type'].default}.v{fields['schema_version'].default}.json"


def render_schemas() -> dict[str, str]:
    """Return the text of every schema file, by file name."""
    # Serialization mode describes the JSON the ledger writes, which is what consumers receive.
    files = {
        _event_file_name(cls): _render(cls.model_json_schema(mode="serialization"))
        for cls in (*EVENT_CLASSES.values(), *_LEGACY_CLASSES)
    }
    envelope = TypeAdapter(Event).json_schema(mode="serialization")
    files["Event.json"] = _render({"title": "Event", **envelope})
    return files


def _stale(directory: Path, expected: dict[str, str]) -> list[str]:
    present = {path.name for path in directory.glob("*.json")}
    stale = {
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text(encoding="utf-8") != text
    }
    return sorted(stale | (present - expected.keys()))


def stale_schemas(directory: Path = JSON_DIR) -> list[str]:
    """Return the names of the files in `directory` that are missing, differ or are unexpected."""
    return _stale(directory, render_schemas())


def write_schemas(directory: Path = JSON_DIR) -> list[str]:
    """Bring `directory` up to date; return the names of the files written or removed."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = render_schemas()
    changed = _stale(directory, expected)
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None, *, directory: Path = JSON_DIR) -> int:
    """Run the command line; return the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed files are not current"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_schemas(directory)
        if stale:
            sys.stderr.write(
                f"stale JSON Schema files in {directory}: {', '.join(stale)}\n"
                "run `python -m schemas.generate` and commit the result\n"
            )
            return 1
        return 0
    for name in write_schemas(directory):
        sys.stdout.write(f"updated {directory / name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
