"""The browser harness can fail: axe reports a broken page, scripts stay off, the CDN is cut."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser

from tests.pages import axe_violations, offline_context, serving_app

BROKEN = (
    "<!doctype html><html><head><title>t</title></head><body>"
    '<img src="/nothing.png"><input type="text">'
    "<script>document.title = 'script ran'</script>"
    '<link rel="stylesheet" href="https://cdn.example.net/x.css">'
    "</body></html>"
)


@pytest.fixture
def origin() -> Iterator[str]:
    app = FastAPI()

    @app.get("/broken")
    def broken() -> HTMLResponse:
        return HTMLResponse(BROKEN)

    with serving_app(app) as origin:
        yield origin


def test_axe_reports_an_image_without_text_and_an_unlabelled_field(
    browser: Browser, origin: str
) -> None:
    found = {v["id"] for v in axe_violations(browser, f"{origin}/broken")}
    assert {"image-alt", "label"} <= found


def test_the_offline_context_runs_no_script_and_reaches_no_other_host(
    browser: Browser, origin: str
) -> None:
    with offline_context(browser, origin) as offline:
        page = offline.page()
        page.goto(f"{origin}/broken")
        assert page.title() == "t"
        assert offline.refused == ["https://cdn.example.net/x.css"]
