"""``POST /v1/links``: a campaign's links in one call, read back as a mail client would."""

import json
import re
from collections.abc import Iterator
from email import message_from_string, policy
from pathlib import Path

import pytest

from access.apikeys import Scope
from ledger.links.tokens import ONE_CLICK_BODY
from schemas import UnsubscribeClicked
from tests.e2e.test_http_api import Api

NDJSON = {"Content-Type": "application/x-ndjson"}
URI_LIST = re.compile(r"^<([^<>]+)>(?:, <([^<>]+)>)*$")
"""RFC 2369: a comma-separated list of URIs in angle brackets."""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(tmp_path / "var")
    yield api
    api.close()


def links(
    api: Api, lines: list[object] | str, scope: Scope = Scope.LINKS
) -> list[dict[str, object]]:
    body = lines if isinstance(lines, str) else "".join(json.dumps(x) + "\n" for x in lines)
    answer = api.client.post("/v1/links", content=body, headers=api.auth(scope) | NDJSON)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


def test_each_line_gets_its_rfc_8058_headers_and_links_in_order(api: Api) -> None:
    address = "Kim@Example.org"
    answers = links(
        api,
        [
            {
                "address": address,
                "purpose": "newsletter",
                "campaign_id": "c1",
                "message_id": "<1@x>",
            },
            {"address": address, "subject": "crm-1"},
            {"subject": "crm-2", "list": "weekly", "campaign_id": "c1"},
            "just a string",
            {"subject": "crm-3", "purpose": "newsletter", "colour": "blue"},
        ],
    )
    assert len(answers) == 5
    assert address.lower() not in json.dumps(answers).lower()
    assert answers[1] == {
        "line": 2,
        "error": "give exactly one of subject or address",
        "field": "subject",
    }
    assert answers[3]["line"] == 4
    assert answers[4]["field"] == "colour"
    codec = api.services.tokens
    for answer, (subject, purpose, list_id) in (
        (answers[0], (api.services.hasher.subject_for(address), "newsletter", None)),
        (answers[2], ("crm-2", None, "weekly")),
    ):
        headers = message_from_string(
            f"List-Unsubscribe: {answer['list_unsubscribe']}\r\n"
            f"List-Unsubscribe-Post: {answer['list_unsubscribe_post']}\r\n\r\n",
            policy=policy.SMTP,
        )
        assert headers["List-Unsubscribe-Post"] == ONE_CLICK_BODY
        uris = URI_LIST.match(str(headers["List-Unsubscribe"]))
        assert uris is not None
        assert uris.group(1) == answer["unsubscribe_url"]
        assert str(answer["unsubscribe_url"]).startswith(f"{api.settings.link_base_url}/u/")
        token = str(answer["unsubscribe_url"]).rsplit("/", 1)[1]
        claim = codec.verify(token)
        assert (claim.subject, claim.purpose, claim.list_id) == (subject, purpose, list_id)
        preferences = str(answer["preferences_url"]).rsplit("/p/", 1)[1]
        assert codec.for_use("preferences").verify(preferences).subject == subject


def test_a_link_it_made_unsubscribes_with_one_click(api: Api) -> None:
    [answer] = links(api, [{"subject": "crm-9", "purpose": "newsletter", "campaign_id": "c9"}])
    path = str(answer["unsubscribe_url"]).removeprefix(api.settings.link_base_url)
    clicked = api.client.post(
        path, content=ONE_CLICK_BODY, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert clicked.status_code == 200
    [event] = [e for e in api.services.ledger.history("crm-9") if isinstance(e, UnsubscribeClicked)]
    assert (event.purpose, event.campaign_id) == ("newsletter", "c9")


def test_a_campaign_of_thousands_of_lines_streams_one_answer_per_line(api: Api) -> None:
    body = "".join(
        json.dumps({"subject": f"crm-{n}", "purpose": "newsletter", "message_id": f"<{n}@x>"})
        + "\n"
        for n in range(5000)
    )
    answers = links(api, body + "\n" + "x" * 5000 + "\n")
    assert len(answers) == 5001
    assert all("unsubscribe_url" in a for a in answers[:5000])
    assert answers[5000]["field"] == "line"


def test_links_need_a_key_with_the_links_scope(api: Api) -> None:
    body = json.dumps({"subject": "crm-1"}) + "\n"
    assert api.client.post("/v1/links", content=body, headers=NDJSON).status_code == 401
    for scope in (Scope.CHECK, Scope.WRITE, Scope.AUDIT, Scope.ADMIN):
        answer = api.client.post("/v1/links", content=body, headers=api.auth(scope) | NDJSON)
        assert answer.status_code == 403, scope
    wrong = api.client.post(
        "/v1/links", content=body, headers=api.auth(Scope.LINKS) | {"Content-Type": "text/csv"}
    )
    assert (wrong.status_code, wrong.json()["field"]) == (415, "Content-Type")


def test_a_confirm_line_also_gets_its_double_opt_in_link(api: Api) -> None:
    answers = links(
        api,
        [
            {"subject": "crm-5", "purpose": "newsletter", "confirm": True},
            {"subject": "crm-6", "list": "weekly", "confirm": True},
        ],
    )
    link = str(answers[0]["confirm_url"]).rsplit("/c/", 1)[1]
    claim = api.services.tokens.for_use("confirm").verify(link)
    assert (claim.subject, claim.purpose) == ("crm-5", "newsletter")
    assert answers[1] == {"line": 2, "error": "true (with a purpose) or false", "field": "confirm"}
