"""One headless Chromium for the whole run; each test opens its own contexts."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.pages import chromium_path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: the test command runs as root on CI machines, where Chromium's sandbox
        # refuses to start; the pages under test are our own, served on loopback.
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()
