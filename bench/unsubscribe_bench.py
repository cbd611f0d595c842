"""One-click unsubscribe over HTTP: latency of a durable click at a fixed offered rate.

    python bench/unsubscribe_bench.py --rate 500 --seconds 20 --runs 3

Three processes: the API server (``consent-ledger serve``), this orchestrator, and a load
generator (`httpload.open_loop`). The generator sends open loop at ``--rate`` requests/s,
each at its scheduled time whatever the answers, over keep-alive connections (a new one when
all are busy), and counts each latency from the scheduled send time to the last byte of the
answer: a server that falls behind pays for the queue.

Each run, in a fresh PostgreSQL schema (production mode; ``--mode embedded`` for SQLite):

1. ``GET /healthz`` at the same rate: the baseline (it opens a database connection per call);
2. ``GET /u/{token}``: the confirmation page, the same router and token check, no write;
3. ``POST /u/{token}`` with ``List-Unsubscribe=One-Click``: every tenth request repeats an
   earlier link (mail clients retry, people click twice), the rest are new links.

Then the server is killed (SIGKILL: whatever it acknowledged must already be committed) and the
store must hold exactly one UnsubscribeClicked per distinct link clicked, and every answer must
have been 200. Needs CONSENT_PG_DSN (``source var/services/env``).
"""

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from common import fresh_schema, from_env, latency_medians, open_loop_parser
from httpload import free_port, open_loop

from entrypoints.bootstrap import build_store
from entrypoints.settings import Settings
from ledger.links.tokens import ONE_CLICK_BODY, UnsubscribeTokenCodec, parse_keys

HERE = Path(__file__).resolve()
CLI = str(Path(sys.executable).parent / "consent-ledger")
STARTUP_TIMEOUT_S = 60.0
WARMUP_S = 2.0
HTTP_OK = 200
REPEAT_EVERY = 10
CLICKED = "UnsubscribeClicked/v1"


def _secret(fill: bytes) -> str:
    return base64.b64encode(fill * 32).decode()


UNSUBSCRIBE_KEYS = f"bench2:{_secret(b'u')},bench1:{_secret(b'v')}"


# -- the load generator (its own process) ----------------------------------------------------


def _request(method: str, host: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if method == "POST":
        head += (
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        )
    return head.encode() + b"\r\n" + body


def load_main(args: argparse.Namespace) -> None:
    """Build every request before the clock starts, send them, print the figures as JSON."""
    host = f"127.0.0.1:{args.port}"
    total = int(args.rate * (args.seconds + WARMUP_S))
    warmup = int(args.rate * WARMUP_S)
    tokens: list[str] = []
    requests: list[bytes] = []
    if args.target == "healthz":
        requests = [_request("GET", host, "/healthz")] * total
    else:
        codec = UnsubscribeTokenCodec(parse_keys(UNSUBSCRIBE_KEYS, setting="bench"))
        shuffle = random.Random(args.seed)
        prefix = uuid4().hex[:8]
        for n in range(total):
            if n % REPEAT_EVERY == REPEAT_EVERY - 1:
                token = shuffle.choice(tokens)
            else:
                subject = f"bench-{prefix}-{n}"
                token = codec.issue(subject=subject, purpose="newsletter", campaign_id="bench")
            tokens.append(token)
            if args.target == "page":
                requests.append(_request("GET", host, f"/u/{token}"))
            else:
                body = ONE_CLICK_BODY.encode()
                requests.append(_request("POST", host, f"/u/{token}", body))
    result = asyncio.run(open_loop("127.0.0.1", args.port, requests, rate=args.rate, warmup=warmup))
    acknowledged = result.pop("acknowledged")
    if tokens:
        result["distinct_links"] = len(set(tokens))
        result["distinct_links_acknowledged"] = len({tokens[i] for i in acknowledged})
    print(json.dumps(result))


def _env(mode: str, dsn: str, schema: str, data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env |= {
        "CONSENT_MODE": mode,
        "CONSENT_PG_DSN": dsn,
        "CONSENT_PG_SCHEMA": schema,
        "CONSENT_DATA_DIR": data_dir,
        "CONSENT_SUBJECT_SECRET": _secret(b"s"),
        "CONSENT_MASTER_KEY": _secret(b"m"),
        "CONSENT_AUDIT_SIGNING_KEY": _secret(b"a"),
        "CONSENT_UNSUBSCRIBE_KEYS": UNSUBSCRIBE_KEYS,
        "CONSENT_LOG_LEVEL": "warning",
    }
    return env


@contextmanager
def _server(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [CLI, "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                msg = f"the server exited with {process.returncode}"
                raise RuntimeError(msg)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                msg = "the server did not become healthy"
                raise RuntimeError(msg)
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def _generate(port: int, target: str, *, rate: float, seconds: float, seed: int) -> Any:
    output = subprocess.run(
        [
            sys.executable,
            str(HERE),
            "_load",
            "--port",
            str(port),
            "--target",
            target,
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--seed",
            str(seed),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if output.returncode != 0:
        msg = f"the load generator failed:\n{output.stderr}"
        raise RuntimeError(msg)
    return json.loads(output.stdout)


def _clicks_stored(env: dict[str, str]) -> int:
    settings = {
        name.removeprefix("CONSENT_").lower(): value
        for name, value in env.items()
        if name.startswith("CONSENT_")
    }
    store = build_store(Settings.model_validate(settings))
    try:
        return sum(1 for _, _, _, topic, _ in store.stream_rows() if topic == CLICKED)
    finally:
        store.close()


def one_run(args: argparse.Namespace, dsn: str, run: int) -> dict[str, Any]:
    with fresh_schema(dsn) as schema, tempfile.TemporaryDirectory() as data_dir:
        env = _env(args.mode, dsn, schema, data_dir)
        port = free_port()
        result: dict[str, Any] = {}
        with _server(env, port) as process:
            # /healthz last: in production it opens a connection to PostgreSQL per call.
            for target in ("page", "click", "healthz"):
                figures = _generate(port, target, rate=args.rate, seconds=args.seconds, seed=run)
                # The machine is shared: how busy it was says how far to trust the run.
                figures["load_average_1min_after"] = os.getloadavg()[0]
                result[target] = figures
                print(f"run {run + 1} {target:8}: {json.dumps(figures)}", file=sys.stderr)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        stored = _clicks_stored(env)
        clicks = result["click"]
        result["verified"] = {
            "distinct_links_clicked": clicks["distinct_links"],
            "distinct_links_answered_200": clicks["distinct_links_acknowledged"],
            "unsubscribe_clicked_events_stored": stored,
            "all_200": all(set(r["statuses"]) == {"200"} for r in result.values()),
        }
        print(f"run {run + 1} verified: {result['verified']}", file=sys.stderr)
        if stored != clicks["distinct_links"] or not result["verified"]["all_200"]:
            msg = f"run {run + 1}: verification failed: {result['verified']}"
            raise SystemExit(msg)
        return result


def main() -> None:
    parser, load = open_loop_parser(__doc__, targets=("healthz", "page", "click"), rate=500)
    load.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.what == "_load":
        load_main(args)
        return
    (dsn,) = from_env(parser, "CONSENT_PG_DSN")
    runs = [one_run(args, dsn, run) for run in range(args.runs)]

    def median(target: str, key: str) -> float:
        return float(statistics.median(run[target][key] for run in runs))

    summary = {
        "mode": args.mode,
        "rate": args.rate,
        "seconds": args.seconds,
        "runs": len(runs),
        **latency_medians(runs, ("healthz", "page", "click")),
        "ratio_p99_click_over_healthz": median("click", "p99_ms") / median("healthz", "p99_ms"),
        "ratio_p99_click_over_page": median("click", "p99_ms") / median("page", "p99_ms"),
        "verified": [run["verified"] for run in runs],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
