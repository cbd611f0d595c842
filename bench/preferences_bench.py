"""The recipient's side over HTTP: the preference centre at a fixed rate, and ``POST /v1/links``.

    python bench/preferences_bench.py --rate 200 --seconds 20 --runs 3 --links 200000

One ``consent-ledger serve`` process per run, in a fresh PostgreSQL schema (production mode;
``--mode embedded`` for SQLite), with one direct-marketing purpose and its policy. Measured with
the open-loop generator of `unsubscribe_bench` (each request at its scheduled time, latency
from that time to the answer's last byte), in this order:

1. ``GET /p/{token}``: the page of a new person each time (catalog, person, nonce, template);
2. ``POST /p/{token}``: the page's form, ticking the purpose: one durable ConsentGranted per
   person before the answer (the nonces are fetched before the clock starts);
3. ``GET /healthz`` at the same rate: the baseline;
4. ``POST /v1/links``: ``--links`` NDJSON lines in one streamed request, links per second from
   the first byte sent to the last answer read; baseline, in this process: the token codec alone
   (``UnsubscribeTokenCodec.issue``) in a loop over the same number of lines.

The server is then killed (SIGKILL) and the store must hold one grant per form answered 200.
"""

import argparse
import asyncio
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
from common import fresh_schema, from_env, latency_medians, open_loop_parser
from httpload import free_port, open_loop
from unsubscribe_bench import UNSUBSCRIBE_KEYS, _env, _request, _server

from access.apikeys import Scope
from entrypoints.bootstrap import build_api_keys, build_ledger, build_store
from entrypoints.settings import Settings
from ledger.domain.commands import PublishPolicyVersion, RegisterPurpose
from ledger.links.tokens import UnsubscribeTokenCodec, parse_keys

HERE_ARGS = [sys.executable, __file__]
WARMUP_S = 2.0
NONCE = re.compile(rb'name="nonce" value="([^"]+)"')
GRANTED = "ConsentGranted/v2"
HTTP_OK = 200


def _settings(env: dict[str, str]) -> Settings:
    return Settings.model_validate(
        {k.removeprefix("CONSENT_").lower(): v for k, v in env.items() if k.startswith("CONSENT_")}
    )


def _prepare(env: dict[str, str]) -> str:
    """The catalog the page shows, and a key for links; returns the key."""
    settings = _settings(env)
    ledger = build_ledger(settings)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    wording = {
        "fr": {"label": "La lettre du jeudi", "description": "Nos nouveautés, chaque semaine."},
        "en": {"label": "The Thursday letter", "description": "What is new, every week."},
    }
    try:
        ledger.execute(
            RegisterPurpose.model_validate(
                {
                    "purpose": "newsletter",
                    "legal_basis": "consent",
                    "description": "The weekly letter",
                    "direct_marketing": True,
                    "occurred_at": at,
                    "wording": wording,
                }
            )
        )
        ledger.execute(
            PublishPolicyVersion(
                version="v1", text_sha256="d" * 64, effective_at=at, occurred_at=at
            )
        )
    finally:
        ledger.close()
    keys = build_api_keys(settings)
    try:
        return keys.create("bench-links", [Scope.LINKS])[1]
    finally:
        keys.close()


def load_main(args: argparse.Namespace) -> None:
    """Build every request (fetching each form's nonce) before the clock starts."""
    host = f"127.0.0.1:{args.port}"
    total = int(args.rate * (args.seconds + WARMUP_S))
    codec = UnsubscribeTokenCodec(parse_keys(UNSUBSCRIBE_KEYS, setting="bench"))
    links = codec.for_use("preferences")
    prefix = uuid4().hex[:8]
    tokens = [links.issue(subject=f"bench-{prefix}-{n}") for n in range(total)]
    if args.target == "healthz":
        requests = [_request("GET", host, "/healthz")] * total
    elif args.target == "page":
        requests = [_request("GET", host, f"/p/{token}") for token in tokens]
    else:
        requests = []
        with httpx.Client(base_url=f"http://{host}") as client:
            for token in tokens:
                found = NONCE.search(client.get(f"/p/{token}").content)
                assert found is not None
                body = b"nonce=" + found.group(1) + b"&purpose=newsletter&action=save"
                requests.append(_request("POST", host, f"/p/{token}", body))
    warmup = int(args.rate * WARMUP_S)
    result = asyncio.run(open_loop("127.0.0.1", args.port, requests, rate=args.rate, warmup=warmup))
    result["answered_200"] = len(result.pop("acknowledged"))
    print(json.dumps(result))


def _generate(port: int, target: str, args: argparse.Namespace) -> Any:
    command = [*HERE_ARGS, "_load", "--port", str(port), "--target", target]
    command += ["--rate", str(args.rate), "--seconds", str(args.seconds)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        msg = f"the load generator failed:\n{done.stderr}"
        raise RuntimeError(msg)
    return json.loads(done.stdout)


def _links_body(count: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "subject": f"crm-{n}",
                "purpose": "newsletter",
                "campaign_id": "c1",
                "message_id": f"<{n}@bench>",
            }
        ).encode()
        + b"\n"
        for n in range(count)
    )


def _links_rate(port: int, key: str, count: int) -> dict[str, float]:
    """Links per second, first byte sent to last answer read; the body goes out from a thread
    while this one reads, as a sender's client must (answers stream back meanwhile)."""
    body = _links_body(count)
    sock = socket.create_connection(("127.0.0.1", port), timeout=600)
    head = (
        f"POST /v1/links HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    began = time.perf_counter()
    sender = threading.Thread(target=sock.sendall, args=(head + body,))
    sender.start()
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    lines = sum(1 for _ in answer)
    seconds = time.perf_counter() - began
    sender.join()
    sock.close()
    if answer.status != HTTP_OK or lines != count:
        msg = f"/v1/links answered {answer.status} with {lines} lines for {count}"
        raise SystemExit(msg)
    return {"links": count, "seconds": seconds, "links_per_s": count / seconds}


def _codec_rate(count: int) -> float:
    codec = UnsubscribeTokenCodec(parse_keys(UNSUBSCRIBE_KEYS, setting="bench"))
    began = time.perf_counter()
    for n in range(count):
        codec.issue(
            subject=f"crm-{n}", purpose="newsletter", campaign_id="c1", message_id=f"<{n}@bench>"
        )
    return count / (time.perf_counter() - began)


def _grants_stored(env: dict[str, str]) -> int:
    store = build_store(_settings(env))
    try:
        return sum(1 for _, _, _, topic, _ in store.stream_rows() if topic == GRANTED)
    finally:
        store.close()


def one_run(args: argparse.Namespace, dsn: str, run: int) -> dict[str, Any]:
    with fresh_schema(dsn) as schema, tempfile.TemporaryDirectory() as data_dir:
        env = _env(args.mode, dsn, schema, data_dir) | {
            "CONSENT_PUBLIC_URL": "https://mail.example.org"
        }
        key = _prepare(env)
        port = free_port()
        result: dict[str, Any] = {}
        with _server(env, port) as process:
            for target in ("page", "save", "healthz"):
                figures = _generate(port, target, args)
                figures["load_average_1min_after"] = os.getloadavg()[0]
                result[target] = figures
                print(f"run {run + 1} {target:8}: {json.dumps(figures)}", file=sys.stderr)
            result["links"] = _links_rate(port, key, args.links)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        result["links"]["codec_alone_per_s"] = _codec_rate(args.links)
        print(f"run {run + 1} links   : {json.dumps(result['links'])}", file=sys.stderr)
        stored = _grants_stored(env)
        if stored != result["save"]["answered_200"] or set(result["save"]["statuses"]) != {"200"}:
            msg = f"run {run + 1}: {stored} grants stored for {result['save']}"
            raise SystemExit(msg)
        result["grants_stored"] = stored
        return result


def main() -> None:
    parser, _load = open_loop_parser(__doc__, targets=("healthz", "page", "save"), rate=200)
    parser.add_argument("--links", type=int, default=200_000)
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
        "runs": len(runs),
        **latency_medians(runs, ("healthz", "page", "save")),
        "links": {k: median("links", k) for k in ("links_per_s", "codec_alone_per_s")},
        "ratio_p99_page_over_healthz": median("page", "p99_ms") / median("healthz", "p99_ms"),
        "ratio_p99_save_over_healthz": median("save", "p99_ms") / median("healthz", "p99_ms"),
        "ratio_links_over_codec": median("links", "links_per_s")
        / median("links", "codec_alone_per_s"),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
