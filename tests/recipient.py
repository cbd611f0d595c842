"""What the recipients' pages' tests share: worded purposes, a ledger, an app serving the links."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

from entrypoints.http import problems
from entrypoints.http.confirm import confirm_router
from entrypoints.http.head import HeadAsGet
from entrypoints.http.pages import Pages, assets_router
from entrypoints.http.preferences import preferences_router
from entrypoints.http.recipient_rights import recipient_rights_router
from entrypoints.http.unsubscribe import unsubscribe_router
from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
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
