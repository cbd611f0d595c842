"""Headless Chromium for the pages' tests: JavaScript off, no network, and axe-core's verdict.

The browser is Debian's ``chromium`` (installed by scripts/browser.sh, which the test command
runs), driven by Playwright over the DevTools protocol; Playwright's own browsers are never
downloaded. axe-core comes from ``node_modules`` (package-lock.json pins it).
"""

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, Route

from tests.conftest import free_port

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
STARTUP_TIMEOUT_S = 10.0


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run scripts/browser.sh (make test does)")
    return path


@dataclass
class OfflineContext:
    """A browser context with JavaScript off that may reach only the server under test.

    Every request elsewhere is refused and remembered, so a test can say no page needed a CDN.
    """

    context: BrowserContext
    origin: str
    refused: list[str] = field(default_factory=list)

    def page(self) -> Page:
        return self.context.new_page()

    def _route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin or parts.scheme in ("data", "about"):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()


@contextmanager
def offline_context(
    browser: Browser, origin: str, *, javascript: bool = False, **options: Any
) -> Iterator[OfflineContext]:
    """An `OfflineContext`; ``javascript=True`` for what is not a page for people (the API's
    Swagger UI and ReDoc run on script), still with every other host cut."""
    context = browser.new_context(java_script_enabled=javascript, **options)
    offline = OfflineContext(context=context, origin=origin)
    context.route("**/*", offline._route)
    try:
        yield offline
    finally:
        context.close()


def axe_violations(browser: Browser, url: str, **options: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page at ``url``, as it renders.

    axe needs script, so it runs in a context of its own where the page's CSP is bypassed for
    the injected engine; the page itself runs nothing either way.
    """
    context = browser.new_context(bypass_csp=True, **options)
    try:
        page = context.new_page()
        page.goto(url)
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
        violations: list[dict[str, Any]] = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
    finally:
        context.close()
    return [v for v in violations if v["impact"] in SERIOUS]


@contextmanager
def serving_app(app: FastAPI) -> Iterator[str]:
    """An app served by uvicorn in a thread on a free loopback port; yields its origin."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
