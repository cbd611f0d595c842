"""Data-subject rights over HTTP: a person's export, the decision at a past time, open requests."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from access.apikeys import ApiKey, Scope
from entrypoints.http.answers import DecisionAt, PersonExport, RightsRequests
from entrypoints.http.auth import Authenticator
from entrypoints.http.history import SUBJECT
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.services import ApiServices
from ledger.rights.point_in_time import decision_at
from ledger.rights.receipts import export_document, person_log
from projections.errors import ProjectionUnavailableError
from projections.rights import OpenRequest, summarise
from schemas import Channel, UtcDatetime


def _unknown() -> ApiProblemError:
    return ApiProblemError(404, "unknown-subject", "No event was ever recorded for this person")


def _open_requests(services: ApiServices) -> list[OpenRequest]:
    """The open requests of the projection next to the store (same SQLite file or schema)."""
    try:
        return services.open_requests()
    except ProjectionUnavailableError as error:
        raise ApiProblemError(
            503,
            "projection-unavailable",
            "The projection of rights requests cannot be read",
            detail=error.cause,
            headers={"Retry-After": "5"},
        ) from None


def rights_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(
        responses=documented(401, 403, 404, 422, 503),
    )
    auditor = Depends(auth.require(Scope.AUDIT))
    checker_or_auditor = Depends(auth.require(Scope.CHECK, Scope.AUDIT))
    admin_or_auditor = Depends(auth.require(Scope.ADMIN, Scope.AUDIT))

    @router.get(
        "/v1/rights-requests",
        summary="Open data-subject rights requests, soonest due first, with counts by right "
        "(also the gauges consent_ledger_rights_requests_open and _overdue)",
        tags=["operator"],
        responses={200: {"model": RightsRequests, "description": "The open requests"}},
    )
    def rights_requests(
        key: Annotated[ApiKey, admin_or_auditor],
        overdue: Annotated[bool, Query(description="Only the overdue ones.")] = False,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        requests = _open_requests(services)
        return {
            "as_of": now.isoformat(),
            "requests": [r.to_json(now) for r in requests if r.overdue(now) or not overdue],
            "summary": summarise(requests, now=now),
        }

    @router.get(
        "/v1/persons/{subject}/export",
        summary="Everything about a person (GDPR art. 15 and 20): events decrypted, consent "
        "receipts (ISO/IEC TS 27560) and the proof bundle, or why it is pending",
        tags=["auditor"],
        responses={200: {"model": PersonExport, "description": "The export"}},
    )
    async def export(
        subject: Annotated[str, SUBJECT], key: Annotated[ApiKey, auditor]
    ) -> JSONResponse:
        def build() -> dict[str, Any]:
            if not services.ledger.history(subject):
                raise _unknown()
            with services.audit_lock:
                return export_document(
                    services.ledger, subject, proofs=services.proofs(), now=datetime.now(UTC)
                )

        return JSONResponse(await run_in_threadpool(build))

    @router.get(
        "/v1/persons/{subject}/decision",
        summary="Was sending allowed at a time, and why: replayed from the log with the policy "
        "version, its text hash and the evidence of the deciding event",
        tags=["auditor"],
        responses={200: {"model": DecisionAt, "description": "The decision"}},
    )
    def decision(
        subject: Annotated[str, SUBJECT],
        key: Annotated[ApiKey, checker_or_auditor],
        purpose: Annotated[
            str, Query(min_length=1, max_length=64, description="The purpose asked about.")
        ],
        channel: Annotated[Channel, Query(description="The channel asked about.")] = Channel.EMAIL,
        at: Annotated[
            UtcDatetime | None,
            Query(description="An ISO 8601 time with its zone (default: now)."),
        ] = None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        when = now if at is None else at
        if when > now:
            raise ApiProblemError(
                422, "invalid-field", "at must not be in the future: the log ends now", field="at"
            )
        log = person_log(services.ledger, subject)
        if not any(event.subject == subject for event, _ in log):
            raise _unknown()
        answer = decision_at(log, subject=subject, purpose=purpose, channel=channel, at=when)
        return answer.to_json()

    return router
