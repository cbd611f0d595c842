"""The sender's checks over HTTP: single checks at a fixed rate, and one bulk check of N addresses.

    python bench/http_check_bench.py --persons 1000000 --addresses 1000000 --rate 1000 \\
        --seconds 20 --runs 3

Each run fills a fresh PostgreSQL schema with a projection of M persons (the realistic mix of
``bulk_check_bench.py``, by COPY), starts ``consent-ledger serve`` in production mode on that
schema as its own process, and then:

1. single: a separate load-generator process sends ``GET /v1/check?subject=...`` open loop at
   ``--rate`` requests/s for ``--seconds`` (after a warm-up second), each latency counted from
   its scheduled send time to the last byte; baseline, same server, same rate: ``GET /healthz``;
2. bulk: this process streams N addresses (``input=addresses``, NDJSON out) in one
   ``POST /v1/check`` and reads every answer line; baseline, same run: the library's
   ``SendChecker.bulk_check`` over the same addresses in this process (hashing included).

A run in which any single check or health answer is not 200 is reported as failed
(``all_200``); the bulk answers must be one line per address and agree with the library's.
Summary on
stdout and in ``bench/results/http_check-<rate>rps.json``; progress on stderr. Needs CONSENT_PG_DSN.
"""

import argparse
import asyncio
import base64
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from bulk_check_bench import PURPOSE, address, fill, log
from common import bench_parser, from_env
from httpload import free_port, open_loop
from psycopg import sql

from access.apikeys import PostgresApiKeyStore, Scope
from ledger.domain.identity import SubjectHasher
from projections.checker import CheckerConfig, SendChecker

RESULTS = Path(__file__).parent / "results"
CLI = str(Path(sys.executable).parent / "consent-ledger")
SUBJECT_SECRET = b"s" * 32
WARMUP_S = 1.0
READY_S = 60.0


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _env(dsn: str, schema: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    return env | {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": dsn,
        "CONSENT_PG_SCHEMA": schema,
        "CONSENT_SUBJECT_SECRET": _b64(SUBJECT_SECRET),
        "CONSENT_MASTER_KEY": _b64(b"m" * 32),
        "CONSENT_AUDIT_SIGNING_KEY": _b64(b"a" * 32),
        "CONSENT_UNSUBSCRIBE_KEYS": f"k1:{_b64(b'u' * 32)}",
        "CONSENT_PUBLIC_URL": "https://bench.invalid",
        "CONSENT_HTTP_PORT": str(port),
        "CONSENT_LOG_LEVEL": "warning",
    }


@contextmanager
def server(env: dict[str, str], port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + READY_S
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"serve did not start: {process.stderr.read() if process.stderr else ''!r}"
                )
            time.sleep(0.3)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _get(path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()


def load_main(args: argparse.Namespace) -> None:
    """The load generator's process: build the requests, send them open loop, print JSON."""
    total = int(args.rate * (args.seconds + WARMUP_S))
    warmup = int(args.rate * WARMUP_S)
    if args.target == "healthz":
        requests = [_get("/healthz", args.key)] * total
    else:
        hasher = SubjectHasher(secret=SUBJECT_SECRET)
        pick = random.Random(args.seed)
        requests = [
            _get(
                f"/v1/check?purpose={PURPOSE}&subject="
                + hasher.subject_for(address(pick.randrange(args.persons))),
                args.key,
            )
            for _ in range(total)
        ]
    result = asyncio.run(open_loop("127.0.0.1", args.port, requests, rate=args.rate, warmup=warmup))
    result.pop("acknowledged", None)
    print(json.dumps(result))


def _generate(args: argparse.Namespace, port: int, key: str, target: str, seed: int) -> Any:
    command = [
        sys.executable,
        __file__,
        "load",
        "--port",
        str(port),
        "--key",
        key,
        "--target",
        target,
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--persons",
        str(args.persons),
        "--seed",
        str(seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _bulk_body(count: int) -> bytes:
    return "".join(f"{address(n)}\n" for n in range(count)).encode()


def bulk_over_http(port: int, key: str, body: bytes) -> tuple[float, int, int]:
    """Seconds from the first byte sent to the last answer read; answer lines; allowed ones.

    The body is sent by a thread while this one reads: the answers stream back while the
    addresses are still going out, so a client that sent everything first would stall both.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=600)
    head = (
        f"POST /v1/check?purpose={PURPOSE}&input=addresses HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    sender = threading.Thread(target=sock.sendall, args=(head + body,))
    sender.start()
    response = http.client.HTTPResponse(sock)
    response.begin()
    if response.status != 200:
        raise SystemExit(f"bulk check answered {response.status}: {response.read()[:300]!r}")
    lines = allowed = 0
    for line in response:
        lines += 1
        allowed += b'"allowed": true' in line
    elapsed = time.perf_counter() - started
    sender.join()
    sock.close()
    return elapsed, lines, allowed


def bulk_in_library(dsn: str, schema: str, count: int) -> tuple[float, int]:
    hasher = SubjectHasher(secret=SUBJECT_SECRET)
    with psycopg.connect(dsn, autocommit=True) as conn:
        checker = SendChecker(conn, head=lambda: 0, config=CheckerConfig(schema=schema))
        started = time.perf_counter()
        allowed = sum(
            decision.allowed
            for _, decision in checker.bulk_check(
                (hasher.subject_for(address(n)) for n in range(count)), PURPOSE
            )
        )
        return time.perf_counter() - started, allowed


def one_run(args: argparse.Namespace, dsn: str, run: int) -> dict[str, Any]:
    schema = f"bench_http_{uuid4().hex[:10]}"
    hasher = SubjectHasher(secret=SUBJECT_SECRET)
    log(f"run {run}: filling {args.persons:,} persons into {schema}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        fill(conn, dsn, schema, [hasher.subject_for(address(n)) for n in range(args.persons)])
        # The fill's pages written out now, not by a checkpoint in the middle of the load.
        conn.execute("checkpoint")
    keys = PostgresApiKeyStore(dsn=dsn, schema=schema)
    keys.migrate()
    _, key = keys.create("bench", [Scope.CHECK])
    keys.close()
    port = free_port()
    try:
        with server(_env(dsn, schema, port), port):
            log("  single checks, then the /healthz baseline")
            single = _generate(args, port, key, "check", seed=run)
            health = _generate(args, port, key, "healthz", seed=run)
            http_s = library_s = None
            if args.addresses:
                body = _bulk_body(args.addresses)
                log(f"  bulk check of {args.addresses:,} addresses over HTTP")
                http_s, lines, http_allowed = bulk_over_http(port, key, body)
        if args.addresses:
            log("  the same bulk check through the library")
            library_s, library_allowed = bulk_in_library(dsn, schema, args.addresses)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    if args.addresses and (lines != args.addresses or http_allowed != library_allowed):
        raise SystemExit(f"bulk answers differ: {lines} lines, {http_allowed} vs {library_allowed}")
    # A shed or failed check is a failed run, reported as such rather than hidden in the p99.
    all_200 = set(single["statuses"]) == {"200"} and set(health["statuses"]) == {"200"}
    result = {
        "single": single,
        "healthz": health,
        "all_200": all_200,
        "single_p99_ratio_to_healthz": single["p99_ms"] / health["p99_ms"],
        "bulk_http_s": http_s,
        "bulk_library_s": library_s,
        "bulk_ratio_http_to_library": (
            None if http_s is None or library_s is None else http_s / library_s
        ),
    }
    log(
        f"  single p50 {single['p50_ms']:.1f} ms p99 {single['p99_ms']:.1f} ms, "
        f"{single['statuses']} {single['problems']} (healthz p99 {health['p99_ms']:.1f} ms, "
        f"{health['statuses']})"
        + ("" if http_s is None else f"; bulk {http_s:.2f} s over HTTP, {library_s:.2f} s library")
    )
    return result


def main() -> None:
    parser = bench_parser(__doc__)
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load", help="(internal) the load generator process")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--key", required=True)
    load.add_argument("--target", choices=("check", "healthz"), required=True)
    load.add_argument("--rate", type=float, required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--persons", type=int, required=True)
    load.add_argument("--seed", type=int, default=0)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument(
        "--addresses", type=int, default=1_000_000, help="bulk check size (0: no bulk check)"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="single checks per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.command == "load":
        load_main(args)
        return
    (dsn,) = from_env(parser, "CONSENT_PG_DSN")
    runs = [one_run(args, dsn, run) for run in range(1, args.runs + 1)]
    summary = {
        "persons": args.persons,
        "addresses": args.addresses,
        "rate": args.rate,
        "seconds": args.seconds,
        "median_single_p99_ms": statistics.median(r["single"]["p99_ms"] for r in runs),
        "median_single_p50_ms": statistics.median(r["single"]["p50_ms"] for r in runs),
        "median_healthz_p99_ms": statistics.median(r["healthz"]["p99_ms"] for r in runs),
        "median_single_rate": statistics.median(r["single"]["rate_achieved"] for r in runs),
        "runs_all_200": sum(r["all_200"] for r in runs),
        **(
            {
                "median_bulk_http_s": statistics.median(r["bulk_http_s"] for r in runs),
                "median_bulk_library_s": statistics.median(r["bulk_library_s"] for r in runs),
                "median_bulk_ratio": statistics.median(
                    r["bulk_ratio_http_to_library"] for r in runs
                ),
            }
            if args.addresses
            else {}
        ),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    name = f"http_check-{args.rate:g}rps.json"
    (RESULTS / name).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
