"""What the recipients' pages' tests share: worded purposes, a ledger, an app serving the links."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from entrypoints.http import problems
from entrypoints.http.confirm import confirm_router
from entrypoints.http.head import HeadAsGet
from entrypoints.http.pages import Pages, assets_router
from entrypoints.http.preferences import preferences_router
from entrypoints.http.recipient_rights import recipient_rights_router
from entrypoints.http.unsubscribe import unsubscribe_router
from ledger.domain.commands import GrantConsent
from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import DoubleOptIn
from tests.helpers import sqlite_ledger
from tests.pages import serving_app

KEY = {"k1": b"u" * 32}
WORDING = {
    "newsletter": {
        "fr": {
            "label": "La lettre du jeudi",
            "description": "Nos nouveautés, une fois par semaine.",
        },
        "en": {"label": "The Thursday letter", "description": "What is new, once a week."},
    },
    "offers": {
        "fr": {"label": "Les bons plans", "description": "Nos offres du moment."},
        "en": {"label": "Special offers", "description": "Our offers of the moment."},
    },
}
"""Purposes in the words a person reads, by purpose then language."""


def worded_ledger(path: Path) -> Ledger:
    """An embedded ledger whose two purposes carry French and English words."""
    return sqlite_ledger(path, purposes=tuple(WORDING), wording=WORDING)


def links_app(ledger: Ledger, codec: UnsubscribeTokenCodec) -> FastAPI:
    """The recipients' routes as ``serve`` mounts them: HEAD answered as GET, problems as JSON."""
    app = FastAPI()
    problems.install(app)
    pages = Pages()
    app.include_router(assets_router())
    app.include_router(unsubscribe_router(codec=codec, ledger=ledger, pages=pages))
    app.include_router(confirm_router(codec=codec, ledger=ledger, pages=pages))
    app.include_router(preferences_router(codec=codec, ledger=ledger, pages=pages))
    app.include_router(recipient_rights_router(codec=codec, ledger=ledger, pages=pages))
    app.add_middleware(HeadAsGet)
    return app


@contextmanager
def serving_links(ledger: Ledger, codec: UnsubscribeTokenCodec) -> Iterator[str]:
    with serving_app(links_app(ledger, codec)) as origin:
        yield origin


def grant(
    ledger: Ledger, subject: str, purpose: str = "newsletter", *, pending: bool = False
) -> None:
    """A consent to ``purpose`` under policy v1, waiting for its double opt-in if ``pending``."""
    ledger.execute(
        GrantConsent(
            subject=subject,
            purpose=purpose,
            policy_version="v1",
            double_opt_in=DoubleOptIn.PENDING if pending else DoubleOptIn.NOT_APPLICABLE,
            occurred_at=datetime.now(UTC),
        )
    )


@pytest.fixture(name="ledger")
def ledger_fixture(tmp_path: Path) -> Iterator[Ledger]:
    """An embedded ledger with worded purposes (import this fixture into a test module)."""
    ledger = worded_ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


@pytest.fixture(name="url")
def url_fixture(ledger: Ledger) -> Iterator[str]:
    """The origin of the recipients' routes served over that ledger."""
    with serving_links(ledger, UnsubscribeTokenCodec(KEY)) as base:
        yield base
