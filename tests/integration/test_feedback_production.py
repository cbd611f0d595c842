"""Complaints and bounces in production mode: PostgreSQL holds the events, the rejects, the counts,
and the PostgreSQL projection answers ``complained`` and ``undeliverable`` as the rule book does."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.http.services import ApiServices
from entrypoints.settings import Mode
from ledger.domain.commands import GrantConsent
from ledger.domain.rules import decide
from projections.facts import ProjectionReader
from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import AddressUndeliverable, parse_event
from tests.feedback_samples import arf, dsn, original_message
from tests.helpers import CATALOG_TIME, production_settings, record_catalog


@pytest.fixture
def services(pg_dsn: str, schema: str) -> Iterator[ApiServices]:
    settings = production_settings(pg_dsn, schema, soft_bounce_limit=2)
    built = build_api(settings)
    yield built
    built.close()


def _post(client: TestClient, key: str, report: bytes) -> dict[str, Any]:
    answer = client.post(
        "/v1/feedback",
        content=report,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "message/rfc822"},
    )
    assert answer.status_code in {200, 201, 202}, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_reports_record_in_postgresql_and_its_projection_says_why(
    services: ApiServices, pg_dsn: str, schema: str
) -> None:
    ledger = services.ledger
    record_catalog(ledger)
    kim, lou = (
        ledger.execute(
            GrantConsent(
                address=address, purpose="newsletter", policy_version="v1", occurred_at=CATALOG_TIME
            )
        ).subject
        for address in ("kim@example.org", "lou@example.org")
    )
    client = TestClient(
        create_app(health=HealthCheck(mode=Mode.PRODUCTION, probe=lambda: None), services=services)
    )
    key = services.keys.create("feedback", [Scope.WRITE])[1]
    token = services.tokens.issue(subject=kim, campaign_id="c-1")
    complaint = arf("fraud", original_message(list_unsubscribe=f"<https://x.example/u/{token}>"))

    outcomes = [
        _post(client, key, complaint),
        _post(client, key, complaint),
        _post(client, key, dsn([("lou@example.org", "delayed", "4.4.1")], None, nonce="1")),
        _post(client, key, dsn([("lou@example.org", "failed", "4.4.7")], None, nonce="2")),
        _post(client, key, arf("abuse", None)),
        _post(client, key, arf("abuse", None)),
    ]
    client.close()

    assert [o["status"] for o in outcomes] == [
        "recorded",
        "duplicate",
        "counted",
        "recorded",
        "rejected",
        "rejected",
    ]
    assert services.feedback.store.reject_counts() == {"unattributable": 1}
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(schema, "feedback_rejects"))
        ).fetchone()
    assert rows == (1,)
    (undeliverable,) = [e for e in ledger.history(lou) if isinstance(e, AddressUndeliverable)]
    assert (undeliverable.kind.value, undeliverable.soft_bounces) == ("soft_bounces", 2)

    with psycopg.connect(pg_dsn) as conn:
        projection = f"{schema}_projection"
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(projection)))
        migrate(conn, schema=projection)
        stored = ledger.store.notifications(after=0, limit=1000)
        with conn.transaction():
            PostgresProjectionStore(conn, schema=projection).apply(
                [(parse_event(row.state), row.id) for row in stored]
            )
        reader = ProjectionReader(conn, schema=projection)
        reasons = [
            decide(
                reader.facts(subject, "newsletter", "email"),
                purpose="newsletter",
                channel="email",
                at=CATALOG_TIME,
            ).reason
            for subject in (kim, lou)
        ]
    assert [r.value if r else None for r in reasons] == ["complained", "undeliverable"]
