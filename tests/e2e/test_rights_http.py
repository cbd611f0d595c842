"""The rights endpoints (export, decision at a time) on the embedded default, with their scopes."""

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.settings import Mode, Settings
from ledger.audit.tlog.bundle import verify_bundle
from projections.embedded import EmbeddedProjection

POLICY_SHA = hashlib.sha256(b"policy v1").hexdigest()
SHOWN_SHA = hashlib.sha256(b"Yes, send me the newsletter").hexdigest()
KIM = "kim@example.org"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


class Api:
    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(mode=Mode.EMBEDDED, data_dir=data_dir)
        services = build_api(self.settings)
        self.services = services
        app = create_app(
            health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services
        )
        self.client = TestClient(app)
        self.keys = {scope: services.keys.create(f"k-{scope}", [scope])[1] for scope in Scope}

    def call(self, method: str, path: str, scope: Scope, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[scope]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def write(self, path: str, body: dict[str, Any], scope: Scope = Scope.WRITE) -> Any:
        response = self.call("POST", path, scope, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def close(self) -> None:
        self.client.close()
        self.services.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(tmp_path / "var")
    api.write(
        "/v1/purposes",
        {
            "purpose": "newsletter",
            "legal_basis": "consent",
            "description": "The monthly newsletter",
            "direct_marketing": True,
            "occurred_at": T0.isoformat(),
        },
        Scope.ADMIN,
    )
    api.write(
        "/v1/policy-versions",
        {
            "version": "v1",
            "text_sha256": POLICY_SHA,
            "effective_at": T0.isoformat(),
            "purposes": ["newsletter"],
            "occurred_at": T0.isoformat(),
        },
        Scope.ADMIN,
    )
    yield api
    api.close()


def _at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def _kim_grants(api: Api, **extra: Any) -> Any:
    """Kim's consent to the newsletter under policy v1 on day 1, with ``extra`` fields."""
    body = {"address": KIM, "purpose": "newsletter", "policy_version": "v1", "occurred_at": _at(1)}
    return api.write("/v1/consents/grant", body | extra)


def test_the_decision_at_a_past_time_says_why_with_the_policy_and_evidence(api: Api) -> None:
    granted = _kim_grants(api, evidence={"consent_text_sha256": SHOWN_SHA, "form_id": "footer"})
    subject = granted["subject"]
    api.write("/v1/unsubscribes", {"subject": subject, "occurred_at": _at(10)})
    path = f"/v1/persons/{subject}/decision"

    before = api.call("GET", path, Scope.CHECK, params={"purpose": "newsletter", "at": _at(0.5)})
    during = api.call("GET", path, Scope.AUDIT, params={"purpose": "newsletter", "at": _at(5)})
    after = api.call("GET", path, Scope.CHECK, params={"purpose": "newsletter"})

    assert before.status_code == during.status_code == after.status_code == 200
    assert (before.json()["allowed"], before.json()["reason"]) == (False, "never_granted")
    body = during.json()
    assert (body["allowed"], body["reason"]) == (True, None)
    assert body["policy"]["version"] == "v1"
    assert body["policy"]["text_sha256"] == POLICY_SHA
    assert body["deciding_event"]["event_type"] == "ConsentGranted"
    assert body["deciding_event"]["position"] == granted["position"]
    assert body["deciding_event"]["evidence"]["consent_text_sha256"] == SHOWN_SHA
    assert "address" not in str(body)
    later = after.json()
    assert (later["allowed"], later["reason"]) == (False, "unsubscribed")
    assert later["deciding_event"]["event_type"] == "UnsubscribeClicked"


def test_the_decision_endpoint_refuses_bad_times_strangers_and_other_scopes(api: Api) -> None:
    subject = api.write(
        "/v1/consents/grant",
        {"subject": "p-1", "purpose": "newsletter", "policy_version": "v1", "occurred_at": _at(1)},
    )["subject"]
    path = f"/v1/persons/{subject}/decision"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    naive = api.call(
        "GET", path, Scope.CHECK, params={"purpose": "newsletter", "at": "2025-05-01T00:00:00"}
    )
    ahead = api.call("GET", path, Scope.CHECK, params={"purpose": "newsletter", "at": future})
    assert naive.status_code == ahead.status_code == 422
    assert naive.json()["field"] == "at"
    assert naive.headers["content-type"] == "application/problem+json"
    stranger = api.call("GET", "/v1/persons/nobody/decision", Scope.CHECK, params={"purpose": "x"})
    assert stranger.status_code == 404
    assert api.call("GET", path, Scope.WRITE, params={"purpose": "newsletter"}).status_code == 403
    assert api.client.get(path, params={"purpose": "newsletter"}).status_code == 401


def test_the_export_gives_events_receipts_and_the_bundle_once_sealed(api: Api) -> None:
    subject = _kim_grants(api, personal={"ip": "203.0.113.9"})["subject"]
    path = f"/v1/persons/{subject}/export"
    assert api.call("GET", path, Scope.CHECK).status_code == 403
    assert api.call("GET", "/v1/persons/nobody/export", Scope.AUDIT).status_code == 404

    pending = api.call("GET", path, Scope.AUDIT).json()
    assert pending["proof_bundle"]["status"] == "pending"
    assert pending["events"][0]["personal"]["address"] == KIM
    assert pending["events"][0]["personal"]["ip"] == "203.0.113.9"
    (receipt,) = pending["consent_receipts"]
    assert receipt["notice"]["text_sha256"] == POLICY_SHA
    assert receipt["pii_principal_id"] == subject

    api.services.audit.sealer.seal_all()
    api.services.audit.sealer.checkpoint()
    sealed = api.call("GET", path, Scope.AUDIT).json()
    assert sealed["proof_bundle"]["status"] == "included"
    key = api.services.audit.signer.verifier_key()
    assert verify_bundle(sealed["proof_bundle"]["bundle"], verifier_key=key).entries == 1

    api.write("/v1/erasures", {"subject": subject, "occurred_at": _at(2)})
    erased = api.call("GET", path, Scope.AUDIT).json()
    assert erased["erased"] is True
    assert erased["events"][0]["personal"] == {"kind": "erased"}
    assert KIM not in str(erased)
    assert erased["consent_receipts"][0]["state"] == "erased"
    state = api.call("GET", f"/v1/persons/{subject}", Scope.WRITE).json()
    assert [(c["purpose"], c["status"]) for c in state["consents"]] == [("newsletter", "withdrawn")]


def test_open_rights_requests_are_listed_with_their_counts_and_gauges(api: Api) -> None:
    late = api.write(
        "/v1/rights-requests",
        {"subject": "asker", "right": "erasure", "occurred_at": _at(1)},
    )
    api.write(
        "/v1/rights-requests",
        {"subject": "asker", "right": "access", "request_id": str(uuid4())},
    )
    projection = EmbeddedProjection(path=api.settings.sqlite_path)
    try:
        while projection.feed_once(api.services.ledger.store):
            pass
    finally:
        projection.close()
    assert api.call("GET", "/v1/rights-requests", Scope.CHECK).status_code == 403

    everything = api.call("GET", "/v1/rights-requests", Scope.AUDIT).json()
    overdue = api.call("GET", "/v1/rights-requests", Scope.ADMIN, params={"overdue": True}).json()

    assert [r["right"] for r in everything["requests"]] == ["erasure", "access"]
    assert [r["right"] for r in overdue["requests"]] == ["erasure"]
    assert overdue["requests"][0]["due_at"] == (T0 + timedelta(days=31)).isoformat()
    assert late["subject"] == overdue["requests"][0]["subject"] == "asker"
    assert everything["summary"]["erasure"] == {"open": 1, "overdue": 1}
    assert everything["summary"]["access"] == {"open": 1, "overdue": 0}
    metrics = api.client.get("/metrics").text
    assert 'consent_ledger_rights_requests_overdue{right="erasure"} 1.0' in metrics


def test_the_app_serves_the_rights_endpoints(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/persons/{subject}/export",
        "/v1/persons/{subject}/decision",
        "/v1/rights-requests",
    ):
        assert "get" in paths[path]


def test_the_bundle_of_an_altered_store_is_a_store_tampered_problem_naming_the_position(
    api: Api, tmp_path: Path
) -> None:
    subject = _kim_grants(api)["subject"]
    api.services.audit.sealer.seal_all()
    api.services.audit.sealer.checkpoint()
    with sqlite3.connect(api.settings.sqlite_path) as conn:
        position, state = conn.execute(
            "select rowid, state from stored_events where topic like 'ConsentGranted/%'"
        ).fetchone()
        conn.execute(
            "update stored_events set state = ? where rowid = ?",
            (state.replace(b'"newsletter"', b'"newsletteR"', 1), position),
        )
    answer = api.call("GET", f"/v1/persons/{subject}/bundle", Scope.AUDIT)
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"].endswith("/store-tampered"), body
    assert f"position {position}:" in body["detail"]
    documented = api.client.get("/openapi.json").json()["paths"]["/v1/persons/{subject}/bundle"]
    assert "store-tampered" in documented["get"]["responses"]["500"]["description"]


@pytest.mark.parametrize("subject", ["kim@example.org", "signup-kim@example.fr", "Kim@Exemple.FR"])
def test_a_subject_that_holds_an_address_is_refused_naming_the_field(
    api: Api, subject: str
) -> None:
    """A subject stays in clear after an erasure: an address must come as ``address``."""
    for path, body in [
        ("/v1/consents/grant", {"purpose": "newsletter", "policy_version": "v1"}),
        ("/v1/unsubscribes", {}),
        ("/v1/erasures", {}),
    ]:
        answer = api.call(
            "POST", path, Scope.WRITE, json=body | {"subject": subject, "occurred_at": _at(1)}
        )
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["field"] == "subject", (path, answer.json())
    assert api.services.ledger.person(subject) is None
