"""The unsubscribe and double opt-in links opened in Chromium, JavaScript off, as a person would."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.write.service import Ledger
from schemas import ConsentConfirmed, RightsRequestOpened, UnsubscribeClicked
from tests.pages import axe_violations, offline_context
from tests.recipient import KEY, grant, serving_links, worded_ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = worded_ledger(tmp_path / "ledger.db")
    yield ledger
    ledger.close()


@pytest.fixture
def served(ledger: Ledger) -> Iterator[tuple[str, UnsubscribeTokenCodec]]:
    codec = UnsubscribeTokenCodec(KEY)
    with serving_links(ledger, codec) as origin:
        yield origin, codec


def clicks(ledger: Ledger, subject: str) -> list[UnsubscribeClicked]:
    return [e for e in ledger.history(subject) if isinstance(e, UnsubscribeClicked)]


def test_a_recipient_unsubscribes_in_french_with_javascript_off(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec], ledger: Ledger
) -> None:
    origin, codec = served
    token = codec.issue(subject="p-1", purpose="newsletter", campaign_id="c1")
    with offline_context(browser, origin, locale="fr-FR") as offline:
        page = offline.page()
        page.goto(f"{origin}/u/{token}")
        assert page.get_by_text("La lettre du jeudi").is_visible()
        assert ledger.history("p-1")[2:] == [], "opening the page recorded something"
        page.get_by_role("button", name="Me désabonner").click()
        page.wait_for_load_state()
        status = page.get_by_role("status").inner_text()
        assert status == "Vous ne recevrez plus ces e-mails de notre part : La lettre du jeudi."
        assert offline.refused == []
    [click] = clicks(ledger, "p-1")
    assert click.purpose == "newsletter"


def test_a_recipient_leaves_everything_from_a_list_link_in_english(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec], ledger: Ledger
) -> None:
    origin, codec = served
    token = codec.issue(subject="p-2", list_id="weekly")
    with offline_context(browser, origin, locale="en-GB") as offline:
        page = offline.page()
        page.goto(f"{origin}/u/{token}")
        assert page.get_by_label("Only the list “weekly”").is_checked()
        page.get_by_label("Everything: no marketing email from us at all").check()
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("status").inner_text() == (
            "You will no longer receive any marketing email from us."
        )
        assert offline.refused == []
    [click] = clicks(ledger, "p-2")
    assert (click.list_id, click.purpose) == (None, None)


def test_a_recipient_confirms_a_subscription_after_switching_language(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec], ledger: Ledger
) -> None:
    origin, codec = served
    grant(ledger, "p-3", "offers", pending=True)
    token = codec.for_use("confirm").issue(subject="p-3", purpose="offers")
    with offline_context(browser, origin, locale="fr-FR") as offline:
        page = offline.page()
        page.goto(f"{origin}/c/{token}")
        assert page.get_by_role("heading", level=1).inner_text() == "Confirmer votre inscription ?"
        page.get_by_role("link", name="English").click()
        page.get_by_role("button", name="Confirm my subscription").click()
        page.wait_for_load_state()
        assert page.get_by_role("status").inner_text() == (
            "You will receive these emails from us: Special offers."
        )
    [confirmed] = [e for e in ledger.history("p-3") if isinstance(e, ConsentConfirmed)]
    assert confirmed.purpose == "offers"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_recipients_pages_have_no_serious_accessibility_violation(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec], lang: str
) -> None:
    origin, codec = served
    paths = [
        f"/u/{codec.issue(subject='p-1', purpose='newsletter')}",
        f"/u/{codec.issue(subject='p-1', list_id='weekly')}",
        "/u/not-a-token",
        f"/c/{codec.for_use('confirm').issue(subject='p-1', purpose='offers')}",
        f"/p/{codec.for_use('preferences').issue(subject='p-1')}",
    ]
    for path in paths:
        assert axe_violations(browser, f"{origin}{path}?lang={lang}") == [], path


@pytest.mark.parametrize(
    "words",
    [
        ("fr-FR", "Les bons plans", "Enregistrer mes choix", "Vos choix sont enregistrés"),
        ("en-GB", "Special offers", "Save my choices", "Your choices are saved"),
    ],
)
def test_a_person_changes_their_choices_in_the_preference_centre(
    browser: Browser,
    served: tuple[str, UnsubscribeTokenCodec],
    ledger: Ledger,
    words: tuple[str, str, str, str],
) -> None:
    """``words``: the browser's locale, the box ticked, the button pressed, the page reached."""
    locale, keep, save, saved = words
    origin, codec = served
    grant(ledger, "p-4")
    token = codec.for_use("preferences").issue(subject="p-4")
    with offline_context(browser, origin, locale=locale) as offline:
        page = offline.page()
        page.goto(f"{origin}/p/{token}")
        boxes = page.get_by_role("checkbox")
        assert boxes.count() == 2
        newsletter = boxes.nth(0)
        assert newsletter.is_checked()
        newsletter.uncheck()
        page.get_by_label(keep).check()
        page.get_by_role("button", name=save).click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == saved
        assert page.get_by_role("listitem").all_inner_texts() == [keep]
        assert offline.refused == []
    person = ledger.person("p-4")
    assert person is not None
    assert {p: c.status for (p, _), c in person.consents.items()} == {
        "newsletter": "withdrawn",
        "offers": "granted",
    }


def test_a_person_requests_erasure_from_the_preference_centre_in_french(
    browser: Browser, served: tuple[str, UnsubscribeTokenCodec], ledger: Ledger
) -> None:
    origin, codec = served
    token = codec.for_use("preferences").issue(subject="p-5")
    with offline_context(browser, origin, locale="fr-FR") as offline:
        page = offline.page()
        page.goto(f"{origin}/p/{token}")
        page.get_by_role("button", name="Demander l\u2019effacement").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == (
            "Votre demande est enregistrée"
        )
        assert "(heure de Paris)" in page.get_by_role("status").inner_text()
    [opened] = [e for e in ledger.history("p-5") if isinstance(e, RightsRequestOpened)]
    assert opened.right == "erasure"
