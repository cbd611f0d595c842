"""The FastAPI application served by ``consent-ledger serve``."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from entrypoints.health import HealthCheck
from entrypoints.http import problems
from entrypoints.http.audit import auditor_router
from entrypoints.http.auth import Authenticator
from entrypoints.http.checks import checks_router
from entrypoints.http.commands import commands_router
from entrypoints.http.head import HeadAsGet
from entrypoints.http.history import history_router
from entrypoints.http.limits import BodyLimit
from entrypoints.http.pages import Pages, assets_router
from entrypoints.http.rights import rights_router
from entrypoints.http.services import ApiServices
from entrypoints.http.single_check import SingleCheckFastPath
from entrypoints.http.unsubscribe import unsubscribe_router

API_VERSION = "1.0.0"


def create_app(*, health: HealthCheck, services: ApiServices | None = None) -> FastAPI:
    """Build the app around already-wired components; nothing connects here.

    Without ``services`` only the operational endpoints exist (health, metrics).
    """
    app = FastAPI(
        title="Consent ledger",
        version=API_VERSION,
        description="Record, enforce and prove every consent decision (GDPR / CNIL). "
        "Errors are RFC 9457 problem details naming the offending field.",
        responses=problems.EVERY_ROUTE,
    )
    problems.install(app)

    @app.get("/healthz", tags=["operations"], summary="Is this process able to serve?")
    def healthz() -> JSONResponse:
        report = health.report()
        body: dict[str, Any] = {"status": "ok" if report.ok else "unavailable", **report.details}
        return JSONResponse(body, status_code=200 if report.ok else 503)

    app.mount("/metrics", make_asgi_app())
    app.include_router(assets_router())
    if services is not None:
        auth = Authenticator(services.keys)
        app.include_router(commands_router(services, auth))
        app.include_router(checks_router(services, auth))
        app.include_router(history_router(services, auth))
        app.include_router(auditor_router(services, auth, Pages()))
        app.include_router(rights_router(services, auth))
        if services.tokens is not None:
            app.include_router(unsubscribe_router(codec=services.tokens, ledger=services.ledger))
        app.add_middleware(
            BodyLimit,
            default=services.max_body_bytes,
            larger={("POST", "/v1/check"): services.max_bulk_body_bytes},
        )
        app.add_middleware(SingleCheckFastPath, services=services, auth=auth, owner=app)
    app.add_middleware(HeadAsGet)
    return app
