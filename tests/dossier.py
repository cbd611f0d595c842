"""A French person's history for the auditors' pages: double opt-in, unsubscribe, erasure."""

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.http.services import ApiServices
from entrypoints.settings import Mode, Settings
from ledger.domain import commands
from projections.embedded import EmbeddedProjection
from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import Evidence, PersonalData, parse_event

ADDRESS = "chloe.bernard@exemple.fr"
IP = "203.0.113.7"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
PAGE = "https://exemple.fr/inscription"
POLICY_TEXT = "Politique de confidentialité, version 2025-03.\n"
POLICY_SHA = hashlib.sha256(POLICY_TEXT.encode()).hexdigest()
WORDING_SHA = hashlib.sha256(b"Oui, envoyez-moi la lettre mensuelle").hexdigest()
GRANTED_AT = datetime(2025, 3, 12, 13, 2, tzinfo=UTC)
"""14:02 in Paris (UTC+1 in March)."""
REQUEST = UUID("8c7e0f2a-1b3d-4e5f-9a6b-7c8d9e0f1a2b")


@dataclass
class Audited:
    """A served embedded ledger holding one person's history, and an auditor's key."""

    services: ApiServices
    client: TestClient
    key: str
    subject: str

    def seal(self) -> None:
        self.services.audit.sealer.seal_all()
        self.services.audit.sealer.checkpoint()

    def get(self, path: str, **headers: str) -> object:
        return self.client.get(path, auth=("dpo", self.key), headers=headers)


def record_history(services: ApiServices, *, erase: bool = False) -> str:
    """Register the newsletter, publish a policy, and record one person's life with it."""
    run = services.ledger.execute
    t = GRANTED_AT - timedelta(days=30)
    run(
        commands.RegisterPurpose(
            occurred_at=t,
            purpose="newsletter",
            legal_basis="consent",
            description="Lettre mensuelle",
            direct_marketing=True,
        )
    )
    run(
        commands.PublishPolicyVersion(
            occurred_at=t,
            version="2025-03",
            text_sha256=POLICY_SHA,
            effective_at=t,
            purposes=("newsletter",),
            requires_reconsent=False,
        )
    )
    subject = run(
        commands.GrantConsent(
            occurred_at=GRANTED_AT,
            address=ADDRESS,
            purpose="newsletter",
            policy_version="2025-03",
            double_opt_in="pending",
            source="web_form",
            actor="site-web",
            evidence=Evidence(
                consent_text_sha256=WORDING_SHA, form_id="inscription", form_version="3"
            ),
            personal=PersonalData(address=ADDRESS, ip=IP, user_agent=USER_AGENT, page_url=PAGE),
        )
    ).subject
    later: list[tuple[timedelta, type[commands.PersonCommand], dict[str, object]]] = [
        (timedelta(minutes=9), commands.ConfirmConsent, {"purpose": "newsletter"}),
        (
            timedelta(days=40),
            commands.Unsubscribe,
            {
                "purpose": "newsletter",
                "campaign_id": "2025-04",
                "message_id": "m-1234",
                "method": "one_click_post",
                "source": "one_click",
            },
        ),
        (
            timedelta(days=50),
            commands.OpenRightsRequest,
            {"request_id": REQUEST, "right": "erasure" if erase else "access"},
        ),
    ]
    if erase:
        later.append((timedelta(days=51), commands.EraseSubject, {"request_id": REQUEST}))
    for after, command, fields in later:
        run(
            command.model_validate(
                {"occurred_at": GRANTED_AT + after, "subject": subject, **fields}
            )
        )
    return subject


def _secret() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


def production_settings(dsn: str, schema: str) -> Settings:
    """Production settings on ``schema`` with secrets of their own (no Kafka is reached)."""
    return Settings(
        mode=Mode.PRODUCTION,
        pg_dsn=dsn,
        pg_schema=schema,
        subject_secret=_secret(),
        master_key=_secret(),
        audit_signing_key=_secret(),
        topic_keys=SecretStr(f"k1:{_secret().get_secret_value()}"),
        unsubscribe_keys=SecretStr(f"k1:{_secret().get_secret_value()}"),
        public_url="https://mail.exemple.fr",
    )


def _feed_embedded(settings: Settings, services: ApiServices) -> None:
    projection = EmbeddedProjection(path=settings.sqlite_path)
    while projection.feed_once(services.ledger.store):
        pass
    projection.close()


def feed_postgres(settings: Settings, services: ApiServices) -> None:
    """What the consumers do in production, without Kafka: the store's events, applied."""
    rows = services.ledger.store.notifications(after=0, limit=10_000)
    with psycopg.connect(str(settings.pg_dsn)) as conn, conn.transaction():
        migrate(conn, schema=settings.pg_schema)
        store = PostgresProjectionStore(conn, schema=settings.pg_schema)
        store.apply([(parse_event(row.state), row.id) for row in rows])


@contextmanager
def audited(
    data_dir: Path,
    *,
    erase: bool = False,
    seal: bool = True,
    settings: Settings | None = None,
    feed: Callable[[Settings, ApiServices], None] = _feed_embedded,
) -> Iterator[Audited]:
    """The app over a ledger holding the history (embedded unless ``settings`` say otherwise),
    its projection fed, sealed and checkpointed unless ``seal`` is false."""
    settings = settings or Settings(mode=Mode.EMBEDDED, data_dir=data_dir)
    services = build_api(settings)
    app = create_app(health=HealthCheck(mode=settings.mode, probe=lambda: None), services=services)
    client = TestClient(app)
    _key, secret = services.keys.create("dpo-cnil", [Scope.AUDIT])
    subject = record_history(services, erase=erase)
    feed(settings, services)
    audited = Audited(services, client, secret, subject)
    if seal:
        audited.seal()
    try:
        yield audited
    finally:
        client.close()
        services.close()
