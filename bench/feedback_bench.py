"""Sender-side benchmarks: ARF ingest from files, and webhook fan-out to a local receiver.

    python bench/feedback_bench.py arf --reports 5000 --runs 3
    python bench/feedback_bench.py webhooks --events 2000 --endpoints 4 --runs 3

Both run on an embedded ledger (one SQLite file) in a temporary directory, so that they need
no servers and measure our code, not the network.

``arf``: N complaint reports in an mbox are ingested (parsed, attributed by their
X-Consent-Subject header, recorded by chunks, one event each). The floor, timed in the same
run on the same file: reading the mbox and parsing each report with the ``email`` parser alone.

``webhooks``: E stored events are sent to K endpoints of one local receiver (a process of its
own that answers 204). The floor, in the same run: the same number of plain POSTs of the same
bodies from K threads over kept-alive connections, unsigned and unrecorded. Then the delay from
an event's storage to its delivery, events written at a steady rate while the dispatcher
follows: p50 and p99 of (receipt - recorded_at).
"""

import email.parser
import email.policy
import json
import mailbox
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from common import bench_parser

from entrypoints.bootstrap import build_api
from entrypoints.bootstrap_sender import build_dispatcher
from entrypoints.settings import Mode, Settings
from ledger.domain import commands
from ledger.feedback.sources import read_reports
from tests.feedback_samples import arf, original_message
from tests.helpers import CATALOG_TIME, record_catalog

RECEIVER = """
import sys, json, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime
out = open(sys.argv[2], "a")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/timed":
            data = json.loads(body)["data"]
            delay = time.time() - datetime.fromisoformat(data["recorded_at"]).timestamp()
            out.write(f"{delay}\\n"); out.flush()
        self.send_response(204); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H); s.daemon_threads = True
print("ready", flush=True); s.serve_forever()
"""


def _api(directory: Path) -> tuple[Settings, object]:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=directory / "var")
    api = build_api(settings)
    record_catalog(api.ledger)
    return settings, api


def arf_run(reports: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        box = mailbox.mbox(directory / "feedback.mbox")
        for n in range(reports):
            box.add(arf("abuse", original_message(subject_header=f"p-{n}"), nonce=str(n)))
        box.close()
        path = directory / "feedback.mbox"
        parser = email.parser.BytesParser(policy=email.policy.compat32)
        started = time.perf_counter()
        for raw in read_reports(path):
            parser.parsebytes(raw)
        floor = reports / (time.perf_counter() - started)
        _, api = _api(directory)
        try:
            started = time.perf_counter()
            outcomes = list(api.feedback.ingest(read_reports(path)))  # type: ignore[attr-defined]
            rate = reports / (time.perf_counter() - started)
        finally:
            api.close()  # type: ignore[attr-defined]
        assert sum(o.status == "recorded" for o in outcomes) == reports
    return {"reports_per_s": rate, "parser_floor_per_s": floor, "ratio": rate / floor}


def _receiver(port: int, log: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, str(port), str(log)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def webhook_run(events: int, endpoints: int, rate: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = _free_port()
        log = directory / "delays.txt"
        receiver = _receiver(port, log)
        settings, api = _api(directory)
        ledger = api.ledger  # type: ignore[attr-defined]
        try:
            start = ledger.store.head()
            ledger.record_many(
                [
                    commands.GrantConsent(
                        subject=f"p-{n}",
                        purpose="newsletter",
                        policy_version="v1",
                        occurred_at=CATALOG_TIME,
                    )
                    for n in range(events)
                ]
            )
            store = api.webhooks  # type: ignore[attr-defined]
            for _ in range(endpoints):
                store.register(
                    url=f"http://127.0.0.1:{port}/fanout",
                    event_types=[],
                    purposes=[],
                    cursor=start,
                    at=datetime.now(UTC),
                )
            dispatcher = build_dispatcher(settings, ledger.store)
            started = time.perf_counter()
            sent = 0
            while sent < events * endpoints:
                sent += dispatcher.step()
            fanout = sent / (time.perf_counter() - started)
            bodies = [b"x" * 600] * (events * endpoints)
            with httpx.Client() as client, ThreadPoolExecutor(endpoints) as pool:
                url = f"http://127.0.0.1:{port}/floor"
                started = time.perf_counter()
                list(pool.map(lambda body: client.post(url, content=body), bodies))
                floor = len(bodies) / (time.perf_counter() - started)
            for endpoint in store.endpoints():
                store.delete(endpoint.webhook_id)
            store.register(
                url=f"http://127.0.0.1:{port}/timed",
                event_types=[],
                purposes=[],
                cursor=ledger.store.head(),
                at=datetime.now(UTC),
            )
            stop = threading.Event()
            follower = threading.Thread(target=dispatcher.follow, args=(stop,), daemon=True)
            follower.start()
            written = 0
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                ledger.execute(
                    commands.WithdrawConsent(
                        subject=f"p-{written % events}",
                        purpose="newsletter",
                        occurred_at=datetime.now(UTC),
                    )
                )
                written += 1
                time.sleep(max(0.0, began + written / rate - time.perf_counter()))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(log.read_text().split()) < written:
                time.sleep(0.05)
            stop.set()
            follower.join(timeout=30)
            dispatcher.close()
            dispatcher.store.close()
            delays = sorted(float(x) for x in log.read_text().split())
        finally:
            api.close()  # type: ignore[attr-defined]
            receiver.kill()
    return {
        "deliveries_per_s": fanout,
        "http_floor_per_s": floor,
        "ratio": fanout / floor,
        "delay_p50_s": delays[len(delays) // 2],
        "delay_p99_s": delays[int(len(delays) * 0.99) - 1],
        "delayed_events": float(len(delays)),
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("what", choices=["arf", "webhooks"])
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s for the delay run")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        if args.what == "arf":
            runs.append(arf_run(args.reports))
        else:
            runs.append(webhook_run(args.events, args.endpoints, args.rate, args.seconds))
        sys.stderr.write(json.dumps(runs[-1]) + "\n")
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    sys.stdout.write(json.dumps({"runs": len(runs), "median": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()
