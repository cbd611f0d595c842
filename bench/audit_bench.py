"""Audit benchmarks on PostgreSQL: sealing, `audit verify` and proof generation.

    python bench/audit_bench.py --events 1000000 --runs 3

Fills a fresh schema's event table with N events by COPY (real envelope JSON of the size the
ledger writes), then times, in the same run: sealing all of them; verifying all of them
(`verify_ledger`: reading events and leaves, rebuilding entries, hashing, comparing, folding
the tree); and, as baselines, reading the event rows alone (`LedgerStore.stream_rows`, every
column of every row, nothing done with them) and SHA-256 alone over 200,000 of the same entries.
Proof generation is timed as the p99 of 2,000 inclusion proofs at random leaves of the whole
tree.
"""

import hashlib
import itertools
import json
import random
import time
from datetime import UTC, datetime
from uuid import uuid4

from common import bench_parser, fill_events, fresh_schema, from_env, median_of_runs

from ledger.audit.check import verify_ledger
from ledger.audit.sealer import Sealer, SealerConfig
from ledger.audit.store import PostgresTreeStore
from ledger.audit.tlog.entry import Entry
from ledger.audit.tlog.merkle import inclusion_proof
from ledger.audit.tlog.note import signer_from_seed

SIGNER = signer_from_seed("bench.consent-ledger/audit", b"\x01" * 32)
PROOFS = 2_000
HASHED_ENTRIES = 200_000


def _state(n: int) -> bytes:
    envelope = {
        "actor": "api",
        "campaign_id": None,
        "command_id": str(uuid4()),
        "event_id": str(uuid4()),
        "event_type": "UnsubscribeClicked",
        "evidence": None,
        "list_id": f"list-{n % 97}",
        "message_id": None,
        "method": "one_click_post",
        "occurred_at": "2026-01-01T00:00:00Z",
        "personal": {
            "ciphertext": "A" * 96,
            "key_id": str(uuid4()),
            "kind": "sealed",
            "nonce": "AAAAAAAAAAAAAAAA",
        },
        "position": None,
        "purpose": None,
        "recorded_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "schema_version": 1,
        "source": "one_click",
        "subject": f"p-{n}",
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def run(dsn: str, events: int) -> dict[str, float]:
    with fresh_schema(dsn) as schema:
        store = fill_events(
            dsn, schema, "UnsubscribeClicked/v1", (_state(n) for n in range(events))
        )
        tree = PostgresTreeStore(dsn=dsn, schema=schema)
        tree.migrate()
        sealer = Sealer(
            store=store,
            tree=tree,
            signer=SIGNER,
            config=SealerConfig(origin=SIGNER.name, checkpoint_every_events=100_000),
        )
        started = time.perf_counter()
        while sealer.seal(limit=10_000):
            sealer.checkpoint_if_due()
        sealer.checkpoint()
        seal_s = time.perf_counter() - started

        started = time.perf_counter()
        report = verify_ledger(store=store, tree=tree, verifier=SIGNER.verifier())
        verify_s = time.perf_counter() - started
        if not report.ok or report.leaves != events:
            msg = f"verification did not pass: {report}"
            raise RuntimeError(msg)

        # The floor: the same rows read through the same cursor, doing nothing with them.
        started = time.perf_counter()
        rows = sum(1 for _ in store.stream_rows())
        read_s = time.perf_counter() - started
        entries = [
            Entry(*row).encode() for row in itertools.islice(store.stream_rows(), HASHED_ENTRIES)
        ]
        started = time.perf_counter()
        for entry in entries:
            hashlib.sha256(b"\x00" + entry).digest()
        hash_rate = len(entries) / (time.perf_counter() - started)

        size = tree.size()
        latencies = []
        for _ in range(PROOFS):
            index = random.randrange(size)
            started = time.perf_counter()
            inclusion_proof(index=index, size=size, store=tree)
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        tree.close()
        store.close()
        return {
            "seal_events_per_s": events / seal_s,
            "verify_events_per_s": events / verify_s,
            "read_only_events_per_s": rows / read_s,
            "sha256_only_per_s": hash_rate,
            "proof_p50_ms": 1000 * latencies[len(latencies) // 2],
            "proof_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            # Per run, so that the median is of ratios taken under one machine's load.
            "verify_over_read_only": read_s / verify_s,
            "verify_over_sha256_only": events / verify_s / hash_rate,
        }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    (dsn,) = from_env(parser, "CONSENT_PG_DSN")
    summary = median_of_runs(args.runs, lambda: run(dsn, args.events))
    print(json.dumps({"events": args.events, "runs": args.runs, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
