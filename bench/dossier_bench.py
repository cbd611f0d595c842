"""The auditors' dossier of a person with 1,000 events: page time and PDF time over HTTP.

    python bench/dossier_bench.py --runs 3                      # embedded (SQLite)
    python bench/dossier_bench.py --runs 3 --mode production    # CONSENT_PG_DSN's PostgreSQL

Each run builds a fresh ledger, records one person's history (a double opt-in, then grants and
clicks up to ``--events``), seals it, serves the app with uvicorn on loopback and asks, one
request at a time: the dossier page ``--pages`` times, ``dossier.pdf`` ``--pdfs`` times, and, as
the floor of the same run, the person's JSON history with personal data opened (the same events
read and decrypted, without words, proofs or templates).
"""

import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import bench_parser, from_env

from ledger.domain import commands
from tests.dossier import GRANTED_AT, audited, feed_postgres, production_settings
from tests.pages import serving_app


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(client: httpx.Client, url: str, times: int) -> list[float]:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        answer = client.get(url)
        spent.append(time.perf_counter() - started)
        answer.raise_for_status()
    return spent


def one_run(args: object, data: Path, dsn: str | None) -> dict[str, float]:
    settings = None
    schema = f"bench_dossier_{uuid4().hex[:8]}"
    if dsn is not None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        settings = production_settings(dsn, schema)
    options = {"settings": settings, "feed": feed_postgres} if settings else {}
    try:
        with audited(data, seal=False, **options) as dpo:  # type: ignore[arg-type]
            more = []
            for n in range(args.events - len(dpo.services.ledger.history(dpo.subject))):  # type: ignore[attr-defined]
                at = GRANTED_AT + timedelta(days=60, minutes=n)
                more.append(
                    commands.RecordInteraction(occurred_at=at, subject=dpo.subject, kind="click")
                    if n % 2
                    else commands.GrantConsent(
                        occurred_at=at,
                        subject=dpo.subject,
                        purpose="newsletter",
                        policy_version="2025-03",
                    )
                )
            dpo.services.ledger.record_many(more)
            dpo.seal()
            with (
                serving_app(dpo.client.app) as origin,  # type: ignore[arg-type]
                httpx.Client(auth=("dpo", dpo.key), timeout=120) as client,
            ):
                base = f"{origin}/audit/persons/{dpo.subject}"
                _timed(client, base, 2)  # warm: catalogs compiled, pages cached by the OS
                history = _timed(
                    client,
                    f"{origin}/v1/persons/{dpo.subject}/history",
                    args.pages,  # type: ignore[attr-defined]
                )
                page = _timed(client, base, args.pages)  # type: ignore[attr-defined]
                pdf = _timed(client, f"{base}/dossier.pdf", args.pdfs)  # type: ignore[attr-defined]
    finally:
        if dsn is not None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    return {
        "page_p50_ms": statistics.median(page) * 1000,
        "page_p99_ms": _p(page, 0.99) * 1000,
        "history_p50_ms": statistics.median(history) * 1000,
        "history_p99_ms": _p(history, 0.99) * 1000,
        "pdf_p50_s": statistics.median(pdf),
        "pdf_max_s": max(pdf),
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--pdfs", type=int, default=10)
    parser.add_argument("--mode", choices=["embedded", "production"], default="embedded")
    args = parser.parse_args()
    dsn = from_env(parser, "CONSENT_PG_DSN")[0] if args.mode == "production" else None
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            result = one_run(args, Path(folder) / "var", dsn)
        runs.append(result)
        print(json.dumps({"run": run, **{k: round(v, 3) for k, v in result.items()}}))
    summary = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    summary["page_p99_over_history_p99"] = round(
        statistics.median(r["page_p99_ms"] / r["history_p99_ms"] for r in runs), 2
    )
    print(json.dumps({"mode": args.mode, "events": args.events, "median": summary}))


if __name__ == "__main__":
    main()
