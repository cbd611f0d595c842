"""The API's documents for people and generators: ``/docs`` (Swagger UI) and ``/redoc``, whose
scripts and styles come from the installed ``fastapi-offline`` package (no CDN), and the
OpenAPI document completed with the problem schema, the examples and the API-key scheme."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from entrypoints.http.examples import PARAMETER_EXAMPLES, example_of
from entrypoints.http.problems import Problem

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs-assets"

TAGS: list[dict[str, str]] = [
    {
        "name": "recipient",
        "description": "The person who receives the messages: the unsubscribe link's page and "
        "its RFC 8058 one-click POST. No API key.",
    },
    {
        "name": "sender",
        "description": "The marketing sender: records consents, withdrawals and unsubscribes "
        "(write scope), asks before each message or campaign whether it may send (check "
        "scope), reads a person's state.",
    },
    {
        "name": "auditor",
        "description": "The DPO or the regulator (audit scope): a person's history, export "
        "and decision at a time, proof bundles, signed checkpoints and RFC 9162 proofs.",
    },
    {
        "name": "operator",
        "description": "Operations and the controller: purposes and policy versions (admin "
        "scope), rights requests and erasures, health and metrics.",
    },
]
"""The four users of the API: every operation carries the tag of the one it serves."""

DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Both documents run their packaged scripts (and the inline one that starts them) and reach
this server only: ReDoc's footer logo on its CDN is not fetched."""

API_KEY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (clk_...) made by `consent-ledger keys create`; also accepted "
    "as the X-API-Key header.",
}


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from the packaged assets; complete the OpenAPI document."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    title = f"{app.title}: API"
    favicon = f"{ASSETS_PATH}/favicon.png"
    pages = {
        "/docs": get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=favicon,
        ),
        "/redoc": get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        ),
    }
    for path, page in pages.items():
        app.add_api_route(
            path, _own_only(bytes(page.body)), methods=["GET"], include_in_schema=False
        )

    app.openapi = _completed(app.openapi)  # type: ignore[method-assign]


def _own_only(body: bytes) -> Callable[[], HTMLResponse]:
    """The route answering a page that may reach this server only (`DOCS_CSP`)."""

    def page() -> HTMLResponse:
        return HTMLResponse(body, headers={"Content-Security-Policy": DOCS_CSP})

    return page


def _completed(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    done: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not done:
            document = generate()
            _add_problem(document)
            _add_examples(document)
            _add_security(document)
            done.update(document)
        return done

    return openapi


def _add_problem(document: dict[str, Any]) -> None:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["Problem"] = schema


def _add_examples(document: dict[str, Any]) -> None:
    """Give every field and parameter without an example the one of `examples`."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        for field, prop in schema.get("properties", {}).items():
            found, example = example_of(name, field)
            if found and "examples" not in prop and "example" not in prop:
                prop["examples"] = [example]
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.setdefault("schema", {})
                name = parameter["name"]
                if name in PARAMETER_EXAMPLES and "examples" not in schema:
                    schema["examples"] = [PARAMETER_EXAMPLES[name]]


def _add_security(document: dict[str, Any]) -> None:
    """Name the API key on every operation that answers 401 without one."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["ApiKey"] = API_KEY_SCHEME
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"ApiKey": []}]
