"""RFC 9457 problem details: every error the HTTP API answers, naming the offending field.

Exceptions become status codes here and nowhere else::

    RequestValidationError, InvalidFieldError   422, ``field`` names it
    RuleViolationError                          409 (a well-formed command the state refuses)
    ConcurrencyConflictError, StoreUnavailable  503 with Retry-After (retryable)
    StaleProjectionError                        503 with Retry-After (fail closed)
    CheckersBusyError                           503 with Retry-After (too many checks wait)
    the database unreachable (it restarted)     503 with Retry-After (retryable)
    ApiProblemError                                  its own status (401, 403, 404, 413, ...)
"""

from typing import Any, TypedDict, Unpack

import psycopg
from eventsourcing.persistence import InterfaceError as PersistenceInterfaceError
from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from entrypoints.http.services import CheckersBusyError
from ledger.domain.errors import (
    ConcurrencyConflictError,
    InvalidFieldError,
    LedgerError,
    RuleViolationError,
    StoreUnavailableError,
)
from projections.checker import StaleProjectionError
from schemas import error_reason

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://consent-ledger.invalid/problems/"
RETRY_AFTER_S = 1


class ProblemField(BaseModel):
    """One invalid field of the request."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    field: str
    """The field, dotted for a nested one (``personal.ip``), or the parameter or header."""
    reason: str
    """What is wrong with it; values are shown as sent, never echoed when personal."""


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer of the API (``application/problem+json``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: str
    """A URI naming the kind of problem; its last segment is stable (``invalid-field``,
    ``stale-projection``, ...)."""
    title: str
    """A short summary of the kind of problem, for a person."""
    status: int
    """The HTTP status code, repeated."""
    detail: str | None = None
    """What went wrong in this request."""
    field: str | None = None
    """The offending field, parameter or header, when one is to blame."""
    errors: list[ProblemField] | None = None
    """Every invalid field, when the request had several (422)."""


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_MEANINGS = {
    400: "The request has no body, or one that cannot be read",
    401: "No API key, or an unknown or revoked one",
    403: "The key lacks the scope of this endpoint",
    404: "Nothing is known under this name",
    405: "The method is not allowed on this path",
    409: "The ledger refuses this command in its current state",
    410: "The link expired",
    413: "The body is over this endpoint's limit",
    415: "The body's media type is not one this endpoint reads",
    422: "A field of the request is invalid (problem details name it)",
    503: "Temporarily unavailable (stale projection, database down): retry after Retry-After",
}


EVERY_ROUTE: dict[int | str, dict[str, Any]] = {
    431: {
        "description": "The request line and headers are over CONSENT_HTTP_MAX_HEADER_BYTES: "
        "answered before authentication, and the connection closed",
        "content": {
            "text/plain": {
                "schema": {"type": "string", "examples": ["Request Header Fields Too Large"]}
            }
        },
    },
    500: {
        "description": "An unexpected failure; of a command, it is that command's alone: "
        "nothing of it was recorded, the others of its batch were",
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    },
}
"""The answers any route may give (the app documents them on every operation)."""


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the problem statuses a route answers."""
    return {status: described(_MEANINGS[status]) for status in statuses}


def described(description: str) -> dict[str, Any]:
    """One OpenAPI response of problem details, said in ``description``."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def html_page(description: str) -> dict[str, Any]:
    """The OpenAPI answer of a page for people (HTML, French first)."""
    return {
        "description": description,
        "content": {
            "text/html": {
                "schema": {"type": "string", "examples": ['<!doctype html><html lang="fr">...']}
            }
        },
    }


def page_or_problem(status: int, description: str) -> dict[str, Any]:
    """An error answered as a page to a person's browser, as problem details otherwise."""
    answer = documented(status)[status]
    return {
        "description": description,
        "content": {**html_page(description)["content"], **answer["content"]},
    }


class ProblemFields(TypedDict, total=False):
    """What a problem may say beyond its status, kind and title; absent or None: not said."""

    detail: str | None
    field: str | None
    headers: dict[str, str] | None


class ApiProblemError(Exception):
    """An error answered as-is: ``status``, a stable ``kind`` and a safe ``detail``."""

    def __init__(self, status: int, kind: str, title: str, **fields: Unpack[ProblemFields]) -> None:
        super().__init__(title)
        self.status = status
        self.kind = kind
        self.title = title
        self.fields = fields


def problem(
    status: int,
    kind: str,
    title: str,
    *,
    errors: list[dict[str, str]] | None = None,
    **fields: Unpack[ProblemFields],
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status}
    for member in ("detail", "field"):
        if (value := fields.get(member)) is not None:
            body[member] = value
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers=fields.get("headers")
    )


def _field_of(loc: tuple[Any, ...]) -> str:
    # FastAPI prefixes where the value came from ("body", "query", "header", "path").
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "header", "path", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Answer every error as problem details; nothing of the request's values is echoed."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(tuple(item["loc"])), "reason": error_reason(item)}
            for item in error.errors()
        ]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        return problem(
            422,
            "invalid-field",
            "A field of the request is invalid",
            detail=f"{first['field']}: {first['reason']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(LedgerError)
    async def ledger_error(_: Request, error: LedgerError) -> JSONResponse:
        if isinstance(error, InvalidFieldError):
            return problem(
                422,
                "invalid-field",
                "A field of the request is invalid",
                detail=str(error),
                field=error.field,
                errors=[{"field": error.field, "reason": error.reason}],
            )
        if isinstance(error, RuleViolationError):
            return problem(
                409,
                _kebab(type(error).__name__),
                "The ledger refuses this command in its current state",
                detail=str(error),
                field=getattr(error, "field", None),
            )
        if isinstance(error, ConcurrencyConflictError | StoreUnavailableError) or error.retryable:
            return _retry_later(
                _kebab(type(error).__name__),
                "Temporarily unable to record; retry with the same Idempotency-Key",
            )
        return problem(500, "ledger-error", "The ledger could not handle this request")

    @app.exception_handler(CheckersBusyError)
    async def busy(_: Request, error: CheckersBusyError) -> JSONResponse:
        return _retry_later("checks-busy", "Too many checks are waiting; retry shortly")

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    @app.exception_handler(PersistenceOperationalError)
    @app.exception_handler(PersistenceInterfaceError)
    async def database_unavailable(_: Request, error: Exception) -> JSONResponse:
        return _retry_later(
            "database-unavailable",
            "The database is unavailable; retry shortly (with the same Idempotency-Key)",
        )

    @app.exception_handler(StaleProjectionError)
    async def stale(_: Request, error: StaleProjectionError) -> JSONResponse:
        return _retry_later(
            "stale-projection",
            "The projection is behind the ledger; no answer rather than a stale one",
            detail=str(error),
        )

    @app.exception_handler(ApiProblemError)
    async def api_problem(_: Request, error: ApiProblemError) -> JSONResponse:
        return problem(error.status, error.kind, error.title, **error.fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(
            error.status_code,
            _kebab(str(error.detail)) if error.status_code != 404 else "not-found",
            str(error.detail),
            headers=dict(error.headers or {}),
        )


def _retry_later(kind: str, title: str, *, detail: str | None = None) -> JSONResponse:
    """503 with Retry-After: the request may succeed as it is, a moment later."""
    return problem(503, kind, title, detail=detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def _kebab(name: str) -> str:
    out = []
    for i, char in enumerate(name.removesuffix("Error")):
        if char.isupper() and i:
            out.append("-")
        out.append(char.lower() if char.isalnum() else "-")
    return "".join(out).strip("-") or "error"
