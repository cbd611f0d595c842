"""``POST /v1/...``: one endpoint per command; each answers the event ids and the position."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from access.apikeys import ApiKey, Scope
from entrypoints.http.answers import Answer
from entrypoints.http.auth import Authenticator
from entrypoints.http.problems import ApiProblemError, documented
from entrypoints.http.services import ApiServices
from ledger.domain import commands
from ledger.domain.commands import ONE_PERSON, Command, PersonCommand, build, new_command_id
from ledger.domain.errors import InvalidFieldError
from ledger.write.service import CommandResult
from schemas import UtcDatetime

IDEMPOTENCY_KEY_MAX = 128

ROUTES: tuple[tuple[str, type[Command], Scope, str], ...] = (
    ("/v1/purposes", commands.RegisterPurpose, Scope.ADMIN, "Register a processing purpose"),
    (
        "/v1/policy-versions",
        commands.PublishPolicyVersion,
        Scope.ADMIN,
        "Publish a privacy-policy version",
    ),
    (
        "/v1/policy-announcements",
        commands.AnnouncePolicyChange,
        Scope.ADMIN,
        "Record that a policy change was announced",
    ),
    ("/v1/consents/grant", commands.GrantConsent, Scope.WRITE, "Record a consent"),
    ("/v1/consents/confirm", commands.ConfirmConsent, Scope.WRITE, "Confirm a double opt-in"),
    ("/v1/consents/withdraw", commands.WithdrawConsent, Scope.WRITE, "Record a withdrawal"),
    ("/v1/unsubscribes", commands.Unsubscribe, Scope.WRITE, "Record an unsubscribe"),
    ("/v1/policy-acceptances", commands.AcceptPolicy, Scope.WRITE, "Record a policy acceptance"),
    ("/v1/objections", commands.RecordObjection, Scope.WRITE, "Record an objection (GDPR art. 21)"),
    ("/v1/restrictions", commands.RestrictProcessing, Scope.WRITE, "Restrict processing (art. 18)"),
    ("/v1/restrictions/lift", commands.LiftRestriction, Scope.WRITE, "Lift a restriction"),
    ("/v1/rights-requests", commands.OpenRightsRequest, Scope.WRITE, "Open a rights request"),
    (
        "/v1/rights-requests/extend",
        commands.ExtendRightsRequest,
        Scope.WRITE,
        "Extend a rights request",
    ),
    (
        "/v1/rights-requests/close",
        commands.CloseRightsRequest,
        Scope.WRITE,
        "Close a rights request",
    ),
    ("/v1/erasures", commands.EraseSubject, Scope.WRITE, "Erase a person (crypto-shredding)"),
    (
        "/v1/interactions",
        commands.RecordInteraction,
        Scope.WRITE,
        "Record an interaction (a click)",
    ),
)
"""Path, command, the scope a key needs, and the summary in the OpenAPI document."""

SERVER_SET = frozenset({"command_id", "actor"})
"""Fields the server fills: the id from Idempotency-Key, the actor from the API key."""


OPERATOR_COMMANDS = frozenset(
    {
        commands.RegisterPurpose,
        commands.PublishPolicyVersion,
        commands.OpenRightsRequest,
        commands.ExtendRightsRequest,
        commands.CloseRightsRequest,
        commands.EraseSubject,
    }
)
"""Commands of the controller's operations (the catalog, rights requests); the others record
what the sender's people did."""


class CommandAccepted(Answer):
    """A command stored: its events and where they stand in the ledger."""

    command_id: str
    """The command's id: the Idempotency-Key sent, or a new UUID."""
    subject: str
    """The person's subject (``@catalog`` for the catalog's commands)."""
    event_ids: list[str]
    """The ids of the events recorded (none new for a retry)."""
    position: int
    """The ledger position of the last event: pass it to a check as ``min_position``."""
    duplicate: bool
    """Whether this was a retry of a command already recorded (nothing new appended)."""


def request_model(command: type[Command]) -> type[BaseModel]:
    """The command's fields as a request body, ``occurred_at`` optional (default: now)."""
    fields: dict[str, Any] = {}
    for name, info in command.model_fields.items():
        if name in SERVER_SET:
            continue
        if name == "occurred_at":
            fields[name] = (UtcDatetime | None, Field(None, description=info.description))
        else:
            fields[name] = (info.annotation, info)
    model: type[BaseModel] = create_model(
        f"{command.__name__}Request",
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra=ONE_PERSON if issubclass(command, PersonCommand) else None,
        ),
        __doc__=command.__doc__,
        **fields,
    )
    return model


def accepted(result: CommandResult) -> JSONResponse:
    body = CommandAccepted(
        command_id=result.command_id,
        subject=result.subject,
        event_ids=[str(event_id) for event_id in result.event_ids],
        position=result.position,
        duplicate=result.duplicate,
    )
    return JSONResponse(body.model_dump(), status_code=200 if result.duplicate else 201)


def commands_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(responses=documented(401, 403, 409, 413, 422, 503))
    for path, command, scope, summary in ROUTES:
        _add(router, services, auth, path=path, command=command, scope=scope, summary=summary)
    return router


def _add(
    router: APIRouter,
    services: ApiServices,
    auth: Authenticator,
    *,
    path: str,
    command: type[Command],
    scope: Scope,
    summary: str,
) -> None:
    body_model = request_model(command)

    # Async: validating is quick, and the wait for the batch's commit holds no thread.
    async def record(
        body: body_model,  # type: ignore[valid-type]
        key: Annotated[ApiKey, Depends(auth.require(scope))],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=IDEMPOTENCY_KEY_MAX,
                description="Retrying with the same key records once and answers the same.",
            ),
        ] = None,
    ) -> JSONResponse:
        data = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        if data.get("occurred_at") is None:
            data["occurred_at"] = datetime.now(UTC)
        try:
            built = build(
                command,
                data,
                command_id=idempotency_key or new_command_id(),
                actor=f"api-key:{key.key_id}",
            )
        except InvalidFieldError as error:
            if error.field == "command_id":
                raise ApiProblemError(
                    422,
                    "invalid-field",
                    "A field of the request is invalid",
                    detail=f"Idempotency-Key: {error.reason}",
                    field="Idempotency-Key",
                ) from None
            raise
        return accepted(await services.ledger.record(built))

    router.add_api_route(
        path,
        record,
        methods=["POST"],
        summary=summary,
        status_code=201,
        response_model=CommandAccepted,
        responses={
            200: {
                "model": CommandAccepted,
                "description": "A retry of a recorded command: nothing new appended",
            },
            201: {"description": "Recorded"},
        },
        tags=["operator" if command in OPERATOR_COMMANDS else "sender"],
        name=command.__name__,
    )
