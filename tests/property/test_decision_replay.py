"""For random histories, both projections (PostgreSQL and embedded SQLite) answer as a replay."""

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
from ledger.service import Ledger
from ledger.store import LedgerStore, SQLiteStoreConfig
from projections.decision import ProjectionReader, decide
from projections.embedded import EmbeddedProjection
from projections.replay import facts_from_log
from projections.store import ProjectionWriter, apply, migrate
from schemas import EventBase, parse_event

pytestmark = pytest.mark.integration
T0 = datetime(2025, 1, 1, tzinfo=UTC)
PURPOSES = ("newsletter", "offers", "service")
CHANNELS = ("email", "sms")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, pg_dsn: str
) -> Iterator[tuple[Ledger, psycopg.Connection[Any], str, EmbeddedProjection]]:
    path: Path = tmp_path_factory.mktemp("decide") / "ledger.sqlite3"
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
            version="v1", text_sha256="a" * 64, effective_at=T0, purposes=PURPOSES, occurred_at=T0
        ),
        PublishPolicyVersion(
            version="v2",
            text_sha256="b" * 64,
            effective_at=T0 + timedelta(days=400),
            purposes=("newsletter",),
            requires_reconsent=True,
            occurred_at=T0,
        ),
    ]
    for command in catalog:
        ledger.execute(command)
    schema = f"decide_{uuid4().hex[:10]}"
    conn = psycopg.connect(pg_dsn)
    with conn.transaction():
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        migrate(conn, schema=schema)
        apply(conn, ProjectionWriter(schema=schema), _log(ledger))
    embedded = EmbeddedProjection(path=path)
    yield ledger, conn, schema, embedded
    embedded.close()
    ledger.close()
    with conn.transaction():
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    conn.close()


def _log(ledger: Ledger) -> list[tuple[EventBase, int]]:
    return [
        (parse_event(n.state), n.id) for n in ledger.store.notifications(after=0, limit=100_000)
    ]


purpose = st.sampled_from(PURPOSES)
channel = st.sampled_from(CHANNELS)
who = st.integers(0, 1)
step = st.one_of(
    st.tuples(
        st.just("grant"), who, purpose, channel, st.booleans(), st.sampled_from(["v1", "v2"])
    ),
    st.tuples(st.just("confirm"), who, purpose, channel),
    st.tuples(st.just("withdraw"), who, purpose, channel),
    st.tuples(st.just("unsubscribe"), who, st.none() | purpose, st.booleans()),
    st.tuples(st.just("object"), who, st.none() | purpose),
    st.tuples(st.just("restrict"), who, st.lists(purpose, max_size=1)),
    st.tuples(st.just("lift"), who, st.lists(purpose, max_size=1)),
    st.tuples(st.just("interaction"), who),
    st.tuples(st.just("erase"), who),
)


def _command(subjects: list[str], item: tuple[Any, ...], when: datetime) -> Command:  # noqa: PLR0911
    kind, person = item[0], subjects[item[1]]
    base: dict[str, Any] = {"subject": person, "occurred_at": when}
    if kind == "grant":
        return GrantConsent(
            **base,
            purpose=item[2],
            channel=item[3],
            policy_version=item[5],
            double_opt_in="pending" if item[4] else "not_applicable",
        )
    if kind == "confirm":
        return ConfirmConsent(**base, purpose=item[2], channel=item[3])
    if kind == "withdraw":
        return WithdrawConsent(**base, purpose=item[2], channel=item[3])
    if kind == "unsubscribe":
        if item[3] and item[2] is None:
            return Unsubscribe(**base, list_id="weekly")
        return Unsubscribe(**base, purpose=item[2])
    if kind == "object":
        if item[2] is None:
            return RecordObjection(**base, all_direct_marketing=True)
        return RecordObjection(**base, purpose=item[2])
    if kind == "restrict":
        return RestrictProcessing(**base, purposes=tuple(item[2]))
    if kind == "lift":
        return LiftRestriction(**base, purposes=tuple(item[2]))
    if kind == "interaction":
        return RecordInteraction(**base, kind="click")
    return EraseSubject(**base)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(step, min_size=1, max_size=14), st.integers(0, 900))
def test_projection_and_replay_give_the_same_answer(
    world: tuple[Ledger, psycopg.Connection[Any], str, EmbeddedProjection],
    history: list[tuple[Any, ...]],
    day: int,
) -> None:
    ledger, conn, schema, embedded = world
    subjects = [f"s-{uuid4().hex[:12]}" for _ in range(2)]
    start = ledger.store.head()
    for n, item in enumerate(history):
        # A refused command (confirming nothing, say) records nothing, in both views.
        with contextlib.suppress(LedgerError):
            ledger.execute(_command(subjects, item, T0 + timedelta(days=n * 40)))
    log = _log(ledger)
    with conn.transaction():
        apply(conn, ProjectionWriter(schema=schema), [e for e in log if e[1] > start])
    while embedded.feed_once(ledger.store):
        pass
    reader = ProjectionReader(conn, schema=schema)
    at = T0 + timedelta(days=day)
    for subject in subjects:
        for purpose_ in (*PURPOSES, "unknown"):
            for channel_ in CHANNELS:
                projected = decide(
                    reader.facts(subject, purpose_, channel_),
                    purpose=purpose_,
                    channel=channel_,
                    at=at,
                )
                replayed = decide(
                    facts_from_log(log, subject=subject, purpose=purpose_, channel=channel_),
                    purpose=purpose_,
                    channel=channel_,
                    at=at,
                )
                assert projected == replayed, (subject, purpose_, channel_)
                in_sqlite = decide(
                    embedded.facts(subject, purpose_, channel_),
                    purpose=purpose_,
                    channel=channel_,
                    at=at,
                )
                assert in_sqlite == replayed, ("sqlite", subject, purpose_, channel_)
