"""The recipients' path over real HTTP: a uvicorn server, plain clients, a real ledger."""

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import psycopg
import pytest
from psycopg import sql

from entrypoints.http.unsubscribe import MAX_BODY_BYTES
from ledger.domain.commands import GrantConsent
from ledger.domain.identity import SubjectHasher
from ledger.links.tokens import ONE_CLICK_BODY, UnsubscribeTokenCodec
from ledger.privacy.keystore import PostgresDataKeyStore
from ledger.store.events import LedgerStore, PostgresStoreConfig
from ledger.write.group_commit import GroupCommitConfig
from ledger.write.service import Ledger, LedgerConfig
from schemas import UnsubscribeClicked
from tests.recipient import KEY, ledger_fixture, serving_links, url_fixture, worded_ledger  # noqa: F401 - fixtures

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
serving = serving_links


@pytest.fixture
def codec() -> UnsubscribeTokenCodec:
    return UnsubscribeTokenCodec(KEY)


def clicks(ledger: Ledger, subject: str) -> list[UnsubscribeClicked]:
    return [e for e in ledger.history(subject) if isinstance(e, UnsubscribeClicked)]


def one_click(url: str, token: str) -> httpx.Response:
    return httpx.post(f"{url}/u/{token}", content=ONE_CLICK_BODY, headers=FORM)


@contextmanager
def _records_nothing(ledger: Ledger) -> Iterator[None]:
    """What runs inside stores no event."""
    head = ledger.store.head()
    yield
    assert ledger.store.head() == head


def _visible(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_get_and_head_show_the_page_in_french_and_change_nothing(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-1", purpose="newsletter", campaign_id="c1")
    with _records_nothing(ledger):
        for _ in range(3):
            response = httpx.get(f"{url}/u/{token}")
            assert response.status_code == 200
            head = httpx.head(f"{url}/u/{token}")
            assert (head.status_code, head.content) == (200, b"")
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "fr"
    assert '<html lang="fr">' in page
    assert '<form method="post">' in page
    text = _visible(page)
    assert "Vous désabonner ?" in text
    assert "La lettre du jeudi" in text
    assert "Nos nouveautés, une fois par semaine." in text
    assert "newsletter" not in text, "the page names the purpose by its id"
    assert "<script" not in page
    assert re.findall(r'(?:src|href)="([^"]*)"', page) == [
        "/assets/pages.css",
        "#main",
        "?lang=en",
    ]
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert clicks(ledger, "p-1") == []


@pytest.mark.parametrize(
    ("query", "headers"), [("?lang=en", {}), ("", {"Accept-Language": "en-GB,en;q=0.9"})]
)
def test_the_page_speaks_english_when_asked(
    url: str, codec: UnsubscribeTokenCodec, query: str, headers: dict[str, str]
) -> None:
    token = codec.issue(subject="p-1", purpose="newsletter")
    response = httpx.get(f"{url}/u/{token}{query}", headers=headers)
    assert response.headers["content-language"] == "en"
    text = _visible(response.text)
    assert "Unsubscribe?" in text
    assert "The Thursday letter" in text
    assert "What is new, once a week." in text
    assert "désabonner" not in text


def test_a_list_link_offers_only_this_list_or_everything(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    only = codec.issue(subject="p-10", list_id="weekly", campaign_id="c1")
    page = httpx.get(f"{url}/u/{only}").text
    assert 'name="scope" value="list" checked' in page
    assert 'name="scope" value="everything"' in page
    assert "Seulement la liste « weekly »" in _visible(page)
    done = httpx.post(f"{url}/u/{only}", data={"confirm": "unsubscribe", "scope": "list"})
    assert "Vous ne recevrez plus les e-mails de la liste « weekly »." in _visible(done.text)
    [event] = clicks(ledger, "p-10")
    assert (event.list_id, event.purpose, event.campaign_id) == ("weekly", None, "c1")

    everything = codec.issue(subject="p-11", list_id="weekly", campaign_id="c1")
    done = httpx.post(
        f"{url}/u/{everything}?lang=en", data={"confirm": "unsubscribe", "scope": "everything"}
    )
    assert "You will no longer receive any marketing email from us." in _visible(done.text)
    [event] = clicks(ledger, "p-11")
    assert (event.list_id, event.purpose, event.campaign_id) == (None, None, "c1")
    assert ledger.person("p-11").unsubscribed == {"*"}  # type: ignore[union-attr]
    with _records_nothing(ledger):
        again = httpx.post(
            f"{url}/u/{everything}", data={"confirm": "unsubscribe", "scope": "everything"}
        )
        assert again.status_code == 200


def test_one_click_on_a_list_link_leaves_only_that_list(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-12", list_id="weekly")
    assert one_click(url, token).status_code == 200
    [event] = clicks(ledger, "p-12")
    assert (event.list_id, event.purpose) == ("weekly", None)


def test_one_click_post_records_one_durable_event_before_answering(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(
        subject="p-1", purpose="newsletter", campaign_id="c1", message_id="<m1@example.org>"
    )
    head = ledger.store.head()
    request = urllib.request.Request(  # noqa: S310 - the test's own http server
        f"{url}/u/{token}", data=ONE_CLICK_BODY.encode(), headers=FORM, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert response.headers.get("Set-Cookie") is None
        assert response.read() == b"Unsubscribed.\n"
    # Read back from the store, not the writer's memory: the click was committed before the 200.
    assert ledger.store.head() == head + 1
    [event] = clicks(ledger, "p-1")
    assert (event.purpose, event.list_id) == ("newsletter", None)
    assert (event.campaign_id, event.message_id) == ("c1", "<m1@example.org>")
    assert (event.method, event.source) == ("one_click_post", "one_click")
    assert event.command_id == ledger.hasher.command_id_for(codec.verify(token).command_id)


def test_the_rfc_8058_multipart_body_is_accepted(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-2", list_id="weekly")
    response = httpx.post(f"{url}/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    [event] = clicks(ledger, "p-2")
    assert event.list_id == "weekly"


def test_repeated_clicks_append_nothing(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-3", purpose="newsletter")
    assert one_click(url, token).status_code == 200
    with _records_nothing(ledger):
        for _ in range(3):
            assert one_click(url, token).status_code == 200
        page = httpx.post(f"{url}/u/{token}", data={"confirm": "unsubscribe"})
        assert page.status_code == 200
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda _: one_click(url, token).status_code, range(32)))
        assert statuses == [200] * 32
    assert len(clicks(ledger, "p-3")) == 1


def test_concurrent_first_clicks_of_one_link_record_once(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-4", purpose="newsletter")
    head = ledger.store.head()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: one_click(url, token).status_code, range(16)))
    assert statuses == [200] * 16
    assert ledger.store.head() == head + 1


def test_the_pages_button_records_and_shows_a_result_page(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-5")
    response = httpx.post(f"{url}/u/{token}", data={"confirm": "unsubscribe"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Votre désabonnement est enregistré" in response.text
    assert "aucun e-mail commercial" in response.text
    [event] = clicks(ledger, "p-5")
    assert (event.method, event.source) == ("link_page", "unsubscribe_link")
    assert (event.purpose, event.list_id) == (None, None)


def test_a_new_subscription_lets_an_old_link_unsubscribe_again(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-6", purpose="newsletter")
    assert one_click(url, token).status_code == 200
    ledger.execute(
        GrantConsent(
            subject="p-6",
            purpose="newsletter",
            policy_version="v1",
            occurred_at=datetime.now(UTC),
        )
    )
    assert ledger.person("p-6").unsubscribed == set()  # type: ignore[union-attr]
    assert one_click(url, token).status_code == 200
    assert len(clicks(ledger, "p-6")) == 2
    assert ledger.person("p-6").unsubscribed == {"newsletter"}  # type: ignore[union-attr]
    with _records_nothing(ledger):
        assert one_click(url, token).status_code == 200


def _forgeries(codec: UnsubscribeTokenCodec) -> dict[str, tuple[str, int]]:
    genuine = codec.issue(subject="p-7", purpose="newsletter")
    tampered = genuine[:10] + ("A" if genuine[10] != "A" else "B") + genuine[11:]
    retired = UnsubscribeTokenCodec({"k0": b"r" * 32}).issue(subject="p-7")
    other_secret = UnsubscribeTokenCodec({"k1": b"x" * 32}).issue(subject="p-7")
    issued_long_ago = UnsubscribeTokenCodec(
        KEY, clock=lambda: datetime.now(UTC) - timedelta(days=90)
    ).issue(subject="p-7", expires_in=timedelta(days=30))
    return {
        "garbage": ("not-a-token", 404),
        "tampered": (tampered, 404),
        "unknown key": (retired, 404),
        "forged with a guessed key": (other_secret, 404),
        "a double opt-in link": (codec.for_use("confirm").issue(subject="p-7"), 404),
        "expired": (issued_long_ago, 410),
    }


def test_a_bad_token_is_refused_and_records_nothing(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    with _records_nothing(ledger):
        for name, (token, status) in _forgeries(codec).items():
            response = one_click(url, token)
            assert response.status_code == status, name
            assert response.headers["content-type"] == "application/problem+json", name
            assert token not in response.text, name
            page = httpx.get(f"{url}/u/{token}")
            assert page.status_code == status, name
            assert page.headers["content-type"].startswith("text/html"), name
            button = httpx.post(f"{url}/u/{token}", data={"confirm": "unsubscribe"})
            assert button.status_code == status, name
            assert "Rien n\u2019a été modifié." in button.text, name
            english = httpx.post(f"{url}/u/{token}?lang=en", data={"confirm": "unsubscribe"})
            assert "Nothing was changed." in english.text, name
            assert token not in english.text, name


def test_a_post_without_the_one_click_body_records_nothing(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-8")
    with _records_nothing(ledger):
        for body in ("", "List-Unsubscribe=Yes", "confirm=no"):
            response = httpx.post(f"{url}/u/{token}", content=body, headers=FORM)
            assert response.status_code == 400, body
            assert response.json()["type"].endswith("one-click-body-required")


def test_an_oversize_body_is_413_and_records_nothing(
    url: str, ledger: Ledger, codec: UnsubscribeTokenCodec
) -> None:
    token = codec.issue(subject="p-9")
    with _records_nothing(ledger):
        big = ONE_CLICK_BODY + "&pad=" + "x" * MAX_BODY_BYTES
        declared = httpx.post(f"{url}/u/{token}", content=big, headers=FORM)
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:
            yield ONE_CLICK_BODY.encode()
            for _ in range(8):
                yield b"&pad=" + b"x" * 1024

        # No Content-Length: the limit must hold on the bytes actually sent.
        chunked = httpx.post(f"{url}/u/{token}", content=chunks(), headers=FORM)
        assert chunked.status_code == 413
    assert one_click(url, token).status_code == 200


@pytest.mark.integration
def test_one_click_on_postgresql(pg_dsn: str, codec: UnsubscribeTokenCodec) -> None:
    schema = f"unsub_{uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    keys = PostgresDataKeyStore(dsn=pg_dsn, master_key=b"k" * 32, schema=schema)
    keys.migrate()
    ledger = Ledger(
        store=LedgerStore(PostgresStoreConfig(dsn=pg_dsn, schema=schema, pool_size=4)),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
        config=LedgerConfig(group_commit=GroupCommitConfig(max_batch=64, max_wait_s=0.002)),
    )
    try:
        hasher = SubjectHasher(secret=b"h" * 32)
        subject = hasher.subject_for("Someone@Example.org")
        tokens = [codec.issue(subject=subject, campaign_id=f"c{n}") for n in range(3)]
        with serving(ledger, codec) as url:
            for token in (*tokens, *tokens):
                assert one_click(url, token).status_code == 200
            assert one_click(url, tokens[0][:-2]).status_code == 404
        reader = LedgerStore(PostgresStoreConfig(dsn=pg_dsn, schema=schema, pool_size=1))
        try:
            stored = [topic for _, _, _, topic, _ in reader.stream_rows()]
        finally:
            reader.close()
        assert stored == ["UnsubscribeClicked/v1"] * 3
        assert [e.campaign_id for e in clicks(ledger, subject)] == ["c0", "c1", "c2"]
    finally:
        ledger.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
