"""Suppression lists to move between providers: every active suppression, and the address where
the person is not erased.

Read from the projection's ``suppression`` table next to the store (the same SQLite file or
schema), in the ledger's order; the address comes from the person's own sealed events.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from ledger.sidecar import Tables
from ledger.write.service import Ledger
from schemas import PersonalData

COLUMNS = ("subject", "scope", "reason", "since", "address")


@dataclass(frozen=True, slots=True)
class Suppression:
    subject: str
    scope: str
    """``*`` (everything), a purpose, ``list:<id>``, ``#erased`` or ``#undeliverable``."""
    reason: str
    since: str
    address: str | None
    """None where the person was erased (or never gave one)."""


def _address(ledger: Ledger, subject: str) -> str | None:
    address = None
    for event in ledger.history(subject, decrypt=True):
        if isinstance(event.personal, PersonalData) and event.personal.address is not None:
            address = event.personal.address
        elif event.event_type == "SubjectErased":
            address = None
    return address


def suppressions(tables: Tables, ledger: Ledger) -> Iterator[Suppression]:
    """Every active suppression, oldest first."""
    rows = tables.run(
        "select subject, scope, reason, since from {suppression} where active"
        " order by last_position, subject, scope"
    )
    addresses: dict[str, str | None] = {}
    for subject, scope, reason, since in rows:
        if subject not in addresses:
            addresses[subject] = _address(ledger, subject)
        yield Suppression(str(subject), str(scope), str(reason), str(since), addresses[subject])


def to_csv(rows: Iterator[Suppression]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.subject, row.scope, row.reason, row.since, row.address or ""])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def to_ndjson(rows: Iterator[Suppression]) -> Iterator[str]:
    for row in rows:
        yield (
            json.dumps(
                dict(
                    zip(
                        COLUMNS,
                        (row.subject, row.scope, row.reason, row.since, row.address),
                        strict=True,
                    )
                )
            )
            + "\n"
        )
