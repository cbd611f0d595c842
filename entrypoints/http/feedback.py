"""``POST /v1/feedback``: a mailbox provider's complaint (ARF) or bounce (DSN), as it came."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from access.apikeys import Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.services import ApiServices
from ledger.feedback.intake import COUNTED, DUPLICATE, RECORDED, Outcome
from ledger.feedback.parsing import with_content_type

MAX_FEEDBACK_BYTES = 2 * 1024 * 1024
"""A report carries the original message, attachments aside: 2 MiB is plenty."""
MEDIA_TYPES = ("message/rfc822", "multipart/report")
_STATUS_CODES = {RECORDED: 201, DUPLICATE: 200, COUNTED: 202}


class FeedbackAnswer(BaseModel):
    """What became of a report."""

    report_sha256: str = Field(description="SHA-256 of the report as received: its identity.")
    kind: Literal["complaint", "bounce", "unknown"] = Field(
        description="An ARF complaint, a DSN bounce, or unknown when the body is neither."
    )
    status: Literal["recorded", "duplicate", "counted", "rejected"] = Field(
        description="recorded: events appended (201); duplicate: the same report was recorded "
        "before, nothing new (200); counted: soft bounces below the limit, no event yet (202); "
        "rejected: kept in the reject store with its reason, nothing recorded (202)."
    )
    reason: str | None = Field(
        description="Why a report was rejected: not_a_report, unknown_report_type, "
        "no_feedback_fields, not_a_complaint (an auth-failure report), no_failure (a DSN "
        "that reports no failure), unattributable (no link token, subject header or "
        "address), unknown_recipient (an address the ledger does not know), invalid_field."
    )
    subjects: list[str] = Field(description="The persons the events are about.")
    event_ids: list[str] = Field(
        description="The events recorded (of a duplicate: those first recorded)."
    )
    position: int | None = Field(
        description="Ledger position of the last event: pass it to a check as min_position."
    )


def _answer(outcome: Outcome) -> JSONResponse:
    body = FeedbackAnswer(
        report_sha256=outcome.report_sha256,
        kind=outcome.kind,
        status=outcome.status,
        reason=outcome.reason,
        subjects=list(outcome.subjects),
        event_ids=list(outcome.event_ids),
        position=outcome.position,
    )
    return JSONResponse(body.model_dump(), status_code=_STATUS_CODES.get(outcome.status, 202))


def feedback_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["sender"], responses=documented(401, 403, 413, 415, 503))
    intake = services.feedback

    @router.post(
        "/v1/feedback",
        summary="Record a complaint (ARF, RFC 5965) or a bounce (DSN, RFC 3464)",
        description="The body is the report: the whole message as message/rfc822, or its "
        "multipart/report entity (boundary in Content-Type). A complaint records "
        "ComplaintReceived (reason complained; a not-spam report changes nothing), a hard "
        "bounce AddressUndeliverable, soft bounces count towards it. The recipient is found "
        "from the original message: its List-Unsubscribe token, its X-Consent-Subject header, "
        "or a recipient address the ledger knows. The same report twice records once.",
        response_model=FeedbackAnswer,
        status_code=201,
        responses={
            200: {
                "model": FeedbackAnswer,
                "description": "The same report was recorded before: nothing new",
            },
            202: {
                "model": FeedbackAnswer,
                "description": "Counted (soft bounces below the limit) or rejected",
            },
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in MEDIA_TYPES
                },
            }
        },
    )
    async def receive(
        request: Request, _: Annotated[object, Depends(auth.require(Scope.WRITE))]
    ) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        media = content_type.partition(";")[0].strip().lower()
        if media not in MEDIA_TYPES:
            raise ApiProblemError(
                415,
                "unsupported-media-type",
                "A report is message/rfc822 or multipart/report",
                detail=f"Content-Type: {media or 'none'} is not one of {', '.join(MEDIA_TYPES)}",
                field="Content-Type",
            )
        body = await request.body()
        raw = body if media == "message/rfc822" else with_content_type(body, content_type)
        plan = await run_in_threadpool(intake.plan, raw)
        return _answer(await intake.receive(plan))

    return router
