"""The unsubscribe link opened in Chromium, JavaScript off, as a recipient would use it."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser

from entrypoints.http import problems
from entrypoints.http.unsubscribe import unsubscribe_router
from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import UnsubscribeClicked
from tests.helpers import sqlite_ledger
from tests.pages import axe_violations, offline_context, serving_app

KEY = {"k1": b"u" * 32}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = sqlite_ledger(tmp_path / "ledger.db")
    yield ledger
    ledger.close()


@pytest.fixture
def served(ledger: Ledger) -> Iterator[tuple[str, UnsubscribeTokenCodec]]:
    codec = UnsubscribeTokenCodec(KEY)
    app = FastAPI()
    problems.install(app)
    app.include_router(unsubscribe_router(codec=codec, ledger=ledger))
    with serving_app(app) as origin:
        yield origin, codec


def test_a_recipient_unsubscribes_with_the_button_with_javascript_off(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec], ledger: Ledger
) -> None:
    origin, codec = served
    token = codec.issue(subject="p-1", purpose="newsletter", campaign_id="c1")
    with offline_context(browser, origin) as offline:
        page = offline.page()
        page.goto(f"{origin}/u/{token}")
        assert ledger.history("p-1") == [], "opening the page recorded something"
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("status").inner_text().startswith("You will no longer receive")
        assert offline.refused == []
    [click] = [e for e in ledger.history("p-1") if isinstance(e, UnsubscribeClicked)]
    assert click.purpose == "newsletter"


def test_the_unsubscribe_pages_have_no_serious_accessibility_violation(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec]
) -> None:
    origin, codec = served
    token = codec.issue(subject="p-1", purpose="newsletter", campaign_id="c1")
    assert axe_violations(browser, f"{origin}/u/{token}") == []
    assert axe_violations(browser, f"{origin}/u/not-a-token") == []
