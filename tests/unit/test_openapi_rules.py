"""The rules of the OpenAPI document, for every route there is and every route added later:
each field and parameter described with an example, each operation tagged for one of the four
users, each error answer a problem+json with its schema."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.settings import Mode, Settings

USERS = {"recipient", "sender", "auditor", "operator"}
PROBLEM = "application/problem+json"
PROBLEM_STATUSES = {"400", "401", "403", "404", "409", "410", "413", "415", "422", "500", "503"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = Path(tmp_path_factory.mktemp("openapi")) / "var"
    services = build_api(Settings(mode=Mode.EMBEDDED, data_dir=data_dir))
    app = create_app(health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services)
    yield app.openapi()
    services.close()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _properties(schema: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of ``schema`` and of the object schemas nested in it, by dotted name."""
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}.{name}", prop
        yield from _properties(prop, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(prop.get(key), dict):
                yield from _properties(prop[key], f"{where}.{name}[]")
        for choice in prop.get("anyOf", []):
            yield from _properties(choice, f"{where}.{name}")


def _has_example(schema: dict[str, Any]) -> bool:
    return "example" in schema or bool(schema.get("examples"))


def test_every_field_of_every_schema_is_described_with_an_example(
    document: dict[str, Any],
) -> None:
    lacking = [
        where
        for name, schema in document["components"]["schemas"].items()
        for where, prop in _properties(schema, name)
        if not prop.get("description") or not _has_example(prop)
    ]
    assert lacking == []


def test_every_schema_says_what_it_is(document: dict[str, Any]) -> None:
    undescribed = [
        name
        for name, schema in document["components"]["schemas"].items()
        if not schema.get("description")
    ]
    assert undescribed == []


def test_every_parameter_is_described_with_an_example(document: dict[str, Any]) -> None:
    lacking = [
        f"{method} {path} {parameter['name']}"
        for method, path, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
        or not (_has_example(parameter) or _has_example(parameter.get("schema", {})))
    ]
    assert lacking == []


def test_every_operation_is_tagged_for_one_of_its_users_and_summarised(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        assert operation.get("summary"), (method, path)
        assert len(operation.get("tags", [])) == 1, (method, path)
        assert operation["tags"][0] in USERS, (method, path, operation["tags"])
    assert {tag["name"] for tag in document["tags"]} == USERS
    assert all(tag.get("description") for tag in document["tags"])


def test_every_error_answer_is_a_problem_with_its_schema(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"type", "title", "status"}
    for method, path, operation in _operations(document):
        for status, answer in operation["responses"].items():
            assert answer.get("description"), (method, path, status)
            if status in PROBLEM_STATUSES and path != "/healthz":
                content = answer.get("content", {})
                # A page for people may answer its error as a page too; an API call never.
                pages = {"text/html"} if not path.startswith("/v1/") else set()
                assert PROBLEM in content or set(content) <= pages, (method, path, status)
                assert set(content) - {PROBLEM} <= pages, (method, path, status)
                if PROBLEM in content:
                    schema = content[PROBLEM]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_answer_of_success_has_a_schema(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        success = {s: a for s, a in operation["responses"].items() if s.startswith("2")}
        assert success, (method, path)
        for status, answer in success.items():
            if method == "HEAD" or status == "204":  # no content, by definition (RFC 9110)
                continue
            content = answer.get("content")
            assert content, (method, path, status)
            for media, body in content.items():
                assert body.get("schema"), (method, path, status, media)
