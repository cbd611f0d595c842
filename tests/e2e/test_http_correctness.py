"""The HTTP API says what it does: one address rule, wire values in messages, an honest OpenAPI."""

from typing import Any

import pytest

from access.apikeys import Scope
from entrypoints.http.commands import ROUTES
from tests.e2e.test_http_api import Api, api  # noqa: F401  (the fixture)

ACCENTED = ("Chloé.Bernard@Exemple.FR", "luc@exémple.fr")


def _grant(api: Api, **fields: Any) -> Any:  # noqa: F811
    return api.post(
        "/v1/consents/grant", {"purpose": "newsletter", "policy_version": "v1"} | fields
    )


@pytest.mark.parametrize("address", ACCENTED)
def test_an_accented_or_idn_address_is_recorded_under_the_ledgers_subject(
    api: Api,  # noqa: F811
    address: str,
) -> None:
    answer = _grant(api, address=address, personal={"address": address})

    assert answer.status_code == 201, answer.json()
    subject = answer.json()["subject"]
    assert subject == api.services.hasher.subject_for(address)
    assert api.post("/v1/subjects", {"address": address}, Scope.CHECK).json() == {
        "subject": subject
    }
    # The same person in another case: one address rule, case-insensitive.
    assert _grant(api, address=address.upper()).json()["subject"] == subject


@pytest.mark.parametrize("where", ["address", "personal.address"])
def test_a_bad_address_is_a_422_with_the_ledgers_reason_never_a_pattern(
    api: Api,  # noqa: F811
    where: str,
) -> None:
    bad = "jeanne@exa_mple.org"
    body = (
        {"address": bad} if where == "address" else {"subject": "p1", "personal": {"address": bad}}
    )

    answer = _grant(api, **body)

    assert answer.status_code == 422
    problem = answer.json()
    assert problem["field"] == where
    assert (
        problem["detail"]
        == f"{where}: not a valid email address: domain is not a valid domain name"
    )
    assert "pattern" not in answer.text
    assert "jeanne" not in answer.text


def test_a_grant_for_a_purpose_the_policy_version_does_not_cover_is_a_409_naming_both(
    api: Api,  # noqa: F811
) -> None:
    registered = api.post(
        "/v1/purposes",
        {"purpose": "partners", "legal_basis": "consent", "description": "Partner offers"},
        Scope.ADMIN,
    )
    assert registered.status_code == 201
    head = api.services.ledger.store.head()

    answer = _grant(api, subject="p1", purpose="partners")

    assert answer.status_code == 409
    problem = answer.json()
    assert problem["type"].endswith("/purpose-not-covered")
    assert problem["field"] == "purpose"
    assert problem["detail"] == 'purpose: policy version "v1" does not cover purpose "partners"'
    assert api.services.ledger.store.head() == head


def test_a_refusal_shows_wire_values_never_python_reprs(api: Api) -> None:  # noqa: F811
    answer = api.post(
        "/v1/consents/confirm", {"subject": "p1", "purpose": "newsletter", "channel": "email"}
    )

    assert answer.status_code == 409
    assert answer.json()["detail"] == 'purpose: no pending consent for "newsletter" on "email"'


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"subject": "p1", "personal": "ann"}, "personal", "Input should be a JSON object"),
        ({}, "command", "give exactly one of subject or address"),
        (
            {"subject": "p1", "address": "ann@example.org"},
            "command",
            "give exactly one of subject or address",
        ),
    ],
)
def test_an_invalid_field_is_explained_without_python_names(
    api: Api,  # noqa: F811
    body: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    answer = _grant(api, **body)

    assert answer.status_code == 422
    problem = answer.json()
    assert (problem["field"], problem["errors"][0]["reason"]) == (field, reason)
    for python in ("Value error", "PersonalFields", "PersonalData", "<", "instance of"):
        assert python not in answer.text


def test_head_is_answered_wherever_get_is(api: Api) -> None:  # noqa: F811
    assert api.services.tokens is not None
    token = api.services.tokens.issue(subject="p1", purpose="newsletter", campaign_id="c1")
    paths = api.client.get("/openapi.json").json()["paths"]
    gets = [path for path, operations in paths.items() if "get" in operations]
    assert "/u/{token}" in gets
    headers = api.auth(Scope.AUDIT)
    for template in [*gets, "/healthz", "/openapi.json"]:
        path = template.replace("{token}", token).replace("{subject}", "p1")
        got = api.client.get(path, headers=headers)
        head = api.client.head(path, headers=headers)

        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
    assert api.client.head(f"/u/{token}").status_code == 200


def test_head_where_there_is_no_get_is_a_405_naming_what_is_allowed(
    api: Api,  # noqa: F811
) -> None:
    answer = api.client.head("/v1/consents/grant", headers=api.auth(Scope.WRITE))

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_a_time_is_an_iso_8601_string_with_its_zone_never_a_number(api: Api) -> None:  # noqa: F811
    assert _grant(api, subject="p1", occurred_at="2026-01-02T09:00:00.125Z").status_code == 201
    decision = "/v1/persons/p1/decision"
    fractional = api.get(decision, purpose="newsletter", at="2026-01-02T09:00:00.250Z")
    assert fractional.status_code == 200, fractional.json()
    for at in ("1767344400", "2026-01-02T09:00:00"):
        refused = api.get(decision, purpose="newsletter", at=at)
        assert refused.status_code == 422
        assert refused.json()["field"] == "at"

    numeric = _grant(api, subject="p1", occurred_at=1767344400)

    assert numeric.status_code == 422
    assert numeric.json()["field"] == "occurred_at"


def _openapi(api: Api) -> dict[str, Any]:  # noqa: F811
    document: dict[str, Any] = api.client.get("/openapi.json").json()
    return document


def _request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    name = body["schema"]["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_the_openapi_document_lists_every_problem_status_a_route_answers(
    api: Api,  # noqa: F811
) -> None:
    paths = _openapi(api)["paths"]
    for path, *_ in ROUTES:
        assert {"401", "403", "409", "413", "422", "503"} <= set(paths[path]["post"]["responses"])
    assert {"400", "401", "403", "413", "415", "422", "503"} <= set(
        paths["/v1/check"]["post"]["responses"]
    )
    for path in ("/v1/persons/{subject}", "/v1/persons/{subject}/decision"):
        assert {"401", "403", "404", "422", "503"} <= set(paths[path]["get"]["responses"])
    assert {"404", "410"} <= set(paths["/u/{token}"]["post"]["responses"])
    # The server's header limit (431) and a command failing alone (500) may meet any call.
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert {"431", "500"} <= set(operation["responses"]), (method, path)


def test_the_openapi_schemas_say_what_the_server_enforces(api: Api) -> None:  # noqa: F811
    document = _openapi(api)
    grant = _request_schema(document, "/v1/consents/grant")
    assert grant["oneOf"] == [{"required": ["subject"]}, {"required": ["address"]}]
    purpose = _request_schema(document, "/v1/purposes")
    assert purpose["properties"]["direct_marketing"]["type"] == "boolean"

    answer = api.post(
        "/v1/purposes",
        {"purpose": "offers", "legal_basis": "consent", "description": "d", "direct_marketing": 0},
        Scope.ADMIN,
    )

    assert answer.status_code == 422
    assert answer.json()["field"] == "direct_marketing"


def test_a_bulk_check_without_a_body_is_a_400(api: Api) -> None:  # noqa: F811
    answer = api.client.post(
        "/v1/check", params={"purpose": "newsletter"}, headers=api.auth(Scope.CHECK)
    )

    assert answer.status_code == 400
    assert answer.json()["field"] == "body"
