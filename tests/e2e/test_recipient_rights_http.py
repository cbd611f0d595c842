"""Rights from the preference centre over real HTTP: download, erasure request, objection."""

import re

import httpx
import pytest

from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import ObjectionRecorded, RightsRequestClosed, RightsRequestOpened
from tests.recipient import KEY, grant, ledger_fixture, serving_links, url_fixture, worded_ledger  # noqa: F401 - fixtures

NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@pytest.fixture(autouse=True)
def subscribed(ledger: Ledger) -> None:
    grant(ledger, "p-1")


@pytest.fixture
def token() -> str:
    return UnsubscribeTokenCodec(KEY).for_use("preferences").issue(subject="p-1")


def form(url: str, token: str, right: str) -> dict[str, str]:
    page = httpx.get(f"{url}/p/{token}").text
    assert f'action="/p/{token}/rights?lang=fr"' in page
    match = NONCE.search(page)
    assert match is not None
    return {"nonce": match.group(1), "right": right}


def test_download_my_data_is_the_export_and_records_an_access_request_once(
    url: str, ledger: Ledger, token: str
) -> None:
    body = form(url, token, "download")
    for _ in range(2):
        answer = httpx.post(f"{url}/p/{token}/rights", data=body)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["content-disposition"] == 'attachment; filename="my-data.json"'
        assert answer.headers["cache-control"] == "no-store"
    export = answer.json()
    assert export["subject"] == "p-1"
    assert len(export["consent_receipts"]) == 1
    assert "newsletter" in str(export["consent_receipts"][0])
    assert "proof_bundle" in export
    history = ledger.history("p-1")
    [opened] = [e for e in history if isinstance(e, RightsRequestOpened)]
    [closed] = [e for e in history if isinstance(e, RightsRequestClosed)]
    assert (opened.right, opened.source) == ("access", "preference_centre")
    assert (closed.request_id, closed.outcome) == (opened.request_id, "fulfilled")


def test_request_erasure_opens_a_request_due_in_one_month(
    url: str, ledger: Ledger, token: str
) -> None:
    answer = httpx.post(f"{url}/p/{token}/rights", data=form(url, token, "erase"))
    assert answer.status_code == 200
    [opened] = [e for e in ledger.history("p-1") if isinstance(e, RightsRequestOpened)]
    assert (opened.right, opened.source) == ("erasure", "preference_centre")
    assert (opened.due_at - opened.received_at).days == 30
    text = re.sub(r"\s+", " ", answer.text)
    assert "Votre demande est enregistrée" in text
    assert "(heure de Paris)" in text
    assert str(opened.due_at.year) in text


def test_object_records_an_objection_to_all_direct_marketing(
    url: str, ledger: Ledger, token: str
) -> None:
    answer = httpx.post(f"{url}/p/{token}/rights?lang=en", data=form(url, token, "object"))
    assert "You object to all direct marketing" in answer.text
    [objection] = [e for e in ledger.history("p-1") if isinstance(e, ObjectionRecorded)]
    assert (objection.all_direct_marketing, objection.source) == (True, "preference_centre")
    page = httpx.get(f"{url}/p/{token}").text
    assert 'value="newsletter" checked' not in page


def test_rights_need_the_pages_nonce_and_a_known_right(
    url: str, ledger: Ledger, token: str
) -> None:
    head = ledger.store.head()
    for right in ("download", "erase", "object"):
        refused = httpx.post(f"{url}/p/{token}/rights", data={"nonce": token, "right": right})
        assert refused.status_code == 403
    unknown = httpx.post(f"{url}/p/{token}/rights", data=form(url, token, "forget-me"))
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "right"
    assert httpx.post(f"{url}/p/not-a-link/rights", data={}).status_code == 404
    assert ledger.store.head() == head
