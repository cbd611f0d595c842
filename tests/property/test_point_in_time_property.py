"""For random histories, the answer at now is the projections' answer, with its evidence."""

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from ledger.commands import (
    Command,
    ConfirmConsent,
    EraseSubject,
    GrantConsent,
    LiftRestriction,
    PublishPolicyVersion,
    RecordInteraction,
    RecordObjection,
    RegisterPurpose,
    RestrictProcessing,
    Unsubscribe,
    WithdrawConsent,
)
from ledger.errors import LedgerError
from ledger.identity import SubjectHasher
from ledger.keystore import SQLiteDataKeyStore
from ledger.receipts import person_log
from ledger.service import Ledger
from ledger.store import LedgerStore, SQLiteStoreConfig
from projections.decision import ProjectionReader, Reason, decide
from projections.embedded import EmbeddedProjection
from projections.point_in_time import decision_at
from projections.store import ProjectionWriter, apply, migrate
from schemas import parse_event

pytestmark = pytest.mark.integration
T0 = datetime(2025, 1, 1, tzinfo=UTC)
PURPOSES = ("newsletter", "offers", "service")
CHANNELS = ("email", "sms")
SHA = {"v1": "a" * 64, "v2": "b" * 64}

# What a deciding event may be, for each answer: the event that shows why.
DECIDED_BY: dict[Reason | None, set[str]] = {
    None: {"ConsentGranted", "ConsentConfirmed", "PurposeRegistered"},
    Reason.ERASED: {"SubjectErased"},
    Reason.OBJECTED: {"ObjectionRecorded"},
    Reason.RESTRICTED: {"ProcessingRestricted"},
    Reason.UNSUBSCRIBED: {"UnsubscribeClicked"},
    Reason.WITHDRAWN: {"ConsentWithdrawn", "UnsubscribeClicked"},
    Reason.DOUBLE_OPT_IN_PENDING: {"ConsentGranted"},
    Reason.EXPIRED: {"ConsentGranted", "ConsentConfirmed"},
    Reason.RECONSENT_REQUIRED: {"PolicyVersionPublished"},
}

World = tuple[Ledger, psycopg.Connection[Any], str, EmbeddedProjection]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("pit") / "ledger.sqlite3"
    keys = SQLiteDataKeyStore(path=path, master_key=b"k" * 32)
    keys.migrate()
    ledger = Ledger(
        store=LedgerStore(SQLiteStoreConfig(path=path)),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
    )
    catalog: list[Command] = [
        RegisterPurpose(
            purpose="newsletter",
            legal_basis="consent",
            description="n",
            direct_marketing=True,
            occurred_at=T0,
        ),
        RegisterPurpose(
            purpose="offers",
            legal_basis="consent",
            description="o",
            direct_marketing=True,
            max_age_days=365,
            occurred_at=T0,
        ),
        RegisterPurpose(
            purpose="service", legal_basis="legitimate_interest", description="s", occurred_at=T0
        ),
        PublishPolicyVersion(
            version="v1", text_sha256=SHA["v1"], effective_at=T0, purposes=PURPOSES, occurred_at=T0
        ),
        PublishPolicyVersion(
            version="v2",
            text_sha256=SHA["v2"],
            effective_at=T0 + timedelta(days=200),
            purposes=("newsletter",),
            requires_reconsent=True,
            occurred_at=T0,
        ),
    ]
    for command in catalog:
        ledger.execute(command)
    schema = f"pit_{uuid4().hex[:10]}"
    conn = psycopg.connect(pg_dsn)
    with conn.transaction():
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        migrate(conn, schema=schema)
        catalog_rows = ledger.store.notifications(after=0, limit=100)
        apply(
            conn,
            ProjectionWriter(schema=schema),
            [(parse_event(r.state), r.id) for r in catalog_rows],
        )
    embedded = EmbeddedProjection(path=path)
    yield ledger, conn, schema, embedded
    embedded.close()
    ledger.close()
    with conn.transaction():
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    conn.close()


purpose = st.sampled_from(PURPOSES)
channel = st.sampled_from(CHANNELS)
step = st.one_of(
    st.tuples(st.just("grant"), purpose, channel, st.booleans(), st.sampled_from(["v1", "v2"])),
    st.tuples(st.just("confirm"), purpose, channel),
    st.tuples(st.just("withdraw"), purpose, channel),
    st.tuples(st.just("unsubscribe"), st.none() | purpose),
    st.tuples(st.just("object"), st.none() | purpose),
    st.tuples(st.just("restrict"), st.lists(purpose, max_size=1)),
    st.tuples(st.just("lift"), st.lists(purpose, max_size=1)),
    st.tuples(st.just("interaction")),
    st.tuples(st.just("erase")),
)


def _command(subject: str, item: tuple[Any, ...], when: datetime) -> Command:  # noqa: PLR0911
    kind = item[0]
    base: dict[str, Any] = {"subject": subject, "occurred_at": when}
    if kind == "grant":
        return GrantConsent(
            **base,
            purpose=item[1],
            channel=item[2],
            policy_version=item[4],
            double_opt_in="pending" if item[3] else "not_applicable",
        )
    if kind == "confirm":
        return ConfirmConsent(**base, purpose=item[1], channel=item[2])
    if kind == "withdraw":
        return WithdrawConsent(**base, purpose=item[1], channel=item[2])
    if kind == "unsubscribe":
        return Unsubscribe(**base, purpose=item[1])
    if kind == "object":
        if item[1] is None:
            return RecordObjection(**base, all_direct_marketing=True)
        return RecordObjection(**base, purpose=item[1])
    if kind == "restrict":
        return RestrictProcessing(**base, purposes=tuple(item[1]))
    if kind == "lift":
        return LiftRestriction(**base, purposes=tuple(item[1]))
    if kind == "interaction":
        return RecordInteraction(**base, kind="click")
    return EraseSubject(**base)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(step, min_size=1, max_size=12), st.integers(1, 60))
def test_the_answer_at_now_is_the_projections_answer(
    world: World, history: list[tuple[Any, ...]], spacing: int
) -> None:
    ledger, conn, schema, embedded = world
    subject = f"s-{uuid4().hex[:12]}"
    start = ledger.store.head()
    for n, item in enumerate(history):
        with contextlib.suppress(LedgerError):
            ledger.execute(_command(subject, item, T0 + timedelta(days=n * spacing)))
    rows = ledger.store.notifications(after=start, limit=10_000)
    with conn.transaction():
        apply(conn, ProjectionWriter(schema=schema), [(parse_event(r.state), r.id) for r in rows])
    while embedded.feed_once(ledger.store):
        pass
    reader = ProjectionReader(conn, schema=schema)
    now = datetime.now(UTC)
    log = person_log(ledger, subject)
    for purpose_ in (*PURPOSES, "unknown"):
        for channel_ in CHANNELS:
            answer = decision_at(log, subject=subject, purpose=purpose_, channel=channel_, at=now)
            in_postgres = decide(
                reader.facts(subject, purpose_, channel_),
                purpose=purpose_,
                channel=channel_,
                at=now,
            )
            in_sqlite = decide(
                embedded.facts(subject, purpose_, channel_),
                purpose=purpose_,
                channel=channel_,
                at=now,
            )
            assert answer.decision == in_postgres == in_sqlite, (purpose_, channel_)
            reason = answer.decision.reason
            if reason in (Reason.UNKNOWN_PURPOSE, Reason.NEVER_GRANTED):
                assert answer.deciding is None
                continue
            assert answer.deciding is not None, (purpose_, channel_, reason)
            assert answer.deciding[0].event_type in DECIDED_BY[reason], (purpose_, channel_)
            if answer.policy is not None:
                assert answer.policy.text_sha256 == SHA[answer.policy.version]
                assert answer.grant is not None
                assert answer.grant[0].policy_version == answer.policy.version  # type: ignore[attr-defined]
