"""The OpenAPI document says what the server does: every example is valid for its field, and
real answers of every JSON endpoint, errors included, validate against the documented schema."""

from typing import Any

import jsonschema_rs
import pytest

from access.apikeys import Scope
from tests.e2e.test_http_api import Api, api  # noqa: F401  (the fixture)

PROBLEM = "application/problem+json"


def _document(api: Api) -> dict[str, Any]:  # noqa: F811
    document: dict[str, Any] = api.client.get("/openapi.json").json()
    return document


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def _documented(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    answer = document["paths"][path][method]["responses"][str(status)]
    content = answer["content"]
    media = PROBLEM if PROBLEM in content else "application/json"
    schema: dict[str, Any] = content[media]["schema"]
    return schema


def test_every_example_is_valid_for_its_field(api: Api) -> None:  # noqa: F811
    document = _document(api)
    invalid: list[str] = []
    for name, schema in document["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            validator = _validator(document, {k: v for k, v in prop.items() if k != "examples"})
            invalid.extend(
                f"{name}.{field}: {example!r}"
                for example in prop.get("examples", [])
                if not validator.is_valid(example)
            )
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                validator = _validator(
                    document, {k: v for k, v in schema.items() if k != "examples"}
                )
                invalid.extend(
                    f"parameter {parameter['name']}: {example!r}"
                    for example in schema.get("examples", [])
                    if not validator.is_valid(example)
                )
    assert invalid == []


def _validates(api: Api, method: str, path: str, answer: Any) -> None:  # noqa: F811
    document = _document(api)
    schema = _documented(document, method, path, answer.status_code)
    errors = [str(e) for e in _validator(document, schema).iter_errors(answer.json())]
    assert errors == [], (method, path, answer.status_code)


def test_real_answers_validate_against_their_documented_schemas(api: Api) -> None:  # noqa: F811
    subject = "crm-1"
    granted = api.post(
        "/v1/consents/grant",
        {"subject": subject, "purpose": "newsletter", "policy_version": "v1"},
        headers={"Idempotency-Key": "g-1"},
    )
    _validates(api, "post", "/v1/consents/grant", granted)
    retried = api.post(
        "/v1/consents/grant",
        {"subject": subject, "purpose": "newsletter", "policy_version": "v1"},
        headers={"Idempotency-Key": "g-1"},
    )
    assert retried.status_code == 200
    _validates(api, "post", "/v1/consents/grant", retried)
    api.post("/v1/unsubscribes", {"subject": subject, "list_id": "weekly"})
    request_id = "9a3c2f0e-3d3b-4d5e-8c6f-0a1b2c3d4e5f"
    api.post(
        "/v1/rights-requests", {"subject": subject, "right": "access", "request_id": request_id}
    )
    api.feed()
    api.seal()
    position = api.services.ledger.store.head()

    answers = {
        ("get", "/healthz"): api.client.get("/healthz"),
        ("get", "/v1/check"): api.get("/v1/check", purpose="newsletter", subject=subject),
        ("post", "/v1/subjects"): api.post(
            "/v1/subjects", {"address": "ann@example.org"}, Scope.CHECK
        ),
        ("get", "/v1/persons/{subject}"): api.get(f"/v1/persons/{subject}", Scope.WRITE),
        ("get", "/v1/persons/{subject}/history"): api.get(
            f"/v1/persons/{subject}/history", Scope.AUDIT
        ),
        ("get", "/v1/persons/{subject}/bundle"): api.get(
            f"/v1/persons/{subject}/bundle", Scope.AUDIT
        ),
        ("get", "/v1/audit/inclusion"): api.get(
            "/v1/audit/inclusion", Scope.AUDIT, position=position
        ),
        ("get", "/v1/audit/consistency"): api.get(
            "/v1/audit/consistency", Scope.AUDIT, **{"from": 1, "to": position}
        ),
        ("get", "/v1/rights-requests"): api.get("/v1/rights-requests", Scope.AUDIT),
        ("get", "/v1/persons/{subject}/export"): api.get(
            f"/v1/persons/{subject}/export", Scope.AUDIT
        ),
        ("get", "/v1/persons/{subject}/decision"): api.get(
            f"/v1/persons/{subject}/decision", Scope.AUDIT, purpose="newsletter"
        ),
    }
    for (method, path), answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        _validates(api, method, path, answer)


@pytest.mark.parametrize(
    ("method", "path", "call", "status"),
    [
        (
            "get",
            "/v1/check",
            lambda a: a.client.get("/v1/check", params={"purpose": "newsletter", "subject": "x"}),
            401,
        ),
        (
            "get",
            "/v1/check",
            lambda a: a.get("/v1/check", Scope.WRITE, purpose="newsletter", subject="x"),
            403,
        ),
        ("get", "/v1/persons/{subject}", lambda a: a.get("/v1/persons/nobody", Scope.WRITE), 404),
        (
            "post",
            "/v1/consents/grant",
            lambda a: a.post(
                "/v1/consents/grant", {"subject": "x", "purpose": "nope", "policy_version": "v1"}
            ),
            409,
        ),
        (
            "post",
            "/v1/consents/grant",
            lambda a: a.post("/v1/consents/grant", {"subject": "x", "purpose": "Bad!"}),
            422,
        ),
        (
            "post",
            "/v1/check",
            lambda a: a.client.post(
                "/v1/check", params={"purpose": "newsletter"}, headers=a.auth(Scope.CHECK)
            ),
            400,
        ),
        ("post", "/v1/check", lambda a: a.bulk_check("x", "application/pdf"), 415),
        (
            "post",
            "/v1/consents/grant",
            lambda a: a.client.post(
                "/v1/consents/grant",
                content=b"{" + b" " * 70_000 + b"}",
                headers=a.auth(Scope.WRITE) | {"Content-Type": "application/json"},
            ),
            413,
        ),
    ],
)
def test_error_answers_validate_against_the_problem_schema(
    api: Api,  # noqa: F811
    method: str,
    path: str,
    call: Any,
    status: int,
) -> None:
    answer = call(api)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    _validates(api, method, path, answer)
