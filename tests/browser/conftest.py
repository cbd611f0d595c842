"""One headless Chromium for the browser tests; each test opens its own contexts.

Package-scoped: Playwright's sync API keeps an event loop running in this thread while it is
open, which would make every later ``asyncio.run`` of the session fail.
"""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.pages import chromium_path


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: the test command runs as root on CI machines, where Chromium's sandbox
        # refuses to start; the pages under test are our own, served on loopback.
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()
