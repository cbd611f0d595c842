"""The FastAPI application served by ``consent-ledger serve``."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from entrypoints.health import HealthCheck


def create_app(*, health: HealthCheck) -> FastAPI:
    """Build the app around already-wired components; nothing connects here."""
    app = FastAPI(title="Consent ledger", version="0.1.0")

    @app.get("/healthz", tags=["operations"], summary="Is this process able to serve?")
    def healthz() -> JSONResponse:
        report = health.report()
        body: dict[str, Any] = {"status": "ok" if report.ok else "unavailable", **report.details}
        return JSONResponse(body, status_code=200 if report.ok else 503)

    app.mount("/metrics", make_asgi_app())
    return app
