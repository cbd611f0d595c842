"""The preference centre over real HTTP: a safe page, a nonce against forged posts, true events."""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from entrypoints.http.preference_choices import FORM_ID, FORM_VERSION
from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import ConsentGranted, ConsentWithdrawn, PersonalData, UnsubscribeClicked
from tests.recipient import (  # noqa: F401 - fixtures
    KEY,
    WORDING,
    grant,
    ledger_fixture,
    serving_links,
    url_fixture,
    worded_ledger,
)

NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@pytest.fixture
def links() -> UnsubscribeTokenCodec:
    return UnsubscribeTokenCodec(KEY).for_use("preferences")


def nonce_of(url: str, token: str, query: str = "") -> str:
    match = NONCE.search(httpx.get(f"{url}/p/{token}{query}").text)
    assert match is not None
    return match.group(1)


def _visible(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_get_and_head_show_the_choices_in_french_or_english_and_change_nothing(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    grant(ledger, "p-1")
    token = links.issue(subject="p-1")
    head = ledger.store.head()
    french = httpx.get(f"{url}/p/{token}")
    english = httpx.get(f"{url}/p/{token}?lang=en")
    scanner = httpx.head(f"{url}/p/{token}")
    assert (french.status_code, english.status_code, scanner.status_code) == (200, 200, 200)
    assert scanner.content == b""
    assert ledger.store.head() == head
    text = _visible(french.text)
    for words in ("Vos préférences d\u2019e-mails", "La lettre du jeudi", "Les bons plans"):
        assert words in text
    assert "Se désabonner de tout" in text
    assert 'value="newsletter" checked' in french.text
    assert 'value="offers" aria-describedby' in french.text
    assert "Special offers" in _visible(english.text)
    assert french.headers["cache-control"] == "no-store"


def test_saving_records_a_withdrawal_and_a_grant_with_the_wording_shown(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    grant(ledger, "p-2")
    token = links.issue(subject="p-2")
    form = {"nonce": nonce_of(url, token, "?lang=en"), "purpose": "offers", "action": "save"}
    saved = httpx.post(f"{url}/p/{token}?lang=en", data=form, headers={"User-Agent": "Browser/1.0"})
    assert saved.status_code == 200
    assert "Your choices are saved" in saved.text
    assert "Special offers" in _visible(saved.text)
    # Read back from the store after the answer: both events were durable before it.
    events = ledger.history("p-2", decrypt=True)
    [withdrawn] = [e for e in events if isinstance(e, ConsentWithdrawn)]
    assert (withdrawn.purpose, withdrawn.source, withdrawn.reason) == (
        "newsletter",
        "preference_centre",
        "user_request",
    )
    [given] = [e for e in events if isinstance(e, ConsentGranted) and e.purpose == "offers"]
    assert given.source == "preference_centre"
    assert given.evidence is not None
    words = WORDING["offers"]["en"]
    shown = [FORM_VERSION, "en", "Emails I want to receive", words["label"], words["description"]]
    expected = hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode()).hexdigest()
    assert given.evidence.consent_text_sha256 == expected
    assert (given.evidence.form_id, given.evidence.form_version) == (FORM_ID, FORM_VERSION)
    assert isinstance(given.personal, PersonalData)
    assert (given.personal.ip, given.personal.user_agent) == ("127.0.0.1", "Browser/1.0")


def test_the_same_form_posted_twice_records_once(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    token = links.issue(subject="p-3")
    form = {"nonce": nonce_of(url, token), "purpose": "newsletter"}
    assert httpx.post(f"{url}/p/{token}", data=form).status_code == 200
    head = ledger.store.head()
    assert httpx.post(f"{url}/p/{token}", data=form).status_code == 200
    assert ledger.store.head() == head
    assert [e.purpose for e in ledger.history("p-3") if isinstance(e, ConsentGranted)] == [
        "newsletter"
    ]


def test_unsubscribe_from_everything(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    grant(ledger, "p-4")
    token = links.issue(subject="p-4")
    form = {"nonce": nonce_of(url, token), "purpose": "newsletter", "action": "everything"}
    saved = httpx.post(f"{url}/p/{token}", data=form)
    assert "Vous ne recevrez plus aucun e-mail commercial" in saved.text
    [click] = [e for e in ledger.history("p-4") if isinstance(e, UnsubscribeClicked)]
    assert (click.purpose, click.list_id, click.method, click.source) == (
        None,
        None,
        "preference_centre",
        "preference_centre",
    )


def test_a_post_without_a_genuine_nonce_for_this_link_is_refused_and_records_nothing(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    token = links.issue(subject="p-5")
    other = links.issue(subject="p-6")
    genuine = nonce_of(url, token)
    stale = (
        UnsubscribeTokenCodec(KEY, clock=lambda: datetime.now(UTC) - timedelta(days=2))
        .for_use("form")
        .issue(
            subject="p-5",
            campaign_id=hashlib.sha256(token.encode()).hexdigest()[:32],
            expires_in=timedelta(hours=12),
        )
    )
    head = ledger.store.head()
    for name, nonce in {
        "none": "",
        "another link's": nonce_of(url, other),
        "a link, not a nonce": token,
        "altered": genuine[:-2] + ("AA" if genuine[-2:] != "AA" else "BB"),
        "expired": stale,
    }.items():
        response = httpx.post(f"{url}/p/{token}", data={"nonce": nonce, "purpose": "offers"})
        assert response.status_code == 403, name
        assert "Rien n\u2019a été modifié." in response.text, name
    assert ledger.store.head() == head


def test_a_forged_altered_or_expired_link_is_refused_and_records_nothing(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    genuine = links.issue(subject="p-7")
    nonce = nonce_of(url, genuine)
    refused = {
        "an unsubscribe link": (UnsubscribeTokenCodec(KEY).issue(subject="p-7"), 404),
        "forged": (
            UnsubscribeTokenCodec({"k1": b"x" * 32}).for_use("preferences").issue(subject="p-7"),
            404,
        ),
        "altered": (genuine[:8] + ("A" if genuine[8] != "A" else "B") + genuine[9:], 404),
        "expired": (
            UnsubscribeTokenCodec(KEY, clock=lambda: datetime.now(UTC) - timedelta(days=90))
            .for_use("preferences")
            .issue(subject="p-7", expires_in=timedelta(days=30)),
            410,
        ),
    }
    head = ledger.store.head()
    for name, (token, status) in refused.items():
        assert httpx.get(f"{url}/p/{token}").status_code == status, name
        assert httpx.head(f"{url}/p/{token}").status_code == status, name
        response = httpx.post(f"{url}/p/{token}", data={"nonce": nonce, "purpose": "offers"})
        assert response.status_code == status, name
        assert token not in response.text, name
    assert ledger.store.head() == head
