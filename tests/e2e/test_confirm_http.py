"""Double opt-in links over real HTTP: a safe page, a confirming button, in French and English."""

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ledger.domain.commands import WithdrawConsent
from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import ConsentConfirmed
from tests.recipient import KEY, grant, ledger_fixture, serving_links, url_fixture, worded_ledger  # noqa: F401 - fixtures

CONFIRM = {"confirm": "subscribe"}


@pytest.fixture
def links() -> UnsubscribeTokenCodec:
    return UnsubscribeTokenCodec(KEY).for_use("confirm")


def pending(ledger: Ledger, subject: str) -> None:
    grant(ledger, subject, pending=True)


def confirmations(ledger: Ledger, subject: str) -> list[ConsentConfirmed]:
    return [e for e in ledger.history(subject) if isinstance(e, ConsentConfirmed)]


def _visible(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_get_and_head_confirm_nothing_in_either_language(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    pending(ledger, "p-1")
    token = links.issue(subject="p-1", purpose="newsletter")
    head = ledger.store.head()
    french = httpx.get(f"{url}/c/{token}")
    english = httpx.get(f"{url}/c/{token}", headers={"Accept-Language": "en"})
    scanner = httpx.head(f"{url}/c/{token}")
    assert (french.status_code, english.status_code, scanner.status_code) == (200, 200, 200)
    assert scanner.content == b""
    assert ledger.store.head() == head
    assert "Confirmer votre inscription ?" in _visible(french.text)
    assert "La lettre du jeudi" in _visible(french.text)
    assert "Confirm your subscription?" in _visible(english.text)
    assert "What is new, once a week." in _visible(english.text)
    assert ledger.person("p-1").consents[("newsletter", "email")].status == "pending"  # type: ignore[union-attr]


def test_the_button_confirms_once_however_often_it_is_pressed(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    pending(ledger, "p-2")
    token = links.issue(subject="p-2", purpose="newsletter")
    first = httpx.post(f"{url}/c/{token}", data=CONFIRM)
    assert first.status_code == 200
    assert "Votre inscription est confirmée" in first.text
    head = ledger.store.head()
    for _ in range(3):
        again = httpx.post(f"{url}/c/{token}?lang=en", data=CONFIRM)
        assert again.status_code == 200
        assert "Your subscription is confirmed" in again.text
    assert ledger.store.head() == head
    [event] = confirmations(ledger, "p-2")
    assert (event.purpose, event.channel, event.source) == (
        "newsletter",
        "email",
        "confirmation_link",
    )
    # A second link of the same subscription, once confirmed, says so and records nothing.
    later = links.issue(subject="p-2", purpose="newsletter", campaign_id="reminder")
    assert httpx.post(f"{url}/c/{later}", data=CONFIRM).status_code == 200
    assert ledger.store.head() == head


def test_a_withdrawn_subscription_is_not_confirmed(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    pending(ledger, "p-3")
    ledger.execute(
        WithdrawConsent(subject="p-3", purpose="newsletter", occurred_at=datetime.now(UTC))
    )
    token = links.issue(subject="p-3", purpose="newsletter")
    head = ledger.store.head()
    response = httpx.post(f"{url}/c/{token}", data=CONFIRM)
    assert response.status_code == 409
    assert "Il n\u2019y a rien à confirmer" in response.text
    assert ledger.store.head() == head


def test_a_bad_link_or_body_confirms_nothing(
    url: str, ledger: Ledger, links: UnsubscribeTokenCodec
) -> None:
    pending(ledger, "p-4")
    genuine = links.issue(subject="p-4", purpose="newsletter")
    refused = {
        "an unsubscribe link": (
            UnsubscribeTokenCodec(KEY).issue(subject="p-4", purpose="newsletter"),
            404,
        ),
        "tampered": (genuine[:-3] + ("A" if genuine[-3] != "A" else "B") + genuine[-2:], 404),
        "no purpose": (links.issue(subject="p-4"), 404),
        "expired": (
            UnsubscribeTokenCodec(KEY, clock=lambda: datetime.now(UTC) - timedelta(days=9))
            .for_use("confirm")
            .issue(subject="p-4", purpose="newsletter", expires_in=timedelta(days=7)),
            410,
        ),
    }
    head = ledger.store.head()
    for name, (token, status) in refused.items():
        assert httpx.get(f"{url}/c/{token}").status_code == status, name
        response = httpx.post(f"{url}/c/{token}", data=CONFIRM)
        assert response.status_code == status, name
        assert "Rien n\u2019a été modifié." in response.text, name
    assert httpx.post(f"{url}/c/{genuine}", data={"confirm": "yes"}).status_code == 400
    assert ledger.store.head() == head
