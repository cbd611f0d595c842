"""The FastAPI application served by ``consent-ledger serve``."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from entrypoints.health import HealthCheck
from entrypoints.http import problems
from entrypoints.http.answers import Health
from entrypoints.http.audit import auditor_router
from entrypoints.http.auth import Authenticator
from entrypoints.http.checks import checks_router
from entrypoints.http.commands import commands_router
from entrypoints.http.confirm import confirm_router
from entrypoints.http.docs import TAGS, install_docs
from entrypoints.http.feedback import MAX_FEEDBACK_BYTES, feedback_router
from entrypoints.http.head import HeadAsGet
from entrypoints.http.history import history_router
from entrypoints.http.limits import BodyLimit
from entrypoints.http.links import links_router
from entrypoints.http.pages import Pages, assets_router
from entrypoints.http.preferences import preferences_router
from entrypoints.http.recipient_rights import recipient_rights_router
from entrypoints.http.rights import rights_router
from entrypoints.http.services import ApiServices
from entrypoints.http.single_check import SingleCheckFastPath
from entrypoints.http.unsubscribe import unsubscribe_router
from entrypoints.http.webhooks import webhooks_router
from entrypoints.metrics import API_PARTS, process_registry

API_VERSION = "1.0.0"


def create_app(
    *,
    health: HealthCheck,
    services: ApiServices | None = None,
    metrics: CollectorRegistry | None = None,
) -> FastAPI:
    """Build the app around already-wired components; nothing connects here.

    Without ``services`` only the operational endpoints exist (health, metrics). ``metrics``
    is what ``/metrics`` exports (default: the API's own series).
    """
    registry = process_registry(API_PARTS) if metrics is None else metrics
    app = FastAPI(
        title="Consent ledger",
        version=API_VERSION,
        description="Record, enforce and prove every consent decision (GDPR / CNIL). "
        "Errors are RFC 9457 problem details naming the offending field.",
        responses=problems.EVERY_ROUTE,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    install_docs(app)

    @app.get(
        "/healthz",
        tags=["operator"],
        summary="Is this process able to serve?",
        responses={
            200: {"model": Health, "description": "The store answers"},
            503: {"model": Health, "description": "The store does not answer"},
        },
    )
    def healthz() -> JSONResponse:
        report = health.report()
        body: dict[str, Any] = {"status": "ok" if report.ok else "unavailable", **report.details}
        return JSONResponse(body, status_code=200 if report.ok else 503)

    @app.get(
        "/metrics",
        tags=["operator"],
        summary="Prometheus metrics of this process (text exposition format)",
        response_class=Response,
        responses={
            200: {
                "description": "The series of the parts this process runs",
                "content": {
                    CONTENT_TYPE_LATEST: {
                        "schema": {
                            "type": "string",
                            "examples": [
                                'consent_ledger_checks_total{kind="single",'
                                'decision="allowed",reason="none"} 3.0\n'
                            ],
                        }
                    }
                },
            }
        },
    )
    def metrics_exposition() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(assets_router())
    if services is not None:
        auth = Authenticator(services.keys)
        app.include_router(commands_router(services, auth))
        app.include_router(checks_router(services, auth))
        app.include_router(history_router(services, auth))
        app.include_router(auditor_router(services, auth, Pages()))
        app.include_router(rights_router(services, auth))
        if services.feedback is not None:
            app.include_router(feedback_router(services, auth))
        if services.webhooks is not None:
            app.include_router(webhooks_router(services, auth))
        app.include_router(links_router(services, auth, base_url=lambda: services.link_base_url))
        if services.tokens is not None:
            pages = Pages()
            links = {"codec": services.tokens, "ledger": services.ledger, "pages": pages}
            app.include_router(unsubscribe_router(**links))
            app.include_router(confirm_router(**links))
            app.include_router(preferences_router(**links))
            app.include_router(
                recipient_rights_router(
                    **links, proofs=services.proofs, audit_lock=services.audit_lock
                )
            )
        app.add_middleware(
            BodyLimit,
            default=services.max_body_bytes,
            larger={
                ("POST", "/v1/check"): services.max_bulk_body_bytes,
                ("POST", "/v1/feedback"): MAX_FEEDBACK_BYTES,
                ("POST", "/v1/links"): services.max_bulk_body_bytes,
            },
        )
        app.add_middleware(SingleCheckFastPath, services=services, auth=auth, owner=app)
    app.add_middleware(HeadAsGet)
    return app
