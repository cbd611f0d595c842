"""Tamper evidence, written once and run on SQLite and PostgreSQL.

Each test tampers with the event table directly in the database, as an operator with SQL access
could, and `verify_ledger` must name the position; bundles must fail when altered.
"""

import base64
import copy
import hashlib
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from ledger.audit.check import VerifyReport, verify_ledger
from ledger.audit.export import TamperedEventError, export_bundle
from ledger.audit.sealer import Sealer, SealerConfig
from ledger.audit.store import PostgresTreeStore, SQLiteTreeStore, TreeStore
from ledger.audit.tlog.bundle import BundleError, verify_bundle
from ledger.audit.tlog.merkle import consistency_proof, inclusion_proof
from ledger.audit.tlog.note import generate_signer, signer_from_seed
from ledger.audit.tlog.verify import AuditError, verify_consistency
from ledger.domain.commands import (
    EraseSubject,
    GrantConsent,
    PublishPolicyVersion,
    RegisterPurpose,
    Unsubscribe,
)
from ledger.privacy.keystore import DataKeyStore, PostgresDataKeyStore, SQLiteDataKeyStore
from ledger.store.events import PostgresStoreConfig, SQLiteStoreConfig, StoreConfig
from ledger.write.service import Ledger
from schemas import PersonalData
from tests.contract.opened import audited_ledger

T0 = datetime(2026, 2, 1, tzinfo=UTC)
SIGNER = signer_from_seed("ledger.test/audit", b"\x07" * 32)


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def rfc_verify_inclusion(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2, written here apart from the ledger's own verifier."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _h(b"\x01", p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _h(b"\x01", r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2, written here apart from the ledger's own verifier."""
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second or not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root, *proof]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _h(b"\x01", c, fr)
            sr = _h(b"\x01", c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _h(b"\x01", sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


class AuditContract:
    ledger: Ledger
    tree: TreeStore
    sealer: Sealer

    # -- what each database gives -------------------------------------------------------------

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def events_table(self) -> str:
        raise NotImplementedError

    def leaves_table(self) -> str:
        raise NotImplementedError

    def open_gap(self) -> int:
        """Make the next ledger position skip one id; return the skipped id."""
        raise NotImplementedError

    def close_gap(self, position: int) -> None:
        """Undo what `open_gap` left behind other than the gap itself."""

    # -- helpers -------------------------------------------------------------------------------

    def write(self, count: int, *, subject: str = "alice") -> None:
        for n in range(count):
            self.ledger.execute(
                Unsubscribe(subject=subject, list_id=f"list-{n}-{uuid4().hex[:6]}", occurred_at=T0)
            )

    def verify(self) -> VerifyReport:
        return verify_ledger(store=self.ledger.store, tree=self.tree, verifier=SIGNER.verifier())

    def setup_ledger(self, store: StoreConfig, keys: DataKeyStore, tree: TreeStore) -> None:
        self.ledger, self.sealer = audited_ledger(
            store,
            keys,
            tree,
            signer=SIGNER,
            sealing=SealerConfig(origin=SIGNER.name, checkpoint_every_events=4),
            max_batch=8,
        )
        self.tree = tree
        self.ledger.execute(
            RegisterPurpose(
                purpose="newsletter", legal_basis="consent", description="n", occurred_at=T0
            )
        )
        self.ledger.execute(
            PublishPolicyVersion(
                version="v1",
                text_sha256="f" * 64,
                effective_at=T0,
                purposes=("newsletter",),
                occurred_at=T0,
            )
        )

    def sealed(self, count: int = 10) -> None:
        self.write(count)
        self.sealer.seal_all()
        self.sealer.checkpoint()

    # -- the tests -----------------------------------------------------------------------------

    def test_an_untouched_ledger_verifies(self) -> None:
        self.sealed()
        self.write(3)
        report = self.verify()
        assert report.ok, report.problem
        assert (report.events, report.leaves, report.unsealed, report.checkpoints) == (15, 12, 3, 1)

    def test_one_altered_byte_is_found_at_its_position(self) -> None:
        self.sealed()
        table = self.events_table()
        target = 7
        (state,) = self.sql(f"select state from {table} where {self.id_column} = %s", (target,))[0]  # noqa: S608
        altered = bytes(state).replace(b"list-", b"list+", 1)
        self.sql(f"update {table} set state = %s where {self.id_column} = %s", (altered, target))  # noqa: S608
        report = self.verify()
        assert report.problem is not None
        assert report.problem.position == target
        assert "changed" in report.problem.what

    def test_a_deleted_event_is_found_at_its_position(self) -> None:
        self.sealed()
        self.sql(f"delete from {self.events_table()} where {self.id_column} = %s", (5,))  # noqa: S608
        report = self.verify()
        assert report.problem is not None
        assert report.problem.position == 5
        assert "deleted" in report.problem.what

    def test_a_leaf_deleted_from_the_tree_is_found_where_it_was(self) -> None:
        self.sealed()
        leaves = self.leaves_table()
        (sealed_at,) = self.sql(f"select position from {leaves} where idx = %s", (4,))[0]  # noqa: S608
        self.sql(f"delete from {leaves} where idx = %s", (4,))  # noqa: S608
        report = self.verify()
        assert report.problem is not None
        # The event of leaf 4 now stands where leaf 5 is: never sealed there.
        assert report.problem.position == sealed_at
        assert "inserted" in report.problem.what

    def test_the_last_event_deleted_is_found(self) -> None:
        self.sealed()
        head = self.ledger.store.head()
        self.sql(f"delete from {self.events_table()} where {self.id_column} = %s", (head,))  # noqa: S608
        report = self.verify()
        assert report.problem is not None
        assert report.problem.position == head

    def test_two_swapped_events_are_found_at_the_first(self) -> None:
        self.sealed()
        table = self.events_table()
        rows = self.sql(
            f"select {self.id_column}, state from {table} where {self.id_column} in (%s, %s)",  # noqa: S608
            (6, 8),
        )
        states = {int(position): bytes(state) for position, state in rows}
        self.sql(f"update {table} set state = %s where {self.id_column} = %s", (states[8], 6))  # noqa: S608
        self.sql(f"update {table} set state = %s where {self.id_column} = %s", (states[6], 8))  # noqa: S608
        report = self.verify()
        assert report.problem is not None
        assert report.problem.position == 6

    def test_an_inserted_event_is_found_at_its_position(self) -> None:
        self.write(3)
        gap = self.open_gap()
        self.write(3)
        self.close_gap(gap)
        self.sealer.seal_all()
        self.sealer.checkpoint()
        assert self.verify().ok
        (template,) = self.sql(
            f"select topic, state from {self.events_table()} where {self.id_column} = %s",  # noqa: S608
            (gap + 1,),
        )
        self.insert_event(gap, template[0], bytes(template[1]))
        report = self.verify()
        assert report.problem is not None
        assert report.problem.position == gap
        assert "inserted" in report.problem.what

    @pytest.mark.parametrize("position", [0, -1, -(2**63)])
    def test_an_event_inserted_below_every_position_is_found(self, position: int) -> None:
        # The store never gives such a position, so a read "after 0" would not see the row.
        self.sealed(3)
        (template,) = self.sql(
            f"select topic, state from {self.events_table()} where {self.id_column} = %s",  # noqa: S608
            (3,),
        )
        self.insert_event(position, template[0], bytes(template[1]))
        report = self.verify()
        assert report.problem is not None
        assert report.problem.position == position
        assert "an event was inserted" in report.problem.what

    def test_checkpoints_are_consistent_pairwise(self) -> None:
        sizes = []
        for count in (3, 2, 3, 5):
            self.write(count)
            self.sealer.seal_all()
            sizes.append(self.sealer.checkpoint())
        for older, newer in itertools.combinations(sizes, 2):
            proof = consistency_proof(first=older.size, second=newer.size, store=self.tree)
            verify_consistency(
                first=older.size,
                second=newer.size,
                first_root=older.root,
                second_root=newer.root,
                proof=proof,
            )
        assert self.verify().ok

    def test_stored_tree_proofs_pass_an_independent_rfc_verifier(self) -> None:
        checkpoints = []
        for count in (1, 4, 2, 6):
            self.write(count)
            self.sealer.seal_all()
            checkpoints.append(self.sealer.checkpoint())
        last = checkpoints[-1]
        leaves = self.tree.leaves(start=0, limit=last.size)
        for leaf in leaves:
            proof = inclusion_proof(index=leaf.index, size=last.size, store=self.tree)
            assert rfc_verify_inclusion(leaf.index, last.size, leaf.hash, proof, last.root)
            assert not rfc_verify_inclusion(
                leaf.index, last.size, leaf.hash, proof, checkpoints[0].root
            )
        for older, newer in itertools.combinations(checkpoints, 2):
            proof = consistency_proof(first=older.size, second=newer.size, store=self.tree)
            assert rfc_verify_consistency(older.size, newer.size, older.root, newer.root, proof)
            assert not rfc_verify_consistency(
                older.size, newer.size, older.root, newer.root, proof[:-1]
            )

    def test_a_forged_checkpoint_signature_is_found(self) -> None:
        self.sealed()
        report = verify_ledger(
            store=self.ledger.store,
            tree=self.tree,
            verifier=generate_signer(SIGNER.name).verifier(),
        )
        assert report.problem is not None
        assert "signature" in report.problem.what

    def bundle(self, subject: str) -> dict[str, Any]:
        self.sealer.seal_all()
        return export_bundle(
            subject=subject,
            store=self.ledger.store,
            tree=self.tree,
            checkpoint=self.sealer.checkpoint(),
            verifier=SIGNER.verifier(),
        )

    def test_a_bundle_proves_every_event_of_one_person(self) -> None:
        self.write(4, subject="bob")
        self.write(5, subject="carol")
        self.write(2, subject="bob")
        bundle = self.bundle("bob")
        assert len(bundle["entries"]) == 6
        assert {e["event"]["subject"] for e in bundle["entries"]} == {"bob"}
        report = verify_bundle(json.loads(json.dumps(bundle)), verifier_key=SIGNER.verifier_key())
        assert (report.entries, report.trusted_key_from_bundle) == (6, False)

    def test_an_altered_bundle_fails(self) -> None:
        self.write(3, subject="bob")
        self.write(3, subject="carol")
        bundle = self.bundle("bob")
        key = SIGNER.verifier_key()

        altered_entry = copy.deepcopy(bundle)
        raw = bytearray(base64.b64decode(altered_entry["entries"][1]["entry"]))
        raw[-3] ^= 0x01
        altered_entry["entries"][1]["entry"] = base64.b64encode(bytes(raw)).decode()
        dropped_hash = copy.deepcopy(bundle)
        dropped_hash["entries"][0]["inclusion_proof"].pop()
        other_event = copy.deepcopy(bundle)
        other_event["entries"][2]["event"]["actor"] = "someone else"
        for broken in (altered_entry, dropped_hash, other_event):
            with pytest.raises(AuditError):
                verify_bundle(broken, verifier_key=key)
        with pytest.raises(AuditError):
            verify_bundle(bundle, verifier_key=generate_signer(SIGNER.name).verifier_key())
        with pytest.raises(BundleError):
            verify_bundle({**bundle, "format": "something/else"}, verifier_key=key)

    def test_no_bundle_of_an_altered_event_is_made(self) -> None:
        self.write(3, subject="bob")
        self.sealer.seal_all()
        self.sealer.checkpoint()
        target = self.ledger.store.head() - 1
        table = self.events_table()
        (state,) = self.sql(f"select state from {table} where {self.id_column} = %s", (target,))[0]  # noqa: S608
        altered = bytes(state).replace(b"list-", b"list+", 1)
        self.sql(f"update {table} set state = %s where {self.id_column} = %s", (altered, target))  # noqa: S608
        with pytest.raises(TamperedEventError) as refused:
            self.bundle("bob")
        assert refused.value.position == target
        assert f"position {target}" in str(refused.value)

    def test_erasure_keeps_verification_and_bundles_valid(self) -> None:
        result = self.ledger.execute(
            GrantConsent(
                address="dora@example.org",
                purpose="newsletter",
                policy_version="v1",
                occurred_at=T0,
                personal=PersonalData(ip="198.51.100.7"),
            )
        )
        self.sealer.seal_all()
        before = self.sealer.checkpoint()
        self.ledger.execute(EraseSubject(subject=result.subject, occurred_at=T0))
        history = self.ledger.history(result.subject, decrypt=True)
        assert history[0].personal is not None
        assert history[0].personal.kind == "erased"
        bundle = self.bundle(result.subject)
        assert verify_bundle(bundle, verifier_key=SIGNER.verifier_key()).entries == 2
        assert self.verify().ok
        assert self.tree.latest_checkpoint() is not None
        assert before.size < self.tree.size()

    id_column = "notification_id"

    def insert_event(self, position: int, topic: str, state: bytes) -> None:
        self.sql(
            f"insert into {self.events_table()} (originator_id, originator_version, topic, state, "  # noqa: S608
            f"{self.id_column}) values (%s, 1, %s, %s, %s)",
            (self.originator(), topic, state, position),
        )

    def originator(self) -> Any:
        return uuid4()


class TestSQLiteAudit(AuditContract):
    id_column = "rowid"

    @pytest.fixture(autouse=True)
    def _setup(self, tmp_path: Path) -> Iterator[None]:
        self.path = tmp_path / "ledger.sqlite3"
        self.setup_ledger(
            SQLiteStoreConfig(path=self.path),
            SQLiteDataKeyStore(path=self.path, master_key=b"k" * 32),
            SQLiteTreeStore(path=self.path),
        )
        yield
        self.ledger.close()
        self.tree.close()

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import sqlite3  # noqa: PLC0415 - only the SQLite case needs it

        with sqlite3.connect(self.path) as conn:
            return conn.execute(statement.replace("%s", "?"), params).fetchall()

    def events_table(self) -> str:
        return "stored_events"

    def leaves_table(self) -> str:
        return "audit_leaves"

    def open_gap(self) -> int:
        gap = self.ledger.store.head() + 1
        self.insert_event(gap, "Placeholder/v1", b"{}")
        return gap

    def close_gap(self, position: int) -> None:
        self.sql("delete from stored_events where rowid = %s", (position,))

    def originator(self) -> Any:
        return uuid4().hex


@pytest.mark.integration
class TestPostgresAudit(AuditContract):
    @pytest.fixture(autouse=True)
    def _setup(self, pg_dsn: str) -> Iterator[None]:
        self.dsn = pg_dsn
        self.schema = f"audit_{uuid4().hex[:10]}"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(self.schema)))
        self.setup_ledger(
            PostgresStoreConfig(dsn=pg_dsn, schema=self.schema, pool_size=2),
            PostgresDataKeyStore(dsn=pg_dsn, master_key=b"k" * 32, schema=self.schema),
            PostgresTreeStore(dsn=pg_dsn, schema=self.schema),
        )
        yield
        self.ledger.close()
        self.tree.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(self.schema)))

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    def events_table(self) -> str:
        return f"{self.schema}.ledger_events"

    def leaves_table(self) -> str:
        return f"{self.schema}.audit_leaves"

    def open_gap(self) -> int:
        sequence = f"{self.schema}.ledger_events_notification_id_seq"
        gap = self.ledger.store.head() + 1
        self.sql("select setval(%s, %s)", (sequence, gap))
        return gap
