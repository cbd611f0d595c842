"""Random consent histories for property tests: the catalog, the steps, the projections fed."""

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from hypothesis import strategies as st
from psycopg import sql

from ledger.domain import commands
from ledger.domain.commands import Command
from ledger.domain.errors import LedgerError
from ledger.domain.rules import Decision, decide
from ledger.write.service import Ledger
from projections.embedded import EmbeddedProjection
from projections.facts import ProjectionReader
from projections.store.postgres import PostgresProjectionStore, migrate
from schemas import parse_event
from tests.helpers import empty_sqlite_ledger, marketing_purpose

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PURPOSES = ("newsletter", "offers", "service")
V2_PURPOSES = ("newsletter",)
CHANNELS = ("email", "sms")
POLICY_SHA = {"v1": "a" * 64, "v2": "b" * 64}

World = tuple[Ledger, psycopg.Connection[Any], str, EmbeddedProjection]
"""The embedded ledger, a connection to PostgreSQL, its projection's schema, the SQLite one."""


def _catalog(*, reconsent_from: datetime) -> list[Command]:
    """Two consent purposes (one expiring after a year), one legitimate interest; from
    ``reconsent_from`` on, the newsletter requires consent to policy v2."""
    return [
        marketing_purpose("newsletter", T0),
        marketing_purpose("offers", T0, max_age_days=365),
        commands.RegisterPurpose(
            purpose="service", legal_basis="legitimate_interest", description="s", occurred_at=T0
        ),
        commands.PublishPolicyVersion(
            version="v1",
            text_sha256=POLICY_SHA["v1"],
            effective_at=T0,
            purposes=PURPOSES,
            occurred_at=T0,
        ),
        commands.PublishPolicyVersion(
            version="v2",
            text_sha256=POLICY_SHA["v2"],
            effective_at=reconsent_from,
            purposes=V2_PURPOSES,
            requires_reconsent=True,
            occurred_at=T0,
        ),
    ]


@contextmanager
def open_world(
    tmp_path_factory: pytest.TempPathFactory,
    pg_dsn: str,
    *,
    name: str,
    reconsent_from: datetime,
) -> Iterator[World]:
    """An embedded ledger holding the catalog, projected into a new PostgreSQL schema (dropped
    afterwards) and into its own SQLite file."""
    path = tmp_path_factory.mktemp(name) / "ledger.sqlite3"
    ledger = empty_sqlite_ledger(path)
    for command in _catalog(reconsent_from=reconsent_from):
        ledger.execute(command)
    schema = f"{name}_{uuid4().hex[:10]}"
    conn = psycopg.connect(pg_dsn)
    with conn.transaction():
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        migrate(conn, schema=schema)
        _project(ledger, conn, schema, after=0)
    embedded = EmbeddedProjection(path=path)
    yield ledger, conn, schema, embedded
    embedded.close()
    ledger.close()
    with conn.transaction():
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    conn.close()


def _project(ledger: Ledger, conn: psycopg.Connection[Any], schema: str, *, after: int) -> None:
    rows = ledger.store.notifications(after=after, limit=10_000)
    PostgresProjectionStore(conn, schema=schema).apply([(parse_event(r.state), r.id) for r in rows])


def steps(*, people: int, mailing_lists: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    """One step of a history: what happens, to which of ``people`` persons (by index), with
    what; unsubscribing from a mailing list only when ``mailing_lists``."""
    purpose = st.sampled_from(PURPOSES)
    channel = st.sampled_from(CHANNELS)
    who = st.integers(0, people - 1)
    from_list = st.booleans() if mailing_lists else st.just(False)
    return st.one_of(
        st.tuples(
            st.just("grant"), who, purpose, channel, st.booleans(), st.sampled_from(["v1", "v2"])
        ),
        st.tuples(st.just("confirm"), who, purpose, channel),
        st.tuples(st.just("withdraw"), who, purpose, channel),
        st.tuples(st.just("unsubscribe"), who, st.none() | purpose, from_list),
        st.tuples(st.just("object"), who, st.none() | purpose),
        st.tuples(st.just("restrict"), who, st.lists(purpose, max_size=1)),
        st.tuples(st.just("lift"), who, st.lists(purpose, max_size=1)),
        st.tuples(st.just("interaction"), who),
        st.tuples(st.just("erase"), who),
        st.tuples(st.just("complain"), who, st.sampled_from(["abuse", "not-spam"])),
        st.tuples(st.just("bounce"), who),
    )


def command(subjects: Sequence[str], item: tuple[Any, ...], when: datetime) -> Command:  # noqa: PLR0911
    """The command a step of ``steps`` stands for, its person taken from ``subjects``."""
    kind, person = item[0], subjects[item[1]]
    base: dict[str, Any] = {"subject": person, "occurred_at": when}
    if kind == "grant":
        return commands.GrantConsent(
            **base,
            purpose=item[2],
            channel=item[3],
            # v2 covers the newsletter only: a grant for another purpose names v1, which covers it.
            policy_version=item[5] if item[2] in V2_PURPOSES else "v1",
            double_opt_in="pending" if item[4] else "not_applicable",
        )
    if kind == "confirm":
        return commands.ConfirmConsent(**base, purpose=item[2], channel=item[3])
    if kind == "withdraw":
        return commands.WithdrawConsent(**base, purpose=item[2], channel=item[3])
    if kind == "unsubscribe":
        if item[3] and item[2] is None:
            return commands.Unsubscribe(**base, list_id="weekly")
        return commands.Unsubscribe(**base, purpose=item[2])
    if kind == "object":
        if item[2] is None:
            return commands.RecordObjection(**base, all_direct_marketing=True)
        return commands.RecordObjection(**base, purpose=item[2])
    if kind == "restrict":
        return commands.RestrictProcessing(**base, purposes=tuple(item[2]))
    if kind == "lift":
        return commands.LiftRestriction(**base, purposes=tuple(item[2]))
    if kind == "interaction":
        return commands.RecordInteraction(**base, kind="click")
    if kind == "complain":
        return commands.RecordComplaint(**base, feedback_type=item[2], report_sha256="c" * 64)
    if kind == "bounce":
        return commands.RecordUndeliverable(**base, kind="hard_bounce", report_sha256="b" * 64)
    return commands.EraseSubject(**base)


def record(
    world: World, subjects: Sequence[str], history: Sequence[tuple[Any, ...]], *, every: timedelta
) -> None:
    """Execute a history's commands, one ``every`` from T0, and feed both projections."""
    ledger, conn, schema, embedded = world
    start = ledger.store.head()
    for n, item in enumerate(history):
        # A refused command (confirming nothing, say) records nothing, in both views.
        with contextlib.suppress(LedgerError):
            ledger.execute(command(subjects, item, T0 + n * every))
    with conn.transaction():
        _project(ledger, conn, schema, after=start)
    while embedded.feed_once(ledger.store):
        pass


def projected(
    world: World, subject: str, purpose: str, channel: str, at: datetime
) -> tuple[Decision, Decision]:
    """What the PostgreSQL projection and the SQLite one decide for this check at ``at``."""
    _, conn, schema, embedded = world
    in_postgres = ProjectionReader(conn, schema=schema).facts(subject, purpose, channel)
    in_sqlite = embedded.facts(subject, purpose, channel)
    return (
        decide(in_postgres, purpose=purpose, channel=channel, at=at),
        decide(in_sqlite, purpose=purpose, channel=channel, at=at),
    )


def world_fixture(name: str, *, reconsent_from: datetime) -> Any:
    """A module's ``world`` fixture: one world for all of the module's examples."""

    @pytest.fixture(scope="module")
    def world(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str) -> Iterator[World]:
        with open_world(
            tmp_path_factory, pg_dsn, name=name, reconsent_from=reconsent_from
        ) as opened:
            yield opened

    return world
