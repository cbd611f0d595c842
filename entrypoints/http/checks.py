"""``GET /v1/check`` and the streaming ``POST /v1/check``: may we send, fail-closed."""

from enum import StrEnum
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from access.apikeys import ApiKey, Scope
from entrypoints.http.answers import Answer
from entrypoints.http.auth import Authenticator
from entrypoints.http.bulk_answers import BulkAnswers, request_chunks
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.services import MAX_POSITION, ApiServices
from entrypoints.http.single_check import PURPOSE_PATTERN, single_check
from ledger.domain.identity import MAX_ADDRESS_CHARS
from schemas import SUBJECT_PATTERN, Channel

PURPOSE = Query(pattern=PURPOSE_PATTERN, description="The message's purpose.")
CHANNEL = Query(description="The message's channel.")
SUBJECT_DOC = "The person's subject (give exactly one of subject or address)."
ADDRESS_DOC = "The person's email address, hashed into their subject (or give subject)."
MIN_POSITION_DOC = "A write's position: answer only once the projection covers it."
NDJSON = "application/x-ndjson"
NDJSON_EXAMPLE = '{"subject": "crm-1", "allowed": false, "reason": "unsubscribed"}\n'
CSV_EXAMPLE = "subject,allowed,reason,error\r\ncrm-1,false,unsubscribed,\r\n"


class DuplexStreamingResponse(StreamingResponse):
    """Streams its answer while the request body is still being read.

    Starlette's own response listens for a disconnect by reading the request's messages, which
    would swallow the body the answer is computed from; a vanished client shows instead as a
    failed send, which ends the stream.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.stream_response(send)
        except OSError:
            raise ClientDisconnect from None


class InputKind(StrEnum):
    """What the bare lines of a bulk check hold."""

    SUBJECTS = "subjects"
    ADDRESSES = "addresses"


class CheckAnswer(Answer):
    """May we send to this person for this purpose on this channel, now."""

    subject: str
    """The person's subject (an address given is answered by its subject)."""
    allowed: bool
    """Whether the message may be sent."""
    reason: str | None
    """Why not (null when allowed): ``unsubscribed``, ``withdrawn``, ``never_granted``,
    ``erased``, ``objected``, ``restricted``, ``double_opt_in_pending``, ``expired``,
    ``reconsent_required``, ``unknown_purpose``."""
    denied_by: Literal["consent", "complaint", "deliverability"] | None = None
    """What kind of fact denies: a consent decision (the person's choices and rights, the
    catalog), a complaint (ARF), or deliverability (a bounced address); None when allowed."""
    covered: int
    """The ledger position this answer includes."""


def checks_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["sender"], responses=documented(401, 403, 413, 422, 503))
    needs_check = Depends(auth.require(Scope.CHECK))

    @router.get("/v1/check", response_model=CheckAnswer, summary="May we send to one person?")
    async def check_one(
        *,
        purpose: Annotated[str, PURPOSE],
        key: Annotated[ApiKey, needs_check],
        subject: Annotated[
            str | None, Query(pattern=SUBJECT_PATTERN, description=SUBJECT_DOC)
        ] = None,
        address: Annotated[
            str | None, Query(max_length=MAX_ADDRESS_CHARS, description=ADDRESS_DOC)
        ] = None,
        channel: Annotated[Channel, CHANNEL] = Channel.EMAIL,
        min_position: Annotated[
            int | None,
            Query(ge=0, le=MAX_POSITION, description=MIN_POSITION_DOC),
        ] = None,
    ) -> CheckAnswer:
        if (subject is None) == (address is None):
            raise ApiProblemError(
                422,
                "invalid-field",
                "Name the person once",
                detail="give exactly one of subject or address",
                field="subject",
            )
        return CheckAnswer(
            **await single_check(
                services,
                subject=subject,
                address=address,
                purpose=purpose,
                channel=channel,
                min_position=min_position,
            )
        )

    @router.post(
        "/v1/check",
        summary="May we send? Many people, streamed",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {
                    NDJSON: {"schema": {"type": "string", "examples": [NDJSON_EXAMPLE]}},
                    "text/csv": {"schema": {"type": "string", "examples": [CSV_EXAMPLE]}},
                },
                "description": "One answer per input line, in input order: NDJSON "
                '{"subject", "allowed", "reason"[, "address"]} or {"error"}, or CSV '
                "subject,allowed,reason,error[,address].",
            },
            **documented(400, 415),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    NDJSON: {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
                "description": "One person per line: a subject or an address (see `input`); "
                'NDJSON lines may be a JSON string or {"subject": ...} / {"address": ...}; CSV '
                "takes the first column and skips a header named subject or address.",
            }
        },
    )
    async def check_many(
        request: Request,
        *,
        purpose: Annotated[str, PURPOSE],
        key: Annotated[ApiKey, needs_check],
        channel: Annotated[Channel, CHANNEL] = Channel.EMAIL,
        min_position: Annotated[
            int | None, Query(ge=0, le=MAX_POSITION, description=MIN_POSITION_DOC)
        ] = None,
        input_kind: Annotated[
            InputKind, Query(alias="input", description="What bare lines hold.")
        ] = InputKind.SUBJECTS,
    ) -> StreamingResponse:
        media = request.headers.get("content-type", NDJSON).split(";")[0].strip().lower()
        if media not in {NDJSON, "application/json", "text/csv", "text/plain"}:
            raise ApiProblemError(
                415,
                "unsupported-media-type",
                "Send NDJSON, CSV or plain text lines",
                field="Content-Type",
            )
        if _bodiless(request):
            raise ApiProblemError(
                400, "body-required", "Send one person per line in the body", field="body"
            )
        checker = await services.checkers.lend()
        try:
            await anyio.to_thread.run_sync(
                lambda: checker.wait_until_covered(min_position=min_position),
                limiter=services.checkers.threads,
            )
        except BaseException:
            services.checkers.release(checker)
            raise
        answers = BulkAnswers(
            hasher=services.hasher,
            checker=checker,
            chunks=request_chunks(request.stream()),
            csv_in=media == "text/csv",
            addresses=input_kind is InputKind.ADDRESSES,
            release=lambda: services.checkers.release(checker),
        )
        return DuplexStreamingResponse(
            answers.render(purpose, channel, csv_out=media == "text/csv"),
            media_type="text/csv" if media == "text/csv" else NDJSON,
        )

    return router


def _bodiless(request: Request) -> bool:
    """No body at all: neither a length above zero nor a chunked one."""
    headers = request.headers
    return "transfer-encoding" not in headers and headers.get("content-length", "0") == "0"
