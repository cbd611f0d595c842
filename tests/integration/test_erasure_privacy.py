"""After an erasure, no byte anywhere holds the person's data or an unkeyed derivative of it.

A person signs up by CLI (`--command-id` holding their address), by import (a line with their
address and IP, and a bad line that goes to the reject file) and by HTTP (an `Idempotency-Key`
holding their address, with IP, user agent and page URL). The sender asks for their links, the
auditors look them up by address, they save a choice in the preference centre (with their user
agent), their provider sends a complaint, a soft bounce and a report the ledger rejects (all
naming their address). Then they are erased. Every table, the topic,
the exports, the proof bundle, the reject file and every log line (at debug level) are then read
for the address, the IP, the user agent, the page URL and their plain SHA-256 (and that of each
import line): none may be found. Run on the embedded default and on PostgreSQL with Kafka.
"""

import base64
import hashlib
import json
import logging
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.settings import Mode, Settings
from ledger.write.importer import COLUMNS
from schemas import dead_letter_topic_for
from tests.cli import CLI, clean_env
from tests.feedback_samples import arf, dsn, original_message
from tests.helpers import stored_offsets

pytestmark = pytest.mark.integration

NDJSON = "application/x-ndjson"
ADDRESS = "Jeanne.Martin@Example.FR"
NORMALISED = "jeanne.martin@example.fr"
IP = "203.0.113.77"
IMPORT_IP = "198.51.100.23"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) PrivacyProbe/17.3"
PAGE_URL = "https://shop.example.fr/inscription?ref=privacy-probe-17"
POLICY_TEXT = "Politique de confidentialite, version 1\n"
IMPORT_ROWS = (
    {
        "address": ADDRESS,
        "status": "subscribed",
        "opt_in_date": "2025-02-01",
        "opt_in_ip": IMPORT_IP,
    },
    {"address": ADDRESS, "status": "maybe", "opt_in_date": "2025-02-02", "opt_in_ip": IMPORT_IP},
    {"address": "other@example.org", "status": "subscribed", "opt_in_date": "2025-02-01"},
)


def _secret(fill: int) -> str:
    return base64.b64encode(bytes([fill]) * 32).decode()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _needles(import_file: Path) -> dict[str, bytes]:
    """What must not be found: the person's data, and plain hashes of it (their first 16 hex
    digits, so that a truncated hash is found too)."""
    clear = {
        "address": ADDRESS,
        "normalised address": NORMALISED,
        "local part": "jeanne.martin",
        "ip": IP,
        "import ip": IMPORT_IP,
        "user agent": USER_AGENT,
        "page url": PAGE_URL,
    }
    needles = {name: value.encode() for name, value in clear.items()}
    for name, value in clear.items():
        needles[f"sha256 of {name}"] = _sha(value)[:16].encode()
    for number, line in enumerate(import_file.read_text().splitlines(), start=1):
        needles[f"sha256 of import line {number}"] = _sha(line)[:16].encode()
    for number, row in enumerate(IMPORT_ROWS, start=2):
        # The import's former command id: a plain hash of the line's fields, address included.
        canonical = json.dumps(
            ["newsletter", "email", "v1", [row.get(c) for c in COLUMNS]], sort_keys=True
        )
        needles[f"former import id of line {number}"] = _sha(canonical)[:16].encode()
    return needles


@dataclass
class Haystack:
    """Everything read after the erasure, by where it was found."""

    places: dict[str, bytes] = field(default_factory=dict)

    def add(self, where: str, content: bytes | str) -> None:
        data = content.encode() if isinstance(content, str) else content
        self.places[where] = self.places.get(where, b"") + data + b"\n"

    def findings(self, needles: dict[str, bytes]) -> list[str]:
        return [
            f"{name} in {where}"
            for where, data in self.places.items()
            for name, needle in needles.items()
            if needle.lower() in data.lower()
        ]


def _run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


class Person:
    """Records the person by CLI and import, then by HTTP, erases them and reads the exports."""

    def __init__(self, env: dict[str, str], settings: Settings, work: Path) -> None:
        self.env = env
        self.settings = settings
        self.work = work
        self.seen = Haystack()
        self.import_file = work / "subscribers.csv"
        self.rejects = work / "rejects.csv"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = _run(self.env, *args)
        self.seen.add(f"stderr of {args[0]}", result.stderr)
        return result

    def record_and_erase(self) -> str:
        policy = self.work / "policy.txt"
        policy.write_text(POLICY_TEXT)
        self.cli("purpose", "register", "newsletter", "--legal-basis", "consent",
                 "--description", "Newsletter", "--direct-marketing")  # fmt: skip
        self.cli("policy", "publish", "v1", str(policy), "--purpose", "newsletter")
        grant = ("grant", "--address", ADDRESS, "--purpose", "newsletter", "--policy-version", "v1")
        by_cli = json.loads(self.cli(*grant, "--command-id", f"cli-{ADDRESS}").stdout)
        lines = ["address,status,opt_in_date,opt_in_ip"] + [
            ",".join(str(row.get(c, "")) for c in ("address", "status", "opt_in_date", "opt_in_ip"))
            for row in IMPORT_ROWS
        ]
        self.import_file.write_text("\n".join(lines) + "\n")
        imported = json.loads(
            self.cli(
                "import",
                str(self.import_file),
                "--purpose",
                "newsletter",
                "--policy-version",
                "v1",
                "--rejects",
                str(self.rejects),
            ).stdout
        )
        assert (imported["recorded"], imported["rejected"]) == (2, 1)
        subject = str(by_cli["subject"])
        with self.api() as (client, headers, services):
            body = {
                "address": ADDRESS,
                "purpose": "newsletter",
                "policy_version": "v1",
                "personal": {"ip": IP, "user_agent": USER_AGENT, "page_url": PAGE_URL},
            }
            web = headers | {"Idempotency-Key": f"signup-{ADDRESS}"}
            first = client.post("/v1/consents/grant", json=body, headers=web)
            assert first.status_code == 201, first.text
            self.recipient_and_sender_paths(client, headers, subject)
            erased = client.post("/v1/erasures", json={"subject": subject}, headers=headers)
            assert erased.status_code == 201, erased.text
            # Idempotency still holds: the same key again is the same answer, recorded once.
            again = client.post("/v1/consents/grant", json=body, headers=web)
            assert again.status_code == 200, again.text
            assert again.json()["duplicate"] is True
            assert again.json()["event_ids"] == first.json()["event_ids"]
            services.audit.sealer.seal_all()
            services.audit.sealer.checkpoint()
            for path in ("/export", "/history", "/bundle", ""):
                answer = client.get(f"/v1/persons/{subject}{path}", headers=headers)
                assert answer.status_code == 200, answer.text
                self.seen.add(f"GET /v1/persons/S{path}", answer.content)
        export, bundle = self.work / "person.json", self.work / "bundle.json"
        self.cli("export", "--subject", subject, "--out", str(export))
        self.cli("audit", "export", "--subject", subject, "--out", str(bundle))
        for written in (export, bundle, self.rejects):
            self.seen.add(written.name, written.read_bytes())
        assert json.loads(export.read_text())["erased"] is True
        return subject

    def recipient_and_sender_paths(
        self, client: TestClient, headers: dict[str, str], subject: str
    ) -> None:
        """Every other door the person's address or browser comes in by."""
        line = json.dumps({"address": ADDRESS, "purpose": "newsletter", "campaign_id": "c1"})
        linked = client.post(
            "/v1/links", content=line + "\n", headers=headers | {"Content-Type": NDJSON}
        )
        assert linked.status_code == 200, linked.text
        self.seen.add("POST /v1/links", linked.content)
        [answer] = [json.loads(text) for text in linked.text.splitlines()]
        token = str(answer["preferences_url"]).rsplit("/p/", 1)[1]
        browser = {"User-Agent": USER_AGENT}
        page = client.get(f"/p/{token}", headers=browser)
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
        assert nonce is not None, page.text
        saved = client.post(
            f"/p/{token}",
            data={"nonce": nonce.group(1), "purpose": "newsletter", "action": "save"},
            headers=browser,
        )
        assert saved.status_code == 200, saved.text
        searched = client.post(
            "/audit/", data={"address": ADDRESS}, headers=headers, follow_redirects=False
        )
        assert searched.status_code in (200, 303), searched.text
        original = original_message(subject_header=subject, to=ADDRESS)
        reports = {
            "complaint": arf("abuse", original, rcpt_to=ADDRESS),
            "soft bounce": dsn([(ADDRESS, "delayed", "4.2.2")], original),
            "rejected report": arf(None, original, rcpt_to=ADDRESS, nonce="2"),
        }
        outcomes = {}
        for name, report in reports.items():
            sent = client.post(
                "/v1/feedback", content=report, headers=headers | {"Content-Type": "message/rfc822"}
            )
            assert sent.status_code < 300, sent.text
            outcomes[name] = sent.json()["status"]
        assert outcomes == {
            "complaint": "recorded",
            "soft bounce": "counted",
            "rejected report": "rejected",
        }

    @staticmethod
    def headers_for(services: Any) -> dict[str, str]:
        secret = services.keys.create("privacy", [Scope.WRITE, Scope.AUDIT, Scope.LINKS])[1]
        return {"Authorization": f"Bearer {secret}"}

    def api(self) -> "_Api":
        return _Api(self)


class _Api:
    def __init__(self, person: Person) -> None:
        self.person = person

    def __enter__(self) -> tuple[TestClient, dict[str, str], Any]:
        self.services = build_api(self.person.settings)
        app = create_app(
            health=HealthCheck(mode=self.person.settings.mode, probe=lambda: None),
            services=self.services,
        )
        self.client = TestClient(app)
        return self.client, Person.headers_for(self.services), self.services

    def __exit__(self, *_: object) -> None:
        self.client.close()
        self.services.close()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of this process, at debug level, whatever the logger."""
    caplog.set_level(logging.DEBUG)
    return caplog


def _sqlite_rows(path: Path) -> Iterable[tuple[str, bytes]]:
    with sqlite3.connect(path) as conn:
        tables = [
            row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")
        ]
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):  # noqa: S608 - names from the file
                yield table, b"|".join(v if isinstance(v, bytes) else str(v).encode() for v in row)


def test_nothing_of_an_erased_person_is_left_on_the_embedded_default(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "var"
    env = clean_env(CONSENT_DATA_DIR=str(data), CONSENT_LOG_LEVEL="debug")
    person = Person(env, Settings(mode=Mode.EMBEDDED, data_dir=data, log_level="debug"), tmp_path)

    person.record_and_erase()

    for path in sorted(data.rglob("*")):
        if path.is_file():
            person.seen.add(f"file {path.name}", path.read_bytes())
    sqlite_file = Settings(mode=Mode.EMBEDDED, data_dir=data).sqlite_path
    for table, row in _sqlite_rows(sqlite_file):
        person.seen.add(f"table {table}", row)
    person.seen.add("logs of the test process", debug_logs.text)
    assert {"table data_keys", "table feedback_rejects", "table soft_bounces"} <= set(
        person.seen.places
    )
    assert person.seen.findings(_needles(person.import_file)) == []


def _pg_rows(dsn: str, schema: str) -> Iterable[tuple[str, bytes]]:
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables where table_schema = %s",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL("select * from {}").format(sql.Identifier(schema, table))
            for row in conn.execute(query):
                yield (
                    table,
                    b"|".join(
                        bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                        for v in row
                    ),
                )


def _topic_records(bootstrap: str, topic: str) -> Iterable[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        for record in consumer:
            headers = b"|".join(k.encode() + b"=" + (v or b"") for k, v in record.headers)
            yield b"|".join((record.key or b"", record.value or b"", headers))
    finally:
        consumer.close()


def _follow(
    env: dict[str, str], topic: str, records: int, dsn: str, schema: str, *, logs: Path
) -> str:
    """Relay everything, then consume it all, both at debug level; their logs."""
    relayed = _run(env, "relay", "--once")
    with logs.open("w") as log:
        consume = subprocess.Popen(
            [CLI, "consume", "--group", f"g-{topic}", "--topic", topic],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while stored_offsets(dsn, schema) < records and time.monotonic() < deadline:
                time.sleep(0.1)
            assert stored_offsets(dsn, schema) == records
        finally:
            consume.send_signal(signal.SIGTERM)
            consume.wait(timeout=30)
    return relayed.stderr + logs.read_text()


def test_nothing_of_an_erased_person_is_left_in_postgresql_kafka_or_the_logs(
    *,
    tmp_path: Path,
    pg_dsn: str,
    schema: str,
    kafka_bootstrap: str,
    unique_name: str,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    topic = f"{unique_name}.v1"
    settings = {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": pg_dsn,
        "CONSENT_PG_SCHEMA": schema,
        "CONSENT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CONSENT_KAFKA_TOPIC": topic,
        "CONSENT_KAFKA_PARTITIONS": "2",
        "CONSENT_SUBJECT_SECRET": _secret(1),
        "CONSENT_MASTER_KEY": _secret(2),
        "CONSENT_AUDIT_SIGNING_KEY": _secret(3),
        "CONSENT_UNSUBSCRIBE_KEYS": f"k1:{_secret(4)}",
        "CONSENT_TOPIC_KEYS": f"t1:{_secret(5)}",
        "CONSENT_PUBLIC_URL": "https://mail.example.org",
        "CONSENT_LOG_LEVEL": "debug",
    }
    env = clean_env(**settings)
    values = {k.removeprefix("CONSENT_").lower(): v for k, v in settings.items()}
    person = Person(env, Settings.model_validate(values), tmp_path)

    subject = person.record_and_erase()
    with psycopg.connect(pg_dsn) as conn:
        head = conn.execute(
            sql.SQL("select max(notification_id) from {}").format(
                sql.Identifier(schema, "ledger_events")
            )
        ).fetchone()
    assert head is not None
    logs = _follow(env, topic, int(head[0]), pg_dsn, schema, logs=tmp_path / "consume.log")

    person.seen.add("relay and consumer logs", logs)
    for table, row in _pg_rows(pg_dsn, schema):
        person.seen.add(f"table {table}", row)
    for name in (topic, dead_letter_topic_for(topic)):
        for record in _topic_records(kafka_bootstrap, name):
            person.seen.add(f"topic {name}", record)
    person.seen.add("logs of the test process", debug_logs.text)
    assert {
        "table ledger_events",
        "table consent_state",
        "table feedback_rejects",
        "table soft_bounces",
        f"topic {topic}",
    } <= set(person.seen.places)
    assert person.seen.findings(_needles(person.import_file)) == []
    # kafka-python's own debug lines print whole records: the relay and consumer logs hold no
    # subject, no stored command id and no part of a record's value.
    with psycopg.connect(pg_dsn) as conn:
        states = conn.execute(
            sql.SQL("select state from {}").format(sql.Identifier(schema, "ledger_events"))
        ).fetchall()
    stored = [json.loads(bytes(state)) for (state,) in states]
    record_parts = {subject} | {e["command_id"] for e in stored} | {e["event_id"] for e in stored}
    record_parts |= {e["personal"]["ciphertext"][:24] for e in stored if e.get("personal")}
    assert [part for part in record_parts if part in logs] == []
