"""The API's documents load with the network cut: Swagger UI at /docs lists every operation of
/openapi.json, ReDoc at /redoc renders them, and neither asks any other host for anything."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.http.docs import ASSETS
from entrypoints.settings import Mode, Settings
from tests.pages import offline_context, serving_app

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[str]:
    services = build_api(Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "var"))
    app = create_app(health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services)
    try:
        with serving_app(app) as origin:
            yield origin
    finally:
        services.close()


def _operations(origin: str) -> set[tuple[str, str]]:
    paths = httpx.get(f"{origin}/openapi.json", timeout=10).json()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in METHODS
    }


def test_swagger_ui_lists_every_operation_with_the_network_cut(
    browser: Browser, origin: str
) -> None:
    expected = _operations(origin)
    with offline_context(browser, origin, javascript=True) as offline:
        page = offline.page()
        page.goto(f"{origin}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        shown = page.eval_on_selector_all(
            ".opblock",
            "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').textContent,"
            " b.querySelector('.opblock-summary-path').getAttribute('data-path')])",
        )
        tags = page.eval_on_selector_all(".opblock-tag", "tags => tags.map(t => t.dataset.tag)")
        assert offline.refused == []
    assert {(method, path) for method, path in shown} == expected
    assert set(tags) == {"recipient", "sender", "auditor", "operator"}


def test_redoc_renders_every_operation_with_the_network_cut(browser: Browser, origin: str) -> None:
    summaries = {
        operation["summary"]
        for operations in httpx.get(f"{origin}/openapi.json", timeout=10).json()["paths"].values()
        for operation in operations.values()
    }
    with offline_context(browser, origin, javascript=True) as offline:
        page = offline.page()
        page.goto(f"{origin}/redoc")
        page.wait_for_selector("[data-section-id^='tag/']", timeout=30_000)
        text = page.inner_text("body")
        assert offline.refused == []
    missing = [summary for summary in summaries if summary not in text]
    assert missing == []


def test_the_documents_assets_come_from_this_server() -> None:
    assert {p.name for p in ASSETS.iterdir()} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
    }
