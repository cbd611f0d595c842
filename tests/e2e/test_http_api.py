"""The HTTP API on the embedded default: every endpoint, its scopes and its error paths."""

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck as Hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.http.commands import ROUTES
from entrypoints.http.services import ApiServices
from entrypoints.http.single_check import SingleCheckFastPath
from entrypoints.settings import Mode, Settings
from ledger.audit.tlog.bundle import verify_bundle
from ledger.audit.tlog.note import open_note, parse_checkpoint
from ledger.audit.tlog.verify import leaf_hash, verify_consistency, verify_inclusion
from projections.embedded import EmbeddedProjection

POLICY_SHA = hashlib.sha256(b"policy v1").hexdigest()
KIM = "kim@example.org"


class Api:
    """A client of the app over a fresh embedded ledger, with a key per scope."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(mode=Mode.EMBEDDED, data_dir=data_dir, check_wait_s=0.3)
        self.services: ApiServices = build_api(self.settings)
        health = HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None)
        self.client = TestClient(create_app(health=health, services=self.services))
        self.keys = {scope: self.services.keys.create(f"k-{scope}", [scope])[1] for scope in Scope}
        self.projection = EmbeddedProjection(path=self.settings.sqlite_path)

    def auth(self, scope: Scope) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post(
        self,
        path: str,
        body: dict[str, Any],
        scope: Scope = Scope.WRITE,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.client.post(path, json=body, headers=self.auth(scope) | (headers or {}))

    def get(self, path: str, scope: Scope = Scope.CHECK, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.auth(scope))

    def bulk_check(self, content: str | bytes, media: str, **params: Any) -> Any:
        """``POST /v1/check`` for the newsletter: ``content`` sent as ``media``, a check key."""
        return self.client.post(
            "/v1/check",
            params={"purpose": "newsletter", **params},
            content=content,
            headers=self.auth(Scope.CHECK) | {"Content-Type": media},
        )

    def feed(self) -> None:
        while self.projection.feed_once(self.services.ledger.store):
            pass

    def seal(self) -> None:
        self.services.audit.sealer.seal_all()
        self.services.audit.sealer.checkpoint()

    def close(self) -> None:
        self.client.close()
        self.projection.close()
        self.services.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(tmp_path / "var")
    assert (
        api.post(
            "/v1/purposes",
            {
                "purpose": "newsletter",
                "legal_basis": "consent",
                "description": "The monthly newsletter",
                "direct_marketing": True,
            },
            Scope.ADMIN,
        ).status_code
        == 201
    )
    assert (
        api.post(
            "/v1/policy-versions",
            {
                "version": "v1",
                "text_sha256": POLICY_SHA,
                "effective_at": "2026-01-01T00:00:00Z",
                "purposes": ["newsletter"],
            },
            Scope.ADMIN,
        ).status_code
        == 201
    )
    yield api
    api.close()


def _grant(api: Api, address: str = KIM, *, headers: dict[str, str] | None = None) -> Any:
    return api.post(
        "/v1/consents/grant",
        {"address": address, "purpose": "newsletter", "policy_version": "v1"},
        headers=headers,
    )


def test_the_openapi_document_lists_every_endpoint(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    paths = document["paths"]
    for path, *_ in ROUTES:
        assert "post" in paths[path]
    for path in (
        "/v1/check",
        "/v1/subjects",
        "/v1/persons/{subject}",
        "/v1/persons/{subject}/history",
        "/v1/persons/{subject}/bundle",
        "/v1/audit/checkpoint",
        "/v1/audit/key",
        "/v1/audit/inclusion",
        "/v1/audit/consistency",
        "/audit/persons/{subject}",
        "/u/{token}",
        "/c/{token}",
    ):
        assert path in paths
    assert set(paths["/v1/check"]) == {"get", "post"}


def test_a_command_answers_its_events_and_position_and_a_retry_appends_nothing(
    api: Api,
) -> None:
    first = _grant(api, headers={"Idempotency-Key": "signup-42"})
    again = _grant(api, headers={"Idempotency-Key": "signup-42"})

    assert first.status_code == 201
    body = first.json()
    assert body["command_id"] == "signup-42"
    assert body["position"] == api.services.ledger.store.head()
    assert len(body["event_ids"]) == 1
    assert again.status_code == 200
    assert again.json() == body | {"duplicate": True}
    assert api.services.ledger.store.head() == body["position"]


def test_every_command_endpoint_records_its_event(api: Api) -> None:
    subject = "person-1"
    request_id = "9a3c2f0e-3d3b-4d5e-8c6f-0a1b2c3d4e5f"
    bodies: dict[str, dict[str, Any]] = {
        "/v1/consents/grant": {
            "subject": subject,
            "purpose": "newsletter",
            "policy_version": "v1",
            "double_opt_in": "pending",
        },
        "/v1/consents/confirm": {"subject": subject, "purpose": "newsletter"},
        "/v1/consents/withdraw": {"subject": subject, "purpose": "newsletter"},
        "/v1/unsubscribes": {"subject": subject, "campaign_id": "c-1"},
        "/v1/policy-acceptances": {"subject": subject, "version": "v1"},
        "/v1/objections": {"subject": subject, "all_direct_marketing": True},
        "/v1/restrictions": {"subject": subject},
        "/v1/restrictions/lift": {"subject": subject},
        "/v1/rights-requests": {"subject": subject, "right": "access", "request_id": request_id},
        "/v1/rights-requests/extend": {
            "subject": subject,
            "request_id": request_id,
            "due_at": datetime(2027, 3, 1, tzinfo=UTC).isoformat(),
            "reason": "many systems to search",
        },
        "/v1/rights-requests/close": {
            "subject": subject,
            "request_id": request_id,
            "outcome": "fulfilled",
        },
        "/v1/interactions": {"subject": subject, "kind": "click"},
        "/v1/erasures": {"subject": subject},
    }
    catalog = {"/v1/purposes", "/v1/policy-versions", "/v1/policy-announcements"}
    assert set(bodies) == {path for path, *_ in ROUTES} - catalog
    announced = api.post(
        "/v1/policy-announcements", {"versions": ["v1"], "channel": "site"}, Scope.ADMIN
    )
    assert announced.status_code == 201, announced.json()
    [announcement] = api.services.ledger.catalog().state.announcements
    assert (announcement.versions, announcement.channel) == (("v1",), "site")
    for path, body in bodies.items():
        answer = api.post(path, body)
        assert answer.status_code == 201, (path, answer.json())
    history = api.get(f"/v1/persons/{subject}/history", Scope.AUDIT).json()["events"]
    assert [event["event_type"] for event in history] == [
        "ConsentGranted",
        "ConsentConfirmed",
        "ConsentWithdrawn",
        "UnsubscribeClicked",
        "PolicyVersionAccepted",
        "ObjectionRecorded",
        "ProcessingRestricted",
        "RestrictionLifted",
        "RightsRequestOpened",
        "RightsRequestExtended",
        "RightsRequestClosed",
        "InteractionRecorded",
        "SubjectErased",
    ]
    positions = [event["position"] for event in history]
    assert positions == sorted(positions)
    assert positions[0] is not None
    writer = api.keys[Scope.WRITE].split("_")[1]
    assert {event["actor"] for event in history} == {f"api-key:{writer}"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"address": "kim@", "purpose": "newsletter", "policy_version": "v1"}, 422, "address"),
        ({"address": KIM, "purpose": "Bad Purpose", "policy_version": "v1"}, 422, "purpose"),
        ({"address": KIM, "purpose": "newsletter", "policy_version": "v1", "x": 1}, 422, "x"),
        ({"address": KIM, "purpose": "newsletter"}, 422, "policy_version"),
        ({"address": KIM, "purpose": "offers", "policy_version": "v1"}, 409, "purpose"),
        ({"address": KIM, "purpose": "newsletter", "policy_version": "v9"}, 409, "policy_version"),
        (
            {
                "address": KIM,
                "purpose": "newsletter",
                "policy_version": "v1",
                "occurred_at": "2026-01-01T00:00:00",
            },
            422,
            "occurred_at",
        ),
        (
            {
                "address": KIM,
                "purpose": "newsletter",
                "policy_version": "v1",
                "occurred_at": "2999-01-01T00:00:00Z",
            },
            422,
            "occurred_at",
        ),
        (
            {"subject": "a", "address": KIM, "purpose": "newsletter", "policy_version": "v1"},
            422,
            None,
        ),
    ],
)
def test_a_bad_command_is_a_problem_naming_the_field_and_writes_nothing(
    api: Api, body: dict[str, Any], status: int, field: str | None
) -> None:
    head = api.services.ledger.store.head()

    answer = api.post("/v1/consents/grant", body)

    assert answer.status_code == status, answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    if field is not None:
        assert problem["field"] == field
    assert api.services.ledger.store.head() == head


def test_a_bad_idempotency_key_is_named(api: Api) -> None:
    answer = _grant(api, headers={"Idempotency-Key": "x" * 200})
    assert answer.status_code == 422
    assert answer.json()["field"] == "Idempotency-Key"


def test_keys_and_scopes(api: Api) -> None:
    body = {"address": KIM, "purpose": "newsletter", "policy_version": "v1"}
    missing = api.client.post("/v1/consents/grant", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    forged = api.client.post(
        "/v1/consents/grant", json=body, headers={"Authorization": "Bearer clk_nope_nope"}
    )
    assert forged.status_code == 401
    wrong_secret = api.keys[Scope.WRITE][:-4] + "AAAA"
    assert (
        api.client.post(
            "/v1/consents/grant", json=body, headers={"Authorization": f"Bearer {wrong_secret}"}
        ).status_code
        == 401
    )
    assert api.post("/v1/consents/grant", body, Scope.CHECK).status_code == 403
    assert api.post("/v1/purposes", {"purpose": "x"}, Scope.WRITE).status_code == 403
    assert api.get("/v1/check", Scope.WRITE, subject="a", purpose="newsletter").status_code == 403
    assert api.get("/v1/audit/key", Scope.CHECK).status_code == 403
    assert (
        api.client.post(
            "/v1/consents/grant", json=body, headers={"X-API-Key": api.keys[Scope.WRITE]}
        ).status_code
        == 201
    )

    key_id = api.keys[Scope.WRITE].split("_")[1]
    assert api.services.keys.revoke(key_id)
    assert api.post("/v1/consents/grant", body).status_code == 401
    assert [key.active for key in api.services.keys.list() if key.key_id == key_id] == [False]


def test_keys_are_stored_hashed(api: Api) -> None:
    raw = api.settings.sqlite_path.read_bytes()
    for token in api.keys.values():
        assert token.split("_", 2)[2].encode() not in raw


def test_single_check_follows_the_consistency_token_and_fails_closed(api: Api) -> None:
    granted = _grant(api).json()
    api.feed()
    allowed = api.get(
        "/v1/check", address=KIM, purpose="newsletter", min_position=granted["position"]
    )
    assert allowed.status_code == 200
    assert allowed.json() == {
        "subject": granted["subject"],
        "allowed": True,
        "reason": None,
        "denied_by": None,
        "covered": granted["position"],
    }

    click = api.post("/v1/unsubscribes", {"address": KIM}).json()
    stale = api.get("/v1/check", address=KIM, purpose="newsletter", min_position=click["position"])
    assert stale.status_code == 503
    assert stale.headers["retry-after"] == "1"
    assert stale.json()["type"].endswith("/stale-projection")

    api.feed()
    denied = api.get("/v1/check", address=KIM, purpose="newsletter", min_position=click["position"])
    assert (denied.json()["allowed"], denied.json()["reason"]) == (False, "unsubscribed")


@pytest.mark.parametrize(
    "params",
    [
        {"purpose": "newsletter"},
        {"purpose": "newsletter", "subject": "a", "address": KIM},
        {"purpose": "Not A Slug", "subject": "a"},
        {"purpose": "newsletter", "subject": "a", "min_position": -1},
        {"purpose": "newsletter", "subject": "a", "channel": "pigeon"},
        {"purpose": "newsletter", "address": "not an address"},
    ],
)
def test_a_bad_single_check_is_a_422_naming_the_field(api: Api, params: dict[str, Any]) -> None:
    answer = api.get("/v1/check", **params)
    assert answer.status_code == 422
    assert answer.json()["field"] in {"subject", "purpose", "min_position", "channel", "address"}


@pytest.fixture
def route_only(api: Api) -> Iterator[TestClient]:
    """The same API without the single check's fast path: every check goes to the route."""
    _grant(api)
    api.feed()
    app = create_app(
        health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=api.services
    )
    fast_path: object = SingleCheckFastPath
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast_path]
    with TestClient(app) as client:
        yield client


# Valid values first and more often: most requests are answered, the rest are refusals.
CHECK_VALUES: dict[str, list[str | None]] = {
    "purpose": ["newsletter", "offers", "newsletter", "Not A Slug", "", "newsletter\n"],
    "subject": [None, None, "a", "x" * 128, "", "a b", "x" * 129],
    "address": [None, KIM, "KIM@Example.org ", "not an address", "", "a@" + "b" * 330],
    "channel": [None, "email", "sms", None, "pigeon", ""],
    "min_position": [
        *(None, "0", "1", None, "99", "-1", "1.5", "x", "9" * 19, "+1", " 1"),
        *("0" * 25 + "1", "9" * 5000),
    ],
}
ANSWERED = [
    [("purpose", "newsletter"), ("address", KIM)],
    [("purpose", "newsletter"), ("address", KIM), ("min_position", "1")],
    [("purpose", "newsletter"), ("subject", "a"), ("channel", "sms")],
    [("purpose", "offers"), ("subject", "x" * 128), ("min_position", "0")],
]


@pytest.mark.parametrize("params", ANSWERED)
def test_the_single_check_fast_path_answers_as_the_route(
    api: Api, route_only: TestClient, params: list[tuple[str, str]]
) -> None:
    fast = api.client.get("/v1/check", params=params, headers=api.auth(Scope.CHECK))
    routed = route_only.get("/v1/check", params=params, headers=api.auth(Scope.CHECK))
    assert fast.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"]
    assert fast.content == routed.content


@settings(
    max_examples=150, deadline=None, suppress_health_check=[Hypothesis.function_scoped_fixture]
)
@given(
    query=st.fixed_dictionaries(
        {name: st.sampled_from(values) for name, values in CHECK_VALUES.items()}
    ),
    scope=st.sampled_from([Scope.CHECK, Scope.CHECK, Scope.WRITE, None]),
    repeat=st.sampled_from([None, None, "purpose", "channel"]),
)
def test_the_single_check_fast_path_answers_any_query_as_the_route(
    api: Api,
    route_only: TestClient,
    query: dict[str, str | None],
    scope: Scope | None,
    repeat: str | None,
) -> None:
    """`SingleCheckFastPath` takes only what it may: every answer is the route's, to the byte."""
    params = [(name, value) for name, value in query.items() if value is not None]
    params += [(name, value) for name, value in params if name == repeat]
    headers = {} if scope is None else api.auth(scope)
    fast = api.client.get("/v1/check", params=params, headers=headers)
    routed = route_only.get("/v1/check", params=params, headers=headers)
    # Never a server error, but for failing closed on a position the projection lacks.
    assert fast.status_code < 500 or fast.json()["type"].endswith("/stale-projection")
    assert (fast.status_code, fast.headers["content-type"]) == (
        routed.status_code,
        routed.headers["content-type"],
    )
    assert fast.content == routed.content


def test_bulk_check_streams_ndjson_in_order_with_errors_in_place(api: Api) -> None:
    _grant(api)
    api.post("/v1/unsubscribes", {"address": "lea@example.org"})
    api.feed()
    lines = [KIM, "lea@example.org", "not-an-address", json.dumps({"address": "zed@example.org"})]
    answer = api.bulk_check("\n".join(lines) + "\n", "application/x-ndjson", input="addresses")
    assert answer.status_code == 200
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert [(r.get("address"), r.get("allowed"), r.get("reason")) for r in rows] == [
        (KIM, True, None),
        ("lea@example.org", False, "unsubscribed"),
        ("not-an-address", None, None),
        ("zed@example.org", False, "never_granted"),
    ]
    assert rows[2] == {"error": "address: not a valid email address", "address": "not-an-address"}


def test_bulk_check_csv_answers_to_addresses_echo_each_address(api: Api) -> None:
    subject = _grant(api).json()["subject"]
    api.feed()
    answer = api.bulk_check(
        f"address\n{KIM}\nnot-an-address\nzed@example.org\n", "text/csv", input="addresses"
    )
    assert answer.text.splitlines() == [
        "subject,allowed,reason,error,address",
        f"{subject},true,,,{KIM}",
        ",,,address: not a valid email address,not-an-address",
        f"{api.services.hasher.subject_for('zed@example.org')},false,never_granted,,zed@example.org",
    ]


def test_bulk_check_speaks_csv(api: Api) -> None:
    subject = _grant(api).json()["subject"]
    api.feed()
    answer = api.bulk_check(f"subject\n{subject}\nnobody\n", "text/csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines() == [
        "subject,allowed,reason,error",
        f"{subject},true,,",
        "nobody,false,never_granted,",
    ]


def test_bulk_check_refusals(api: Api) -> None:
    click = api.post("/v1/unsubscribes", {"address": KIM}).json()
    stale = api.bulk_check("a\n", "application/x-ndjson", min_position=click["position"])
    assert stale.status_code == 503
    assert stale.headers["retry-after"] == "1"
    wrong_type = api.bulk_check("a\n", "application/xml")
    assert wrong_type.status_code == 415
    api.feed()
    long_line = api.bulk_check("x" * 5000 + "\nok\n", "application/x-ndjson")
    rows = [json.loads(line) for line in long_line.text.splitlines()]
    assert rows[0] == {"error": "line longer than 1024 bytes"}
    assert rows[-1]["subject"] == "ok"


def test_state_history_and_personal_data_only_for_auditors(api: Api) -> None:
    subject = _grant(api).json()["subject"]
    assert api.post("/v1/subjects", {"address": "Kim@Example.org"}, Scope.CHECK).json() == {
        "subject": subject
    }

    state = api.get(f"/v1/persons/{subject}", Scope.WRITE).json()
    assert state["consents"][0] | {"since": None} == {
        "purpose": "newsletter",
        "channel": "email",
        "status": "granted",
        "policy_version": "v1",
        "since": None,
    }
    writer_view = api.get(f"/v1/persons/{subject}/history", Scope.WRITE).json()["events"][0]
    auditor_view = api.get(f"/v1/persons/{subject}/history", Scope.AUDIT).json()["events"][0]
    assert writer_view["personal"]["kind"] == "sealed"
    assert KIM not in json.dumps(writer_view)
    assert auditor_view["personal"]["address"] == KIM

    assert api.get("/v1/persons/nobody", Scope.WRITE).status_code == 404
    assert api.get("/v1/persons/nobody/history", Scope.AUDIT).status_code == 404
    assert api.get("/v1/persons/bad%20subject", Scope.WRITE).json()["field"] == "subject"


def test_checkpoint_proofs_and_bundle(api: Api) -> None:
    subject = _grant(api).json()["subject"]
    assert api.get(f"/v1/persons/{subject}/bundle", Scope.AUDIT).status_code == 404
    api.seal()
    first_size = api.services.audit.tree.size()
    api.post("/v1/unsubscribes", {"subject": subject})
    assert api.get(f"/v1/persons/{subject}/bundle", Scope.AUDIT).status_code == 409
    api.seal()

    note = api.get("/v1/audit/checkpoint", Scope.AUDIT).text
    verifier_key = api.get("/v1/audit/key", Scope.AUDIT).text.strip()
    signed = parse_checkpoint(open_note(note, api.services.audit.signer.verifier()))
    assert verifier_key == api.services.audit.signer.verifier_key()

    bundle = api.get(f"/v1/persons/{subject}/bundle", Scope.AUDIT).json()
    report = verify_bundle(bundle, verifier_key=verifier_key)
    assert not report.trusted_key_from_bundle
    assert [entry["event"]["event_type"] for entry in bundle["entries"]] == [
        "ConsentGranted",
        "UnsubscribeClicked",
    ]

    last = bundle["entries"][-1]
    proof = api.get(
        "/v1/audit/inclusion", Scope.AUDIT, position=api.services.ledger.store.head()
    ).json()
    assert proof["tree_size"] == signed.size
    verify_inclusion(
        index=proof["leaf_index"],
        size=signed.size,
        leaf=leaf_hash(base64.b64decode(last["entry"])),
        proof=[base64.b64decode(h) for h in proof["inclusion_proof"]],
        root=signed.root_hash,
    )
    older = api.services.audit.tree.checkpoints()[0]
    consistency = api.get(
        "/v1/audit/consistency", Scope.AUDIT, **{"from": first_size, "to": signed.size}
    ).json()
    verify_consistency(
        first=first_size,
        second=signed.size,
        first_root=older.root,
        second_root=signed.root_hash,
        proof=[base64.b64decode(h) for h in consistency["consistency_proof"]],
    )
    assert api.get("/v1/audit/inclusion", Scope.AUDIT, position=10_000).status_code == 404
    assert (
        api.get("/v1/audit/consistency", Scope.AUDIT, **{"from": 3, "to": 10_000}).json()["field"]
        == "to"
    )


def test_the_auditor_page_shows_the_timeline_with_proofs_without_javascript(api: Api) -> None:
    subject = _grant(api).json()["subject"]
    api.seal()
    api.post("/v1/unsubscribes", {"subject": subject})

    denied = api.client.get(f"/audit/persons/{subject}")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"].startswith("Basic")
    page = api.client.get(
        f"/audit/persons/{subject}?lang=en", auth=("auditor", api.keys[Scope.AUDIT])
    )

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<script" not in text.lower()
    assert '<html lang="en">' in text
    assert "Consent given for “The monthly newsletter” (email) through the API" in text
    assert "Unsubscribed from every marketing email" in text
    assert POLICY_SHA in text
    assert text.count("verified: leaf") == 1
    assert "not yet in a signed checkpoint" in text
    assert "Signature valid" in text
    assert KIM in text  # the audit scope reads the personal data the grant carried


def test_an_oversize_body_is_refused_before_it_is_read(api: Api) -> None:
    answer = api.client.post(
        "/v1/consents/grant",
        content=b"{" + b" " * 200_000 + b"}",
        headers=api.auth(Scope.WRITE) | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["type"].endswith("/body-too-large")


def test_a_line_no_csv_reader_takes_is_an_error_in_its_place(api: Api) -> None:
    api.feed()
    answer = api.bulk_check(b'a\rb\n"unclosed\nok\n', "text/csv")
    assert answer.status_code == 200
    lines = answer.text.splitlines()
    assert lines[0] == "subject,allowed,reason,error"
    assert lines[-1] == "ok,false,never_granted,"
    assert len(lines) == 4


def test_a_subject_with_control_characters_is_a_422_naming_it(api: Api) -> None:
    answer = api.get("/v1/check", purpose="newsletter", subject="a\x00b")
    assert answer.status_code == 422
    assert answer.json()["field"] == "subject"


def test_bulk_lines_that_are_not_subjects_are_errors_in_place_the_rest_answered(api: Api) -> None:
    api.feed()
    lines = ["p1", "a\x00b", json.dumps({"subject": "a\ud800b"}), "\x00", "p2"]
    answer = api.bulk_check(
        "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n", "application/x-ndjson"
    )
    assert answer.status_code == 200
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert [r.get("subject") for r in rows] == ["p1", None, None, None, "p2"]
    assert all(r["error"].startswith("subject:") for r in rows[1:4])


def test_a_chunked_body_over_the_limit_is_a_413_too(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"address": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    answer = api.client.post(
        "/v1/consents/grant",
        content=chunks(),
        headers=api.auth(Scope.WRITE) | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["type"].endswith("/body-too-large")


def test_a_position_beyond_what_the_database_holds_is_a_422_naming_it(api: Api) -> None:
    answer = api.get("/v1/audit/inclusion", Scope.AUDIT, position=2**63, size=2)
    assert answer.status_code == 422
    assert answer.json()["field"] == "position"
