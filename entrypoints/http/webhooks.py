"""``/v1/webhooks``: endpoints told of every consent change, and what was sent to them."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from access.apikeys import Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.services import MAX_POSITION, ApiServices
from ledger.webhooks.store import Delivery, Endpoint, WebhookStore
from schemas import EVENT_CLASSES, Slug

WEBHOOK_ID = Path(pattern=r"^wh_[0-9a-f]{32}$", description="The endpoint's id.")
# A URL is printable ASCII (RFC 3986: anything else is percent-encoded): no NUL, no control or
# bidi character reaches the store or a log.
_Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[!-.0-~][!-~]*$")]
_EventType = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]{1,63}$")]


class NewWebhook(BaseModel):
    """An endpoint to tell of consent changes from now on."""

    model_config = ConfigDict(extra="forbid")

    url: _Url = Field(description="Where deliveries are POSTed (http or https).")
    event_types: list[_EventType] = Field(
        default_factory=list,
        max_length=64,
        description="Event types to send (e.g. ConsentWithdrawn); empty: every event about a "
        "person.",
    )
    purposes: list[Slug] = Field(
        default_factory=list,
        max_length=64,
        description="Purposes to send events of; empty: every purpose. Events that name no "
        "purpose (an unsubscribe from everything, an erasure, a complaint) go to every endpoint.",
    )

    @field_validator("event_types")
    @classmethod
    def check_known(cls, event_types: list[str]) -> list[str]:
        unknown = [name for name in event_types if name not in EVENT_CLASSES]
        if unknown:
            msg = f"not an event type: {', '.join(unknown)}"
            raise ValueError(msg)
        return event_types


class WebhookAnswer(BaseModel):
    """An endpoint told of consent changes: what it is sent and how its deliveries go."""

    webhook_id: str = Field(description="The endpoint's id.")
    url: str = Field(description="Where deliveries are POSTed.")
    event_types: list[str] = Field(description="Event types sent; empty: every one.")
    purposes: list[str] = Field(description="Purposes sent; empty: every one.")
    status: Literal["active", "disabled"] = Field(description="Whether deliveries go on.")
    disabled_reason: str | None = Field(
        description="Why disabled: by_request, or failing_for_longer_than_the_retry_period."
    )
    created_at: datetime = Field(description="When the endpoint was registered.")
    position: int = Field(description="The last ledger position sent (or not concerning it).")
    retrying: bool = Field(description="A delivery failed and waits to be sent again.")


class CreatedWebhook(WebhookAnswer):
    """An endpoint just registered, with its signing secret (shown this once only)."""

    secret: str = Field(
        description="The signing secret (whsec_...), shown once: verify each delivery's "
        "webhook-signature with it (Standard Webhooks)."
    )


class DeliveryAnswer(BaseModel):
    """One event sent to an endpoint: its attempts and how the last one went."""

    delivery_id: str = Field(description="The webhook-id header: the same on every attempt.")
    position: int = Field(description="The event's ledger position.")
    event_id: str = Field(description="The event sent.")
    event_type: str = Field(description="Its type.")
    status: Literal["delivered", "retrying", "failed"] = Field(
        description="delivered: answered 2xx; retrying: failed, to be sent again; failed: "
        "given up after the retry period, the endpoint disabled."
    )
    attempts: int = Field(description="Attempts made so far.")
    response_status: int | None = Field(description="The HTTP status of the last attempt.")
    error: str | None = Field(description="Why the last attempt failed, if it did.")
    last_attempt_at: datetime = Field(description="When it was last sent.")


class Redelivery(BaseModel):
    """Where to start sending events again to an endpoint."""

    model_config = ConfigDict(extra="forbid")

    from_position: int = Field(
        ge=1, le=MAX_POSITION, description="Send again every event from this ledger position on."
    )


def _answer(endpoint: Endpoint) -> dict[str, object]:
    return {
        "webhook_id": endpoint.webhook_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "purposes": list(endpoint.purposes),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
        "position": endpoint.cursor,
        "retrying": endpoint.attempts > 0,
    }


def _delivery(delivery: Delivery) -> DeliveryAnswer:
    return DeliveryAnswer(
        delivery_id=delivery.delivery_id,
        position=delivery.position,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        response_status=delivery.response_status,
        error=delivery.error,
        last_attempt_at=datetime.fromisoformat(delivery.last_attempt_at),
    )


def _unknown() -> ApiProblemError:
    return ApiProblemError(404, "unknown-webhook", "No webhook has this id", field="webhook_id")


def webhooks_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(
        tags=["sender"],
        responses=documented(401, 403, 404, 422, 503),
        dependencies=[Depends(auth.require(Scope.ADMIN))],
    )
    store: WebhookStore = services.webhooks

    def found(webhook_id: str) -> Endpoint:
        endpoint = store.get(webhook_id)
        if endpoint is None:
            raise _unknown()
        return endpoint

    @router.post(
        "/v1/webhooks",
        status_code=201,
        response_model=CreatedWebhook,
        summary="Register an endpoint; deliveries start with the next event stored",
    )
    def create(body: NewWebhook) -> dict[str, object]:
        endpoint = store.register(
            url=body.url,
            event_types=body.event_types,
            purposes=body.purposes,
            cursor=services.ledger.store.head(),
            at=datetime.now(UTC),
        )
        return _answer(endpoint) | {"secret": endpoint.secret}

    @router.get("/v1/webhooks", response_model=list[WebhookAnswer], summary="Every endpoint")
    def endpoints() -> list[dict[str, object]]:
        return [_answer(endpoint) for endpoint in store.endpoints()]

    @router.get("/v1/webhooks/{webhook_id}", response_model=WebhookAnswer, summary="One endpoint")
    def one(webhook_id: Annotated[str, WEBHOOK_ID]) -> dict[str, object]:
        return _answer(found(webhook_id))

    @router.post(
        "/v1/webhooks/{webhook_id}/disable",
        response_model=WebhookAnswer,
        summary="Stop deliveries (redelivery starts them again)",
    )
    def disable(webhook_id: Annotated[str, WEBHOOK_ID]) -> dict[str, object]:
        if not store.disable(webhook_id, reason="by_request"):
            raise _unknown()
        return _answer(found(webhook_id))

    @router.delete(
        "/v1/webhooks/{webhook_id}",
        status_code=204,
        summary="Delete an endpoint and its log",
        responses={204: {"description": "Deleted, with its deliveries' log; no body"}},
    )
    def delete(webhook_id: Annotated[str, WEBHOOK_ID]) -> Response:
        if not store.delete(webhook_id):
            raise _unknown()
        return Response(status_code=204)

    @router.get(
        "/v1/webhooks/{webhook_id}/deliveries",
        response_model=list[DeliveryAnswer],
        summary="The latest deliveries to an endpoint, newest first",
    )
    async def deliveries(
        webhook_id: Annotated[str, WEBHOOK_ID],
        limit: Annotated[int, Query(ge=1, le=1000, description="How many.")] = 100,
    ) -> list[DeliveryAnswer]:
        await run_in_threadpool(found, webhook_id)
        rows = await run_in_threadpool(store.deliveries, webhook_id, limit=limit)
        return [_delivery(row) for row in rows]

    @router.post(
        "/v1/webhooks/{webhook_id}/redeliver",
        response_model=WebhookAnswer,
        status_code=202,
        summary="Send again every event from a ledger position on; the endpoint is active again",
    )
    def redeliver(webhook_id: Annotated[str, WEBHOOK_ID], body: Redelivery) -> dict[str, object]:
        if not store.rewind(webhook_id, after=body.from_position - 1):
            raise _unknown()
        return _answer(found(webhook_id))

    return router
