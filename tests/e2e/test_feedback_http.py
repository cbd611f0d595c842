"""``POST /v1/feedback`` on the embedded default: complaints and bounces as a sender sees them."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from access.apikeys import Scope
from tests.e2e.test_http_api import Api
from tests.feedback_samples import LAYOUTS, RFC5965_EXAMPLE, arf, dsn, original_message

KIM = "kim@example.org"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _write(api: Api, path: str, body: dict[str, Any], scope: Scope = Scope.WRITE) -> Any:
    response = api.post(path, body, scope)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(tmp_path / "var")
    for purpose, basis, marketing in (
        ("newsletter", "consent", True),
        ("invoices", "contract", False),
    ):
        _write(
            api,
            "/v1/purposes",
            {
                "purpose": purpose,
                "legal_basis": basis,
                "description": purpose,
                "direct_marketing": marketing,
                "occurred_at": T0.isoformat(),
            },
            Scope.ADMIN,
        )
    _write(
        api,
        "/v1/policy-versions",
        {"version": "v1", "text_sha256": "a" * 64, "effective_at": T0.isoformat()},
        Scope.ADMIN,
    )
    yield api
    api.close()


def _grant(api: Api, purpose: str = "newsletter", **extra: Any) -> str:
    body = {"address": KIM, "purpose": purpose, "policy_version": "v1"} | extra
    subject: str = _write(api, "/v1/consents/grant", body)["subject"]
    return subject


def _post(api: Api, report: bytes, media: str = "message/rfc822") -> Any:
    headers = {"Authorization": f"Bearer {api.keys[Scope.WRITE]}", "Content-Type": media}
    return api.client.post("/v1/feedback", content=report, headers=headers)


def _check(api: Api, subject: str, purpose: str = "newsletter") -> dict[str, Any]:
    api.feed()
    response = api.get("/v1/check", subject=subject, purpose=purpose)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _link(api: Api, subject: str, **claims: Any) -> str:
    token = api.services.tokens.issue(subject=subject, **claims)
    return f"<https://ledger.example/u/{token}>, <mailto:unsub@sender.example>"


def _events(api: Api, subject: str, event_type: str) -> list[Any]:
    return [e for e in api.services.ledger.history(subject) if e.event_type == event_type]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("feedback_type", ["abuse", "fraud", "virus", "other"])
def test_a_complaint_in_every_layout_refuses_direct_marketing_as_complained(
    api: Api, layout: str, feedback_type: str
) -> None:
    subject = _grant(api)
    _grant(api, "invoices")
    original = original_message(list_unsubscribe=_link(api, subject, campaign_id="spring-2026"))

    answer = _post(api, arf(feedback_type, original, layout=layout))

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["kind"], body["status"], body["subjects"]) == ("complaint", "recorded", [subject])
    (event,) = _events(api, subject, "ComplaintReceived")
    assert event.feedback_type.value == feedback_type
    assert event.campaign_id == "spring-2026"
    assert event.original_message_id == "<spring-2026.42@sender.example>"
    assert event.source.value == "complaint_loop"
    assert event.provider
    assert event.user_agent
    check = _check(api, subject)
    assert (check["allowed"], check["reason"], check["denied_by"]) == (
        False,
        "complained",
        "complaint",
    )
    # Not a withdrawal, and not direct marketing: the invoices still go.
    assert not _events(api, subject, "ConsentWithdrawn")
    assert _check(api, subject, "invoices")["allowed"] is True


def test_a_not_spam_report_is_recorded_and_changes_nothing(api: Api) -> None:
    subject = _grant(api)
    answer = _post(api, arf("not-spam", original_message(subject_header=subject)))
    assert answer.status_code == 201, answer.text
    (event,) = _events(api, subject, "ComplaintReceived")
    assert event.feedback_type.value == "not-spam"
    check = _check(api, subject)
    assert (check["allowed"], check["reason"], check["denied_by"]) == (True, None, None)


def test_the_same_report_twice_records_once(api: Api) -> None:
    subject = _grant(api)
    report = arf("abuse", original_message(subject_header=subject))
    first, second = _post(api, report), _post(api, report)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["status"] == "duplicate"
    assert second.json()["event_ids"] == first.json()["event_ids"]
    assert len(_events(api, subject, "ComplaintReceived")) == 1


def test_the_rfc_example_is_attributed_by_its_recipient_once_the_ledger_knows_them(
    api: Api,
) -> None:
    raw = RFC5965_EXAMPLE.read_bytes()
    stranger = _post(api, raw)
    assert stranger.status_code == 202
    assert (stranger.json()["status"], stranger.json()["reason"]) == (
        "rejected",
        "unknown_recipient",
    )
    known = _write(
        api,
        "/v1/consents/grant",
        {"address": "user@example.com", "purpose": "newsletter", "policy_version": "v1"},
    )["subject"]
    answer = _post(api, raw)
    assert answer.status_code == 201, answer.text
    (event,) = _events(api, known, "ComplaintReceived")
    assert (event.provider, event.user_agent) == ("mail.example.com", "SomeGenerator/1.0")
    assert event.arrival_date.isoformat() == "2005-03-08T18:00:00+00:00"


def test_a_multipart_report_body_is_read_with_its_content_type(api: Api) -> None:
    subject = _grant(api)
    raw = arf("abuse", original_message(subject_header=subject))
    head, _, body = raw.partition(b"\r\n\r\n")
    content_type = next(
        line.split(b": ", 1)[1] for line in head.split(b"\r\n") if line.startswith(b"Content-Type")
    ).decode()
    answer = _post(api, body, content_type)
    assert answer.status_code == 201, answer.text
    assert answer.json()["subjects"] == [subject]


MALFORMED = {
    "not_a_report": b"From: a@b.example\r\nSubject: hi\r\n\r\nhello",
    "unknown_report_type": arf("abuse", original_message(), report_type="disposition-notification"),
    "no_feedback_fields": arf(None, original_message()),
    "not_a_complaint": arf("auth-failure", original_message()),
    "unattributable": arf("abuse", None),
    "unknown_recipient": arf("abuse", original_message(), layout="yahoo"),
}


@pytest.mark.parametrize("reason", sorted(MALFORMED))
def test_a_report_that_records_nothing_is_kept_with_its_reason_and_counted_once(
    api: Api, reason: str
) -> None:
    report = MALFORMED[reason]
    answers = [_post(api, report), _post(api, report)]
    for answer in answers:
        assert answer.status_code == 202, answer.text
        assert (answer.json()["status"], answer.json()["reason"]) == ("rejected", reason)
    assert api.services.feedback.store.reject_counts() == {reason: 1}


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\xff\xfe garbage", b"Content-Type: multipart/report\r\n\r\n--x--", b"\r\n" * 50],
)
def test_garbage_is_rejected_never_a_server_error(api: Api, body: bytes) -> None:
    for media in ("message/rfc822", 'multipart/report; boundary="x"', "multipart/report"):
        answer = _post(api, body, media)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "rejected"


def test_another_media_type_is_a_415_naming_the_header(api: Api) -> None:
    answer = _post(api, b"{}", "application/json")
    assert answer.status_code == 415
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "Content-Type"


def test_a_hard_bounce_suppresses_email_as_deliverability_until_a_confirmed_consent(
    api: Api,
) -> None:
    subject = _grant(api)
    answer = _post(api, dsn([(KIM, "failed", "5.1.1")], original_message()))
    assert answer.status_code == 201, answer.text
    (event,) = _events(api, subject, "AddressUndeliverable")
    assert (event.kind.value, event.status, event.source.value) == (
        "hard_bounce",
        "5.1.1",
        "bounce",
    )
    # The diagnostic quotes the address: it is sealed, never in clear in the event.
    assert KIM not in event.model_dump_json()
    check = _check(api, subject)
    assert (check["reason"], check["denied_by"]) == ("undeliverable", "deliverability")
    assert _check(api, subject, "invoices")["reason"] == "undeliverable"

    _grant(api, double_opt_in="pending")
    assert _check(api, subject)["reason"] == "undeliverable"
    _write(api, "/v1/consents/confirm", {"subject": subject, "purpose": "newsletter"})
    assert _check(api, subject)["allowed"] is True


def test_soft_bounces_count_and_the_limit_within_the_window_suppresses(api: Api) -> None:
    subject = _grant(api)
    answers = [
        _post(api, dsn([(KIM, "delayed", "4.2.2")], original_message(), nonce=str(n)))
        for n in range(1, 4)
    ]
    assert [a.json()["status"] for a in answers] == ["counted", "counted", "recorded"]
    (event,) = _events(api, subject, "AddressUndeliverable")
    assert (event.kind.value, event.soft_bounces) == ("soft_bounces", 3)
    assert _check(api, subject)["reason"] == "undeliverable"


def test_a_dsn_that_reports_no_failure_records_nothing(api: Api) -> None:
    subject = _grant(api)
    answer = _post(api, dsn([(KIM, "delivered", "2.0.0")], original_message()))
    assert (answer.json()["status"], answer.json()["reason"]) == ("rejected", "no_failure")
    assert _check(api, subject)["allowed"] is True
