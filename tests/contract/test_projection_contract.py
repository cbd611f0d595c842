"""The projection store contract, written once, run against the PostgreSQL and SQLite adapters."""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from ledger.domain.rules import (
    ConsentFacts,
    ConsentStatus,
    Decision,
    Reason,
    SuppressionFacts,
    SuppressionReason,
    decide,
)
from projections.store.base import ProjectionStore, Tracking
from projections.store.postgres import PostgresProjectionStore
from projections.store.sqlite import SQLiteProjectionStore
from schemas import CATALOG_SUBJECT, EventBase, parse_event
from tests.helpers import envelope

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REQUEST = UUID(int=7)
FEED = Tracking("embedded")


def _event(event_type: str, subject: str, day: int = 0, **fields: Any) -> EventBase:
    return parse_event(envelope(event_type, subject, T0 + timedelta(days=day), **fields))


def _catalog() -> list[tuple[EventBase, int]]:
    return [
        (
            _event(
                "PurposeRegistered",
                CATALOG_SUBJECT,
                purpose="newsletter",
                legal_basis="consent",
                description="d",
                direct_marketing=True,
                max_age_days=1000,
            ),
            1,
        ),
        (
            _event(
                "PolicyVersionPublished",
                CATALOG_SUBJECT,
                version="v1",
                text_sha256="b" * 64,
                effective_at=T0.isoformat(),
                purposes=["newsletter"],
                requires_reconsent=False,
            ),
            2,
        ),
    ]


def _grant(subject: str, day: int = 1, **fields: Any) -> EventBase:
    return _event(
        "ConsentGranted",
        subject,
        day,
        schema_version=2,
        purpose="newsletter",
        channel="email",
        policy_version="v1",
        double_opt_in=fields.pop("double_opt_in", "not_applicable"),
        **fields,
    )


def _open_request(subject: str, day: int, request: UUID = REQUEST) -> EventBase:
    return _event(
        "RightsRequestOpened",
        subject,
        day,
        request_id=str(request),
        right="access",
        received_at=(T0 + timedelta(days=day)).isoformat(),
        due_at=(T0 + timedelta(days=day + 30)).isoformat(),
    )


class CrashError(Exception):
    """The process dying inside a transaction."""


class ProjectionContract:
    """What every projection store owes; a subclass gives the ``store`` fixture."""

    def _apply(self, store: ProjectionStore, events: list[tuple[EventBase, int]]) -> None:
        with store.transaction():
            store.apply(events)

    def test_consent_events_set_the_consent_state(self, store: ProjectionStore) -> None:
        self._apply(store, [*_catalog(), (_grant("ann", double_opt_in="pending"), 3)])
        facts = store.facts("ann", "newsletter", "email")
        assert facts.purpose is not None
        assert facts.purpose.legal_basis == "consent"
        assert facts.purpose.max_age_days == 1000
        assert [p.version for p in facts.policies] == ["v1"]
        assert facts.policies[0].purposes == ("newsletter",)
        assert facts.consent == ConsentFacts(ConsentStatus.PENDING, "v1", T0 + timedelta(days=1), 3)
        confirm = _event("ConsentConfirmed", "ann", 2, purpose="newsletter", channel="email")
        self._apply(store, [(confirm, 4)])
        # A confirmation keeps the granted policy version.
        assert store.facts("ann", "newsletter", "email").consent == ConsentFacts(
            ConsentStatus.GRANTED, "v1", T0 + timedelta(days=2), 4
        )
        withdraw = _event(
            "ConsentWithdrawn",
            "ann",
            3,
            purpose="newsletter",
            channel="email",
            reason="user_request",
        )
        self._apply(store, [(withdraw, 5)])
        consent = store.facts("ann", "newsletter", "email").consent
        assert consent is not None
        assert (consent.status, consent.last_position) == ("withdrawn", 5)

    def test_an_unsubscribe_suppresses_and_withdraws_every_email_consent(
        self, store: ProjectionStore
    ) -> None:
        unsubscribe = _event("UnsubscribeClicked", "bob", 2, method="link_page")
        self._apply(store, [*_catalog(), (_grant("bob"), 3), (unsubscribe, 4)])
        facts = store.facts("bob", "newsletter", "email")
        assert facts.suppressions == (SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 4),)
        assert facts.consent is not None
        assert facts.consent.status == "withdrawn"
        # A newer grant for the purpose does not lift an unsubscribe from everything.
        self._apply(store, [(_grant("bob", 5), 6)])
        facts = store.facts("bob", "newsletter", "email")
        assert facts.consent is not None
        assert facts.consent.status == "granted"
        assert facts.suppressions == (SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 4),)

    def test_a_newer_grant_lifts_an_unsubscribe_from_its_purpose(
        self, store: ProjectionStore
    ) -> None:
        unsubscribe = _event(
            "UnsubscribeClicked", "cat", 2, method="link_page", purpose="newsletter"
        )
        self._apply(store, [*_catalog(), (_grant("cat"), 3), (unsubscribe, 4)])
        assert store.facts("cat", "newsletter", "email").suppressions == (
            SuppressionFacts("newsletter", SuppressionReason.UNSUBSCRIBED, 4),
        )
        self._apply(store, [(_grant("cat", 5), 6)])
        assert store.facts("cat", "newsletter", "email").suppressions == ()

    def test_objection_erasure_restriction_and_interaction(self, store: ProjectionStore) -> None:
        self._apply(
            store,
            [
                *_catalog(),
                (_event("ObjectionRecorded", "dan", 1, all_direct_marketing=True), 3),
                (_event("SubjectErased", "dan", 2), 4),
                (_event("ProcessingRestricted", "dan", 3, purposes=["newsletter"]), 5),
                (_event("InteractionRecorded", "dan", 4, kind="click"), 6),
            ],
        )
        facts = store.facts("dan", "newsletter", "email")
        assert sorted(facts.suppressions, key=lambda s: s.scope) == [
            SuppressionFacts("#erased", SuppressionReason.ERASED, 4),
            SuppressionFacts("*", SuppressionReason.OBJECTION, 3),
        ]
        assert facts.restrictions == frozenset({"newsletter"})
        assert facts.last_interaction == T0 + timedelta(days=4)
        self._apply(store, [(_event("RestrictionLifted", "dan", 5, purposes=[]), 7)])
        assert store.facts("dan", "newsletter", "email").restrictions == frozenset()

    def test_an_unsubscribe_keeps_an_objection_with_the_same_scope(
        self, store: ProjectionStore
    ) -> None:
        # Keyed by scope alone, the unsubscribe replaced the objection, and the grant after it
        # lifted what was left: an art. 21 objection silently gone.
        objection = _event("ObjectionRecorded", "fay", 1, all_direct_marketing=True)
        unsubscribe = _event("UnsubscribeClicked", "fay", 2, method="one_click_post")
        self._apply(store, [*_catalog(), (objection, 3), (unsubscribe, 4), (_grant("fay", 3), 5)])
        assert sorted(
            store.facts("fay", "newsletter", "email").suppressions, key=lambda s: s.reason
        ) == [
            SuppressionFacts("*", SuppressionReason.OBJECTION, 3),
            SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 4),
        ]
        facts = store.facts("fay", "newsletter", "email")
        assert decide(facts, purpose="newsletter", channel="email", at=T0) == Decision(
            allowed=False, reason=Reason.OBJECTED
        )

    def test_an_unknown_purpose_has_no_facts(self, store: ProjectionStore) -> None:
        self._apply(store, [(_grant("eve"), 3)])
        assert store.facts("eve", "newsletter", "email").purpose is None

    def test_a_duplicate_or_replayed_event_changes_nothing(self, store: ProjectionStore) -> None:
        grant = _grant("fay")
        withdraw = _event(
            "ConsentWithdrawn",
            "fay",
            3,
            purpose="newsletter",
            channel="email",
            reason="user_request",
        )
        lift = _event("RestrictionLifted", "fay", 5, purposes=[])
        restrict = _event("ProcessingRestricted", "fay", 4, purposes=[])
        self._apply(store, [*_catalog(), (grant, 3), (withdraw, 4), (restrict, 5), (lift, 6)])
        before = store.facts("fay", "newsletter", "email")
        # The older events again, in one batch and one by one: the last position wins.
        self._apply(store, [(grant, 3), (restrict, 5)])
        self._apply(store, [(grant, 3)])
        self._apply(store, [(restrict, 5)])
        assert store.facts("fay", "newsletter", "email") == before
        assert before.consent is not None
        assert before.consent.status == "withdrawn"
        assert before.restrictions == frozenset()

    def test_rights_requests_are_listed_while_open(self, store: ProjectionStore) -> None:
        later = UUID(int=8)
        extend = _event(
            "RightsRequestExtended",
            "gus",
            2,
            request_id=str(REQUEST),
            due_at=(T0 + timedelta(days=90)).isoformat(),
            reason="complex",
        )
        self._apply(store, [(_open_request("gus", 1), 3), (_open_request("hal", 2, later), 4)])
        self._apply(store, [(extend, 5), (_open_request("gus", 1), 3)])
        requests = store.open_requests()
        assert [(r.request_id, r.subject, r.extended) for r in requests] == [
            (str(later), "hal", False),
            (str(REQUEST), "gus", True),
        ]
        assert requests[1].due_at == T0 + timedelta(days=90)
        assert requests[1].received_at == T0 + timedelta(days=1)
        close = _event(
            "RightsRequestClosed", "gus", 3, request_id=str(REQUEST), outcome="fulfilled"
        )
        self._apply(store, [(close, 6)])
        assert [r.request_id for r in store.open_requests()] == [str(later)]

    def test_a_rights_request_names_its_person_open_or_closed(self, store: ProjectionStore) -> None:
        close = _event(
            "RightsRequestClosed", "gus", 2, request_id=str(REQUEST), outcome="fulfilled"
        )
        self._apply(
            store, [(_open_request("gus", 1), 3), (_open_request("hal", 1, UUID(int=8)), 4)]
        )
        self._apply(store, [(close, 5)])
        assert store.request_subject(str(REQUEST).upper()) == "gus"
        assert store.request_subject(str(UUID(int=8))) == "hal"
        assert store.request_subject(str(UUID(int=9))) is None

    def test_counts_group_consents_suppressions_and_open_requests(
        self, store: ProjectionStore
    ) -> None:
        self._apply(
            store,
            [
                *_catalog(),
                (_grant("ann"), 3),
                (_grant("bob"), 4),
                (_event("ObjectionRecorded", "bob", 2, all_direct_marketing=True), 5),
                (_open_request("cat", 1), 6),
            ],
        )
        opted_in, suppressed, rights = store.counts()
        assert [tuple(r) for r in opted_in] == [("newsletter", "email", 2)]
        assert [tuple(r) for r in suppressed] == [("objection", 1)]
        # Opened long ago: one open request, overdue, none due soon.
        assert [(r[0], r[1], r[2], r[3] or 0) for r in rights] == [("access", 1, 1, 0)]

    def test_offsets_are_stored_with_the_rows_or_not_at_all(self, store: ProjectionStore) -> None:
        tracking = self.tracking()
        assert store.offsets(tracking) == {}
        with store.transaction():
            store.apply([*_catalog(), (_grant("ida"), 3)])
            store.save_offsets(tracking, {0: 3})
        assert store.offsets(tracking) == {0: 3}

        def crash_after_writing() -> None:
            with store.transaction():
                store.apply([(_event("SubjectErased", "ida", 2), 4)])
                store.save_offsets(tracking, {0: 4})
                raise CrashError

        with pytest.raises(CrashError):
            crash_after_writing()
        assert store.offsets(tracking) == {0: 3}
        assert store.facts("ida", "newsletter", "email").suppressions == ()
        with store.transaction():
            store.save_offsets(tracking, {0: 9})
        assert store.offsets(tracking) == {0: 9}

    def tracking(self) -> Tracking:
        return FEED


class TestSQLiteProjection(ProjectionContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ProjectionStore]:
        store = SQLiteProjectionStore(tmp_path / "ledger.sqlite3")
        store.migrate()
        yield store
        store.close()

    def test_a_file_keyed_by_scope_is_keyed_by_reason_too_with_its_rows(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "old.sqlite3"
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(
                "create table suppression (subject text not null, scope text not null, "
                "reason text not null, since text not null, last_position integer not null, "
                "active boolean not null default true, primary key (subject, scope))"
            )
            conn.execute(
                "insert into suppression values ('gus', '*', 'objection', ?, 3, 1)",
                (T0.isoformat(),),
            )
        store = SQLiteProjectionStore(path)
        try:
            store.migrate()
            store.migrate()
            _assert_rekeyed(self, store, "gus")
        finally:
            store.close()


@pytest.mark.integration
class TestPostgresProjection(ProjectionContract):
    @pytest.fixture
    def store(self, pg_dsn: str, schema: str) -> Iterator[ProjectionStore]:
        store = PostgresProjectionStore(psycopg.connect(pg_dsn), schema=schema)
        with store.transaction():
            store.migrate()
        yield store
        store.close()

    def tracking(self) -> Tracking:
        return Tracking("consent-ledger-projections", "consent.events.v1")

    def test_a_table_keyed_by_scope_is_keyed_by_reason_too_with_its_rows(
        self, pg_dsn: str, schema: str
    ) -> None:
        table = sql.Identifier(schema, "suppression")
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "create table {} (subject text not null, scope text not null, reason text "
                    "not null, since timestamptz not null, last_position bigint not null, "
                    "primary key (subject, scope))"
                ).format(table)
            )
            conn.execute(
                sql.SQL("insert into {} values ('gus', '*', 'objection', %s, 3)").format(table),
                (T0,),
            )
        store = PostgresProjectionStore(psycopg.connect(pg_dsn), schema=schema)
        try:
            for _ in range(2):
                with store.transaction():
                    store.migrate()
            _assert_rekeyed(self, store, "gus")
        finally:
            store.close()

    def test_batches_past_the_last_round_give_the_same_rows(
        self, pg_dsn: str, schema: str, store: ProjectionStore
    ) -> None:
        # One person written more often than there are rounds: the rest runs one by one.
        one_round = PostgresProjectionStore(psycopg.connect(pg_dsn), schema=schema, max_rounds=1)
        try:
            withdraw = _event(
                "ConsentWithdrawn",
                "jon",
                3,
                purpose="newsletter",
                channel="email",
                reason="user_request",
            )
            with one_round.transaction():
                one_round.apply(
                    [*_catalog(), (_grant("jon"), 3), (withdraw, 4), (_grant("jon", 5), 5)]
                )
        finally:
            one_round.close()
        consent = store.facts("jon", "newsletter", "email").consent
        assert consent == ConsentFacts(ConsentStatus.GRANTED, "v1", T0 + timedelta(days=5), 5)


def _assert_rekeyed(contract: ProjectionContract, store: ProjectionStore, subject: str) -> None:
    """The row made under the old key is kept, and an unsubscribe now stands beside it."""
    unsubscribe = _event("UnsubscribeClicked", subject, 2, method="one_click_post")
    contract._apply(store, [*_catalog(), (unsubscribe, 4)])
    assert sorted(
        store.facts(subject, "newsletter", "email").suppressions, key=lambda s: s.reason
    ) == [
        SuppressionFacts("*", SuppressionReason.OBJECTION, 3),
        SuppressionFacts("*", SuppressionReason.UNSUBSCRIBED, 4),
    ]
