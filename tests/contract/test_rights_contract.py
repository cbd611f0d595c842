"""Data-subject rights end to end, written once and run on SQLite and PostgreSQL.

Erasure, export, retention, rights requests, objection and restriction: through the ledger, its
projection (embedded SQLite or PostgreSQL tables), the point-in-time replay and the audit tree.
"""

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ledger.audit.check import verify_ledger
from ledger.audit.sealer import Sealer, SealerConfig
from ledger.audit.store import PostgresTreeStore, SQLiteTreeStore, TreeStore
from ledger.audit.tlog.bundle import verify_bundle
from ledger.audit.tlog.note import signer_from_seed
from ledger.domain import commands
from ledger.domain.commands import Command
from ledger.domain.errors import RightsRequestAlreadyExtendedError, RightsRequestExtensionError
from ledger.domain.identity import SubjectHasher
from ledger.domain.rules import Decision, Facts, Reason, decide
from ledger.privacy.keystore import DataKeyStore, PostgresDataKeyStore, SQLiteDataKeyStore
from ledger.rights.point_in_time import decision_at
from ledger.rights.receipts import Proofs, export_document, person_log
from ledger.rights.retention import run_retention
from ledger.store.events import PostgresStoreConfig, SQLiteStoreConfig, StoreConfig
from ledger.write.service import Ledger
from projections.embedded import EmbeddedProjection
from projections.metrics import CHECKS_PART
from projections.rights import OpenRequest, summarise
from projections.store.postgres import PostgresProjectionStore
from schemas import (
    ConsentWithdrawn,
    Evidence,
    PersonalData,
    parse_event,
)
from tests.contract.opened import audited_ledger
from tests.helpers import marketing_purpose

# Relative to today, so that "now" stays inside the three years a prospect's consent lasts.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=700)
SIGNER = signer_from_seed("ledger.test/rights", b"\x09" * 32)
V1_SHA = hashlib.sha256(b"Politique de confidentialite v1").hexdigest()
V2_SHA = hashlib.sha256(b"Politique de confidentialite v2").hexdigest()
SHOWN_SHA = hashlib.sha256(b"Oui, je veux recevoir la newsletter").hexdigest()
ANN = "ann@example.org"
CATALOG: tuple[Command, ...] = (
    marketing_purpose("newsletter", T0, description="The monthly newsletter"),
    marketing_purpose("offers", T0, description="Partner offers", max_age_days=365),
    marketing_purpose(
        "prospecting", T0, legal_basis="legitimate_interest", description="Offers to customers"
    ),
    commands.RegisterPurpose(
        purpose="service", legal_basis="contract", description="Service mail", occurred_at=T0
    ),
    commands.PublishPolicyVersion(
        version="v1",
        text_sha256=V1_SHA,
        url="https://example.org/privacy/v1",
        effective_at=T0,
        occurred_at=T0,
    ),
)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class World(ABC):
    """A ledger with its audit tree and its projection, on one kind of storage."""

    ledger: Ledger
    tree: TreeStore
    sealer: Sealer

    def setup(self, store: StoreConfig, keys: DataKeyStore, tree: TreeStore) -> None:
        self.ledger, self.sealer = audited_ledger(
            store, keys, tree, signer=SIGNER, sealing=SealerConfig(SIGNER.name), max_batch=16
        )
        self.tree = tree
        for command in CATALOG:
            self.ledger.execute(command)

    def close(self) -> None:
        self.ledger.close()
        self.tree.close()

    @abstractmethod
    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        """The projection's facts, fed up to the ledger's head first."""

    @abstractmethod
    def open_requests(self) -> list[OpenRequest]: ...

    @abstractmethod
    def opted_in(self) -> dict[tuple[str, str], int]:
        """What the opted-in gauge counts, per (purpose, channel), fed up to the head first."""

    def projected(self, subject: str, purpose: str, channel: str = "email") -> Decision:
        now = datetime.now(UTC)
        return decide(
            self.facts(subject, purpose, channel), purpose=purpose, channel=channel, at=now
        )

    def replayed(
        self, subject: str, purpose: str, channel: str = "email", at: datetime | None = None
    ) -> Decision:
        log = person_log(self.ledger, subject)
        when = at or datetime.now(UTC)
        return decision_at(log, subject=subject, purpose=purpose, channel=channel, at=when).decision


class RightsContract:
    """Behaviour both storage modes must show."""

    @pytest.fixture
    def world(self) -> Iterator[World]:
        raise NotImplementedError

    def test_an_erased_unsubscribed_address_stays_suppressed_until_a_new_explicit_consent(
        self, world: World
    ) -> None:
        ledger = world.ledger
        personal = PersonalData(ip="192.0.2.7")
        subject = ledger.execute(
            commands.GrantConsent(
                address=ANN,
                purpose="newsletter",
                policy_version="v1",
                occurred_at=day(1),
                personal=personal,
            )
        ).subject
        ledger.execute(
            commands.GrantConsent(
                address=ANN, purpose="offers", policy_version="v1", occurred_at=day(1)
            )
        )
        ledger.execute(commands.Unsubscribe(address=ANN, occurred_at=day(2)))
        ledger.execute(commands.EraseSubject(subject=subject, occurred_at=day(3)))

        assert subject == SubjectHasher(secret=b"h" * 32).subject_for(ANN)
        for purpose in ("newsletter", "offers", "prospecting"):
            assert world.projected(subject, purpose) == Decision(False, Reason.ERASED)
            assert world.replayed(subject, purpose) == Decision(False, Reason.ERASED)
        history = ledger.history(subject, decrypt=True)
        assert [e.event_type for e in history][-1] == "SubjectErased"
        assert {e.personal.kind for e in history if e.personal is not None} == {"erased"}

        ledger.execute(
            commands.GrantConsent(
                address=ANN, purpose="newsletter", policy_version="v1", occurred_at=day(4)
            )
        )
        reopened = ledger.history(subject, decrypt=True)[-1].personal
        assert isinstance(reopened, PersonalData)
        assert reopened.address == ANN
        assert world.projected(subject, "newsletter") == Decision(True)
        assert world.replayed(subject, "newsletter") == Decision(True)
        # Only the purpose consented to again: the older consent to offers stays erased.
        assert world.projected(subject, "offers") == Decision(False, Reason.ERASED)
        assert world.replayed(subject, "newsletter", at=day(3.5)) == Decision(False, Reason.ERASED)

    def test_an_erased_person_no_longer_counts_nor_shows_as_granted(self, world: World) -> None:
        ledger = world.ledger
        for purpose in ("newsletter", "offers"):
            ledger.execute(
                commands.GrantConsent(
                    address=ANN, purpose=purpose, policy_version="v1", occurred_at=day(1)
                )
            )
            ledger.execute(
                commands.GrantConsent(
                    subject="p-stays", purpose=purpose, policy_version="v1", occurred_at=day(1)
                )
            )
        subject = SubjectHasher(secret=b"h" * 32).subject_for(ANN)
        assert world.opted_in() == {("newsletter", "email"): 2, ("offers", "email"): 2}

        ledger.execute(commands.EraseSubject(subject=subject, occurred_at=day(2)))

        assert world.opted_in() == {("newsletter", "email"): 1, ("offers", "email"): 1}
        person = ledger.person(subject)
        assert person is not None
        assert {key: c.status.value for key, c in person.consents.items()} == {
            ("newsletter", "email"): "withdrawn",
            ("offers", "email"): "withdrawn",
        }
        for purpose in ("newsletter", "offers"):
            assert world.projected(subject, purpose) == Decision(False, Reason.ERASED)
            assert world.replayed(subject, purpose) == Decision(False, Reason.ERASED)
        # A new consent after the erasure counts again, for its own purpose only.
        ledger.execute(
            commands.GrantConsent(
                address=ANN, purpose="newsletter", policy_version="v1", occurred_at=day(3)
            )
        )
        assert world.opted_in() == {("newsletter", "email"): 2, ("offers", "email"): 1}

    def test_a_full_audit_verify_and_the_exported_bundle_pass_after_an_erasure(
        self, world: World
    ) -> None:
        ledger = world.ledger
        subject = ledger.execute(
            commands.GrantConsent(
                address=ANN,
                purpose="newsletter",
                policy_version="v1",
                occurred_at=day(1),
                personal=PersonalData(user_agent="Mozilla/5.0"),
            )
        ).subject
        world.sealer.seal_all()
        before = world.sealer.checkpoint()
        ledger.execute(commands.EraseSubject(subject=subject, occurred_at=day(2)))
        ledger.execute(
            commands.GrantConsent(
                address=ANN, purpose="newsletter", policy_version="v1", occurred_at=day(3)
            )
        )
        proofs = Proofs(tree=world.tree, verifier=SIGNER.verifier())
        pending = export_document(ledger, subject, proofs=proofs, now=day(4))
        assert pending["proof_bundle"]["status"] == "pending"

        world.sealer.seal_all()
        after = world.sealer.checkpoint()
        report = verify_ledger(store=ledger.store, tree=world.tree, verifier=SIGNER.verifier())
        assert report.ok, report.problem
        assert (report.events, report.leaves, report.unsealed) == (
            ledger.store.head(),
            ledger.store.head(),
            0,
        )
        assert report.checkpoints == 2
        assert before.size < after.size

        document = export_document(ledger, subject, proofs=proofs, now=day(4))
        assert document["erased"] is True
        kinds = [(e["personal"] or {}).get("kind") for e in document["events"]]
        assert kinds == ["erased", None, "clear"]
        bundle = document["proof_bundle"]
        assert bundle["status"] == "included"
        # The bundle checks offline with the public key alone, as an auditor would.
        verified = verify_bundle(
            json.loads(json.dumps(bundle["bundle"])), verifier_key=SIGNER.verifier_key()
        )
        assert verified.entries == 3
        assert [r["state"] for r in document["consent_receipts"]] == ["erased", "given"]

    def test_the_export_holds_every_event_and_iso_27560_consent_receipts(
        self, world: World
    ) -> None:
        ledger = world.ledger
        evidence = Evidence(consent_text_sha256=SHOWN_SHA, form_id="signup", form_version="3")
        granted = ledger.execute(
            commands.GrantConsent(
                subject="p-export",
                purpose="offers",
                policy_version="v1",
                double_opt_in="pending",
                occurred_at=day(1),
                evidence=evidence,
                personal=PersonalData(address=ANN, ip="198.51.100.4"),
            )
        )
        ledger.execute(
            commands.ConfirmConsent(subject="p-export", purpose="offers", occurred_at=day(2))
        )
        ledger.execute(
            commands.RecordInteraction(subject="p-export", kind="click", occurred_at=day(3))
        )
        ledger.execute(
            commands.WithdrawConsent(subject="p-export", purpose="offers", occurred_at=day(9))
        )

        document = export_document(ledger, "p-export", proofs=None, now=day(10))

        assert [e["event_type"] for e in document["events"]] == [
            "ConsentGranted",
            "ConsentConfirmed",
            "InteractionRecorded",
            "ConsentWithdrawn",
        ]
        assert document["events"][0]["personal"] == {
            "kind": "clear",
            "address": ANN,
            "ip": "198.51.100.4",
            "user_agent": None,
            "page_url": None,
            "note": None,
        }
        assert document["events"][0]["position"] == granted.position
        assert document["proof_bundle"]["status"] == "unavailable"
        (receipt,) = document["consent_receipts"]
        assert receipt["record_id"] == str(
            export_document(ledger, "p-export", proofs=None, now=day(11))["consent_receipts"][0][
                "record_id"
            ]
        )
        assert receipt["pii_principal_id"] == "p-export"
        assert receipt["notice"] == {
            "policy_version": "v1",
            "text_sha256": V1_SHA,
            "url": "https://example.org/privacy/v1",
            "effective_at": T0.isoformat(),
            "shown_text_sha256": SHOWN_SHA,
        }
        assert receipt["purposes"] == [
            {"purpose": "offers", "description": "Partner offers", "direct_marketing": True}
        ]
        assert receipt["legal_basis"] == {"basis": "consent", "article": "GDPR art. 6(1)(a)"}
        assert receipt["processing"]["channel"] == "email"
        assert receipt["retention"]["max_age_days"] == 365
        assert "unsubscribe" in receipt["withdrawal_method"]
        assert receipt["state"] == "withdrawn"
        assert [e["event_type"] for e in receipt["events"]] == [
            "ConsentGranted",
            "ConsentConfirmed",
            "ConsentWithdrawn",
        ]
        assert receipt["events"][0]["evidence"]["consent_text_sha256"] == SHOWN_SHA

    def test_retention_records_lapsed_and_outdated_consents_once(self, world: World) -> None:
        ledger = world.ledger
        # offers lapse 365 days after the consent or the last click, whichever is later.
        ledger.execute(
            commands.GrantConsent(
                subject="clicks", purpose="offers", policy_version="v1", occurred_at=day(1)
            )
        )
        ledger.execute(
            commands.RecordInteraction(subject="clicks", kind="click", occurred_at=day(200))
        )
        ledger.execute(
            commands.GrantConsent(
                subject="silent", purpose="offers", policy_version="v1", occurred_at=day(1)
            )
        )
        ledger.execute(
            commands.GrantConsent(
                subject="old", purpose="newsletter", policy_version="v1", occurred_at=day(1)
            )
        )
        ledger.execute(
            commands.PublishPolicyVersion(
                version="v2",
                text_sha256=V2_SHA,
                effective_at=day(300),
                purposes=("newsletter",),
                requires_reconsent=True,
                occurred_at=day(250),
            )
        )
        ledger.execute(
            commands.GrantConsent(
                subject="new", purpose="newsletter", policy_version="v2", occurred_at=day(301)
            )
        )

        early = run_retention(ledger, now=day(100))
        assert (early.due, early.recorded) == ((), 0)

        head = ledger.store.head()
        dry = run_retention(ledger, now=day(400), dry_run=True)
        assert ledger.store.head() == head
        due = {(c.subject, c.purpose, c.reason.value, c.occurred_at) for c in dry.due}
        assert due == {
            ("silent", "offers", "lapsed", day(366)),
            ("old", "newsletter", "reconsent_required", day(300)),
        }
        assert world.replayed("silent", "offers", at=day(400)) == Decision(False, Reason.EXPIRED)

        ran = run_retention(ledger, now=day(400))
        assert (ran.recorded, ran.errors) == (2, ())
        assert ledger.store.head() == head + 2
        again = run_retention(ledger, now=day(400))
        assert (again.due, again.recorded) == ((), 0)
        # Two runs racing each other derive the same command ids: the second appends nothing.
        assert [c.command_id for c in ran.due] == [c.command_id for c in dry.due]
        raced = ledger.record_many(list(dry.due))
        assert all(not isinstance(r, Exception) and r.duplicate for r in raced)
        assert ledger.store.head() == head + 2

        withdrawn = ledger.history("silent")[-1]
        assert isinstance(withdrawn, ConsentWithdrawn)
        assert (withdrawn.reason.value, withdrawn.source.value) == ("lapsed", "retention")
        assert withdrawn.occurred_at == day(366)
        assert world.replayed("silent", "offers", at=day(400)) == Decision(False, Reason.WITHDRAWN)
        assert world.replayed("silent", "offers", at=day(300)) == Decision(True)
        assert world.projected("old", "newsletter") == Decision(False, Reason.WITHDRAWN)
        assert world.projected("new", "newsletter") == Decision(True)
        # The click at day 200 kept this one alive until day 565.
        later = run_retention(ledger, now=day(600))
        assert {(c.subject, c.reason.value) for c in later.due} == {("clicks", "lapsed")}
        assert later.recorded == 1

    def test_a_rights_request_is_due_in_a_month_extended_once_and_listed_while_open(
        self, world: World
    ) -> None:
        ledger = world.ledger
        late = commands.OpenRightsRequest(subject="asker", right="access", occurred_at=day(1))
        fresh = commands.OpenRightsRequest(
            subject="asker", right="erasure", occurred_at=datetime.now(UTC) - timedelta(days=1)
        )
        done = commands.OpenRightsRequest(subject="other", right="portability", occurred_at=day(1))
        for command in (late, fresh, done):
            ledger.execute(command)
        ledger.execute(
            commands.CloseRightsRequest(
                subject="other", request_id=done.request_id, outcome="fulfilled", occurred_at=day(2)
            )
        )
        extended = {"subject": "asker", "request_id": late.request_id, "reason": "many files"}
        with pytest.raises(RightsRequestExtensionError):
            ledger.execute(
                commands.ExtendRightsRequest(**extended, due_at=day(20), occurred_at=day(20))
            )
        ledger.execute(
            commands.ExtendRightsRequest(**extended, due_at=day(90), occurred_at=day(20))
        )
        with pytest.raises(RightsRequestAlreadyExtendedError):
            ledger.execute(
                commands.ExtendRightsRequest(**extended, due_at=day(120), occurred_at=day(21))
            )

        requests = {r.request_id: r for r in world.open_requests()}
        assert set(requests) == {str(late.request_id), str(fresh.request_id)}
        assert requests[str(fresh.request_id)].due_at == fresh.occurred_at + timedelta(days=30)
        assert requests[str(late.request_id)].due_at == day(90)
        assert requests[str(late.request_id)].extended
        now = datetime.now(UTC)
        assert [r.right for r in world.open_requests() if r.overdue(now)] == ["access"]

    def test_an_objection_to_direct_marketing_is_absolute_on_every_purpose_and_channel(
        self, world: World
    ) -> None:
        ledger = world.ledger
        for purpose in ("newsletter", "offers"):
            for channel in ("email", "sms"):
                ledger.execute(
                    commands.GrantConsent(
                        subject="objector",
                        purpose=purpose,
                        channel=channel,
                        policy_version="v1",
                        occurred_at=day(400),
                    )
                )
        ledger.execute(
            commands.RecordObjection(
                subject="objector", all_direct_marketing=True, occurred_at=day(401)
            )
        )
        # A consent given after the objection does not lift it (GDPR art. 21(3)).
        ledger.execute(
            commands.GrantConsent(
                subject="objector", purpose="newsletter", policy_version="v1", occurred_at=day(402)
            )
        )
        for purpose in ("newsletter", "offers", "prospecting"):
            for channel in ("email", "sms", "postal"):
                denied = Decision(False, Reason.OBJECTED)
                assert world.projected("objector", purpose, channel) == denied
                assert world.replayed("objector", purpose, channel) == denied
        assert world.projected("objector", "service") == Decision(True)
        assert world.replayed("objector", "newsletter", at=day(400.5)) == Decision(True)

    def test_an_erasure_does_not_undo_an_objection(self, world: World) -> None:
        ledger = world.ledger
        ledger.execute(
            commands.RecordObjection(
                subject="objector2", all_direct_marketing=True, occurred_at=day(410)
            )
        )
        ledger.execute(commands.EraseSubject(subject="objector2", occurred_at=day(411)))
        ledger.execute(
            commands.GrantConsent(
                subject="objector2", purpose="newsletter", policy_version="v1", occurred_at=day(412)
            )
        )
        denied = Decision(False, Reason.OBJECTED)
        assert world.projected("objector2", "newsletter") == denied
        assert world.replayed("objector2", "newsletter") == denied

    def test_a_restriction_blocks_processing_until_lifted(self, world: World) -> None:
        ledger = world.ledger
        ledger.execute(
            commands.GrantConsent(
                subject="limited", purpose="newsletter", policy_version="v1", occurred_at=day(500)
            )
        )
        ledger.execute(commands.RestrictProcessing(subject="limited", occurred_at=day(501)))
        for purpose in ("newsletter", "service", "prospecting"):
            assert world.projected("limited", purpose) == Decision(False, Reason.RESTRICTED)
        ledger.execute(commands.LiftRestriction(subject="limited", occurred_at=day(502)))
        for purpose in ("newsletter", "service", "prospecting"):
            assert world.projected("limited", purpose) == Decision(True)
        assert world.replayed("limited", "service", at=day(501.5)) == Decision(
            False, Reason.RESTRICTED
        )
        answer = decision_at(
            person_log(ledger, "limited"),
            subject="limited",
            purpose="newsletter",
            channel="email",
            at=day(501.5),
        )
        assert answer.deciding is not None
        assert answer.deciding[0].event_type == "ProcessingRestricted"

    def test_rights_metrics_count_open_and_overdue_requests_by_right(self, world: World) -> None:
        world.ledger.execute(
            commands.OpenRightsRequest(subject="m", right="rectification", occurred_at=day(1))
        )
        summary = summarise(world.open_requests(), now=datetime.now(UTC))
        assert summary["rectification"] == {"open": 1, "overdue": 1}
        assert summary["access"] == {"open": 0, "overdue": 0}
        sample = CHECKS_PART.get_sample_value(
            "consent_ledger_rights_requests_overdue", {"right": "rectification"}
        )
        assert sample == 1


class TestSQLiteRights(RightsContract):
    @pytest.fixture
    def world(self, tmp_path: Path) -> Iterator[World]:
        world = _SQLiteWorld(tmp_path / "ledger.sqlite3")
        yield world
        world.close()


class _SQLiteWorld(World):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.setup(
            SQLiteStoreConfig(path=path),
            SQLiteDataKeyStore(path=path, master_key=b"k" * 32),
            SQLiteTreeStore(path=path),
        )
        self.projection = EmbeddedProjection(path=path)

    def _feed(self) -> None:
        while self.projection.feed_once(self.ledger.store):
            pass

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        self._feed()
        return self.projection.facts(subject, purpose, channel)

    def open_requests(self) -> list[OpenRequest]:
        self._feed()
        return self.projection.store.open_requests()

    def opted_in(self) -> dict[tuple[str, str], int]:
        self._feed()
        return {(str(p), str(c)): int(n) for p, c, n in self.projection.store.counts()[0]}

    def close(self) -> None:
        self.projection.close()
        super().close()


@pytest.mark.integration
class TestPostgresRights(RightsContract):
    @pytest.fixture
    def world(self, pg_dsn: str, schema: str) -> Iterator[World]:
        # The projection's schema: named after the test's own, so dropped with it.
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(f"{schema}_p")))
        world = _PostgresWorld(pg_dsn, schema)
        yield world
        world.close()


class _PostgresWorld(World):
    def __init__(self, dsn: str, schema: str) -> None:
        self.setup(
            PostgresStoreConfig(dsn=dsn, schema=schema, pool_size=2),
            PostgresDataKeyStore(dsn=dsn, master_key=b"k" * 32, schema=schema),
            PostgresTreeStore(dsn=dsn, schema=schema),
        )
        self.projection_schema = f"{schema}_p"
        self.conn: psycopg.Connection[Any] = psycopg.connect(dsn)
        self.projection = PostgresProjectionStore(self.conn, schema=self.projection_schema)
        with self.conn.transaction():
            self.projection.migrate()
        self.fed = 0

    def _feed(self) -> None:
        rows = self.ledger.store.notifications(after=self.fed, limit=100_000)
        if rows:
            with self.conn.transaction():
                self.projection.apply([(parse_event(row.state), row.id) for row in rows])
            self.fed = rows[-1].id

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        self._feed()
        return self.projection.facts(subject, purpose, channel)

    def open_requests(self) -> list[OpenRequest]:
        self._feed()
        return self.projection.open_requests()

    def opted_in(self) -> dict[tuple[str, str], int]:
        self._feed()
        return {(str(p), str(c)): int(n) for p, c, n in self.projection.counts()[0]}

    def close(self) -> None:
        self.conn.close()
        super().close()
