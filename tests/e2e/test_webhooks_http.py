"""``/v1/webhooks`` as an operator uses it: register, list, disable, redeliver, delete."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from access.apikeys import Scope
from tests.e2e.test_http_api import Api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    opened = Api(tmp_path / "var")
    yield opened
    opened.close()


def _create(api: Api, body: dict[str, Any]) -> Any:
    return api.post("/v1/webhooks", body, Scope.ADMIN)


def test_an_endpoint_is_registered_with_a_secret_shown_once_then_listed(api: Api) -> None:
    created = _create(
        api,
        {
            "url": "https://hooks.example/consent",
            "event_types": ["ConsentWithdrawn", "ComplaintReceived"],
            "purposes": ["newsletter"],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert (body["status"], body["retrying"]) == ("active", False)
    listed = api.get("/v1/webhooks", Scope.ADMIN)
    assert listed.status_code == 200
    (only,) = listed.json()
    assert "secret" not in only
    assert only["event_types"] == ["ComplaintReceived", "ConsentWithdrawn"]


def test_disable_redeliver_and_delete(api: Api) -> None:
    hook = _create(api, {"url": "http://127.0.0.1:9/x"}).json()
    path = f"/v1/webhooks/{hook['webhook_id']}"
    disabled = api.post(f"{path}/disable", {}, Scope.ADMIN)
    assert (disabled.json()["status"], disabled.json()["disabled_reason"]) == (
        "disabled",
        "by_request",
    )
    again = api.post(f"{path}/redeliver", {"from_position": 1}, Scope.ADMIN)
    assert again.status_code == 202, again.text
    assert (again.json()["status"], again.json()["position"]) == ("active", 0)
    assert api.get(f"{path}/deliveries", Scope.ADMIN).json() == []
    headers = api.auth(Scope.ADMIN)
    assert api.client.delete(path, headers=headers).status_code == 204
    gone = api.client.delete(path, headers=headers)
    assert gone.status_code == 404
    assert gone.json()["field"] == "webhook_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example/x"}, "url"),
        ({"url": "https://hooks.example/x", "event_types": ["NoSuchEvent"]}, "event_types"),
        ({"url": "https://hooks.example/x", "purposes": ["Not A Slug"]}, "purposes.0"),
        ({"url": "https://hooks.example/x", "secret": "mine"}, "secret"),
    ],
)
def test_a_bad_registration_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    answer = _create(api, body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field


def test_webhooks_need_the_admin_scope(api: Api) -> None:
    answer = api.post("/v1/webhooks", {"url": "https://hooks.example/x"}, Scope.WRITE)
    assert answer.status_code == 403
    assert api.get("/v1/webhooks/wh_" + "0" * 32, Scope.ADMIN).status_code == 404


def test_every_field_of_the_sender_endpoints_is_described_in_openapi(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    models = (
        "FeedbackAnswer",
        "NewWebhook",
        "WebhookAnswer",
        "CreatedWebhook",
        "DeliveryAnswer",
        "Redelivery",
    )
    undescribed = [
        f"{model}.{name}"
        for model in models
        for name, field in schemas[model]["properties"].items()
        if not field.get("description")
    ]
    assert undescribed == []
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/feedback", "/v1/webhooks", "/v1/webhooks/{webhook_id}/redeliver"):
        for operation in paths[path].values():
            problems = [
                status
                for status, answer in operation["responses"].items()
                # 431 is answered before the app, in plain text (see problems.EVERY_ROUTE).
                if status.startswith(("4", "5"))
                and status != "431"
                and "application/problem+json" not in answer.get("content", {})
            ]
            assert problems == [], (path, problems)
