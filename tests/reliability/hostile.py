"""Hostile input against a live production stack: nothing crashes, nothing is lost or invented.

`run_hostile` sends to a running ``serve``, ``relay`` and ``consume`` (production mode) what a
broken producer, a forger or a careless client would send, and checks the answer the product
promises for each:

- malformed Kafka records on the event topic (bad JSON, unknown event type, unsupported schema
  version, a 900 KB payload, no key, ...) reach the dead-letter topic byte for byte, with the
  consumer's reason and their source, and the projection keeps following every partition they
  were written to;
- forged, altered, truncated, foreign-key and expired unsubscribe links are refused and record
  nothing; a genuine link fetched and clicked again and again, concurrently too, records one
  unsubscribe, which checks then enforce;
- SQL-shaped, control-character, bidirectional, astral, lone-surrogate and long values in every
  string field of every JSON ``POST`` of the live OpenAPI document (and in Idempotency-Key, and
  in a single check's query) are answered 2xx, reading back identical, or a 4xx problem naming
  the field, never a 5xx; the pipeline applies what was accepted;
- bulk checks over the body limit, with malformed NDJSON or CSV lines, of the wrong media type
  or without a purpose are 4xx problems or per-line errors, never a 5xx or a cut stream.

A failed verification is a `Finding` with ``ok=False`` naming the request and the answer that
broke it, never an exception. Only synthetic people are used (``hostile-*`` subjects and
``@example.org`` addresses); detail texts show injected values through `ascii`.
"""

import contextlib
import hashlib
import http.client
import itertools
import json
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from uuid import uuid4

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from access.apikeys import Scope
from consumers.runner import MAX_ERROR_HEADER, UndecodableRecordError, decode
from entrypoints.http.bulk_answers import MAX_LINE_BYTES
from entrypoints.http.problems import PROBLEM_JSON
from entrypoints.http.services import MAX_BODY_BYTES, MAX_BULK_BODY_BYTES
from entrypoints.http.unsubscribe import MAX_BODY_BYTES as MAX_FORM_BYTES
from ledger.domain.errors import LedgerError
from ledger.domain.identity import SubjectHasher
from ledger.links.tokens import ONE_CLICK_BODY, UnsubscribeClaim, UnsubscribeTokenCodec
from schemas import Channel, ConsentGranted, DoubleOptIn, Source, dead_letter_topic_for, dump_event
from schemas.record_auth import RecordKeys

__all__ = ["Finding", "HostileTarget", "run_hostile"]

HTTP_TIMEOUT_S = 30.0
WAIT_S = 30.0
"""How long a dead letter, or a check covering a fresh write, may take to show up."""
HUGE_RECORD_BYTES = 900 * 1024
CONCURRENT_CLICKS = 8
FUZZ_WORKERS = 4
SHOWN = 5
"""Failures quoted in a finding's detail; the count says how many there were."""
RANDOM_VALUES_PER_ROUND = 4
CHECK_REPEATS = 20
"""Single checks after the bulk probe: more than the server's pool of checkers, so each of its
database connections answers at least once after the hostile lists."""

WRITE, CHECK, AUDIT, ADMIN, LINKS = (
    scope.value for scope in (Scope.WRITE, Scope.CHECK, Scope.AUDIT, Scope.ADMIN, Scope.LINKS)
)
FORM = "application/x-www-form-urlencoded"
NDJSON = "application/x-ndjson"
JSON_BODY = {"Content-Type": "application/json"}

HOSTILE_VALUES: tuple[tuple[str, str], ...] = (
    ("SQL statement", "'; drop table ledger_events; --"),
    ("SQL tautology", "' or '1'='1"),
    ("SQL-shaped address", "o'hara'--@example.org"),
    ("placeholders", "%s %(subject)s {schema} {0} $1"),
    ("NUL", "a\x00b"),
    ("terminal escape", "\x1b[31mred\x1b[0m\x07"),
    ("bidi override", "abc\u202edcba\u2066x\u2069"),
    ("zero-width and separators", "a\u200bb\ufeffc\u2028d\u2029"),
    ("line breaks", "one\r\ntwo\nthree"),
    ("astral and noncharacter", "\U0001f600\U0010ffff"),
    ("lone surrogate", "a\ud800b"),
    ("URL-shaped", "https://example.org/?q=';drop--\x00\u202e"),
    ("long", "x" * 10_000),
    ("empty", ""),
)
"""Label and value of each hostile string put in every string field."""

FRAGMENTS = (
    "'", '"', ";", "--", "/*", "*/", "\\", "\x00", "\x1b[2J", "\u202e", "\u200b", "\ufeff",
    "\U0001f4a3", "%s", "{}", "$1", "\r\n", "\ud800", "\udfff", "drop table", " or 1=1",
    "<script>", "${jndi:ldap://x}", "\x85", "\u2028", "@example.org", "\t", "é", "e\u0301",
)  # fmt: skip
"""Pieces of the random hostile strings added per round beyond the first."""

FRESH_CATALOG_NAME = {"/v1/purposes": "purpose", "/v1/policy-versions": "version"}
"""Catalog commands whose name must be new each time (a second registration is refused)."""


@dataclass(frozen=True)
class HostileTarget:
    api: str
    """Base URL, e.g. ``http://127.0.0.1:8123``."""
    keys: Mapping[str, str]
    """Scope value (``write``, ``check``, ``audit``, ``admin``) -> bearer token."""
    bootstrap: str
    topic: str
    """The event topic (CONSENT_KAFKA_TOPIC); dead letters go to `dead_letter_topic_for` it."""
    topic_keys: RecordKeys
    """The relay's own keys (CONSENT_TOPIC_KEYS): records broken past their MAC, as a relay bug
    would make them, reach the consumer's decoding."""
    tokens: UnsubscribeTokenCodec
    """The server's own codec (same keys), for genuine links."""
    hasher: SubjectHasher
    """The subject of an address, as the server computes it."""
    purpose: str
    """A registered direct-marketing purpose with published policy `policy_version` naming it."""
    policy_version: str


@dataclass(frozen=True)
class Finding:
    name: str
    injected: int
    """How many inputs of this kind were sent."""
    ok: bool
    """Every verification of this kind passed."""
    detail: str
    """What was verified, or what failed."""


@dataclass
class _Tally:
    """Inputs of one kind sent and the verifications that failed, from several threads."""

    name: str
    injected: int = 0
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, count: int = 1) -> None:
        with self.lock:
            self.injected += count

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)

    def saw(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def finding(self, verified: str) -> Finding:
        seen = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.counts.items()))
        if not self.failures:
            return Finding(
                self.name, self.injected, True, verified + (f" ({seen})" if seen else "")
            )
        shown = "; ".join(self.failures[:SHOWN])
        more = f"; and {len(self.failures) - SHOWN} more" if len(self.failures) > SHOWN else ""
        return Finding(
            self.name, self.injected, False, f"{len(self.failures)} failed: {shown}{more}"
        )


class _Api:
    """The HTTP API with a key per scope, as a careful client uses it.

    A 503 with Retry-After (a store fault, a stale projection: the soak may be injecting them) is
    sent again, with the same Idempotency-Key, for up to `WAIT_S`; only what it answers then is
    judged, and the retries are counted. No connection is reused: after a 5xx the server may
    close the connection it answered on, and a request sent next on it would fail for a reason
    of its own.
    """

    def __init__(self, target: HostileTarget) -> None:
        self.base = target.api
        self.retried = 0
        self._lock = threading.Lock()
        self._keys = target.keys
        self.client = httpx.Client(
            base_url=target.api,
            timeout=HTTP_TIMEOUT_S,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._keys[scope]}"}

    def send(
        self,
        method: str,
        path: str,
        *,
        scope: str | None = None,
        headers: Mapping[str, str | bytes] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        merged: dict[str, str | bytes] = {**(self.auth(scope) if scope else {}), **(headers or {})}
        # Bytes, so that a header can carry what str headers would refuse to encode.
        raw = [
            (name.encode(), value if isinstance(value, bytes) else value.encode())
            for name, value in merged.items()
        ]
        replayable = isinstance(kwargs.get("content"), str | bytes | None)
        deadline = time.monotonic() + WAIT_S
        while True:
            answer = self.client.request(method, path, headers=raw, **kwargs)
            if not (
                answer.status_code == 503
                and "retry-after" in answer.headers
                and replayable
                and time.monotonic() < deadline
            ):
                return answer
            with self._lock:
                self.retried += 1
            time.sleep(0.5)

    def command(
        self,
        path: str,
        body: Any,
        *,
        scope: str = WRITE,
        idempotency_key: str | bytes | None = None,
    ) -> httpx.Response:
        headers: dict[str, str | bytes] = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key if idempotency_key is not None else str(uuid4()),
        }
        return self.send("POST", path, scope=scope, headers=headers, content=_json_bytes(body))

    def history(self, subject: str) -> list[dict[str, Any]]:
        """A person's events, personal fields opened; empty when nothing was recorded."""
        answer = self.send("GET", f"/v1/persons/{quote(subject, safe='@')}/history", scope=AUDIT)
        if answer.status_code == 404:
            return []
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()["events"]
        return events

    def close(self) -> None:
        self.client.close()


def _json_bytes(body: Any) -> bytes:
    """UTF-8 JSON; a lone surrogate, which UTF-8 cannot carry, travels as a JSON escape."""
    try:
        return json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(body).encode()


def _shown(value: Any, limit: int = 60) -> str:
    text = ascii(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def _answer(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "-").split(";")[0]
    return f"{response.status_code} {kind} {_shown(response.text, 160)}"


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    """The RFC 9457 problem the answer is, or None."""
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    well_formed = (
        isinstance(body.get("type"), str)
        and isinstance(body.get("title"), str)
        and body.get("status") == response.status_code
    )
    return body if well_formed else None


def _problem_fields(problem: Mapping[str, Any]) -> set[str]:
    named = {problem.get("field")} | {
        error.get("field") for error in problem.get("errors", []) if isinstance(error, dict)
    }
    return {name for name in named if isinstance(name, str) and name}


def _now() -> datetime:
    return datetime.now(UTC)


def _address(run: str, tag: str) -> str:
    return f"hostile-{run}-{tag}@example.org"


def _guarded(name: str, probe: Callable[[], list[Finding]]) -> list[Finding]:
    """The probe's findings; a probe that cannot go on is itself a failed finding."""
    try:
        return probe()
    except Exception as error:  # noqa: BLE001 - the soak's report must show it, not lose it
        return [Finding(name, 0, False, f"probe stopped: {type(error).__name__}: {error}")]


def run_hostile(target: HostileTarget, *, rounds: int = 1) -> list[Finding]:
    """Send every kind of hostile input ``rounds`` times over and verify the answers."""
    rounds = max(rounds, 1)
    run = uuid4().hex[:10]
    api = _Api(target)
    try:
        findings = [
            *_guarded("kafka records", lambda: _kafka_records(api, target, rounds, run)),
            *_guarded("unsubscribe tokens", lambda: _unsubscribe_tokens(api, target, rounds, run)),
            *_guarded("string fields", lambda: _string_fields(api, target, rounds, run)),
            *_guarded("bulk checks", lambda: _bulk_checks(api, target, rounds, run)),
        ]
    finally:
        api.close()
    findings.append(
        Finding(
            "hostile input: answers retried",
            0,
            True,
            f"{api.retried} answers were 503 with Retry-After and were sent again (same "
            f"Idempotency-Key) until answered otherwise, for at most {WAIT_S:.0f} s each",
        )
    )
    return findings


# --- The pipeline after hostile input ----------------------------------------------------------


def _partition_of(subject: str, partitions: int) -> int:
    """The partition the relay's producer (Kafka's default partitioner) puts ``subject`` on."""
    return int((murmur2(subject.encode()) & 0x7FFFFFFF) % partitions)


def _pipeline_works(
    api: _Api, target: HostileTarget, run: str, tag: str, *, partitions: int = 1
) -> tuple[bool, str]:
    """Fresh grants, one on each of ``partitions``, then checks that wait for the last of them.

    A check with the last write's position as ``min_position`` answers only once the projection
    covers every partition written before it: a consumer stuck on a record, or dead, shows as a
    503 that does not go away.
    """
    chosen: dict[int, str] = {}
    for number in itertools.count():
        address = _address(run, f"{tag}-{number}")
        chosen.setdefault(_partition_of(target.hasher.subject_for(address), partitions), address)
        if len(chosen) == partitions:
            break
    people: list[tuple[str, int]] = []
    for address in chosen.values():
        granted = api.command(
            "/v1/consents/grant",
            {
                "address": address,
                "purpose": target.purpose,
                "policy_version": target.policy_version,
            },
        )
        if granted.status_code != 201:
            return False, f"a fresh grant answered {_answer(granted)}"
        people.append((granted.json()["subject"], granted.json()["position"]))
    last = max(position for _, position in people)
    for subject, _ in people:
        answer = _covered_check(api, target, subject, last)
        if answer.status_code != 200 or answer.json().get("allowed") is not True:
            return False, f"GET /v1/check with min_position={last} answered {_answer(answer)}"
    return True, (
        f"{len(people)} fresh grant(s) on {partitions} partition(s), then GET /v1/check with "
        f"min_position={last} answered 200 allowed for each"
    )


def _covered_check(api: _Api, target: HostileTarget, subject: str, position: int) -> httpx.Response:
    """A check answered once the projection covers ``position`` (stale is a 503, sent again)."""
    params = {"subject": subject, "purpose": target.purpose, "min_position": position}
    return api.send("GET", "/v1/check", scope=CHECK, params=params)


# --- Kafka: malformed records go to the dead-letter topic ----------------------------------------


@dataclass(frozen=True)
class _Record:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class _Poison:
    kind: str
    record: _Record
    reason: str
    """What the consumer's own decoding says is wrong with it."""


def _event(target: HostileTarget, subject: str) -> dict[str, Any]:
    """A valid event as the relay publishes it: the malformed records each break one thing."""
    now = _now()
    event = ConsentGranted(
        event_id=uuid4(),
        subject=subject,
        occurred_at=now,
        recorded_at=now,
        command_id=f"hostile-{uuid4()}",
        source=Source.API,
        actor="hostile-input",
        purpose=target.purpose,
        channel=Channel.EMAIL,
        policy_version=target.policy_version,
        double_opt_in=DoubleOptIn.NOT_APPLICABLE,
        position=1,
    )
    return dump_event(event)


def _raw(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def _malformed_records(target: HostileTarget, run: str, round_: int) -> list[tuple[str, _Record]]:
    subject = f"hostile-{run}-kafka-{round_}"
    key = subject.encode()

    def valid() -> dict[str, Any]:
        return _event(target, subject)

    def changed(**fields: Any) -> bytes:
        return _raw(valid() | fields)

    without_type = valid()
    del without_type["event_type"]
    huge = valid() | {"evidence": {"form_id": "x" * HUGE_RECORD_BYTES}}
    forged = _Record(key, _raw(valid()))
    records = [
        ("bad JSON", _Record(key, _raw(valid())[:-40])),
        ("bad JSON", _Record(key, b"\xff\xfe not UTF-8 \xc3\x28")),
        ("bad JSON", _Record(key, b"[1, 2, 3]")),
        ("bad JSON", _Record(key, b"")),
        ("unknown event type", _Record(key, changed(event_type="ConsentForged"))),
        ("unknown event type", _Record(key, _raw(without_type))),
        ("unknown event type", _Record(key, changed(event_type=42))),
        ("unsupported schema version", _Record(key, changed(schema_version=99))),
        ("unsupported schema version", _Record(key, changed(schema_version=0))),
        ("unsupported schema version", _Record(key, changed(schema_version=3))),
        ("huge payload", _Record(key, _raw(huge))),
        ("missing key", _Record(None, _raw(valid()))),
        ("key is not the event's subject", _Record(b"hostile-someone-else", _raw(valid()))),
        ("no value", _Record(key, None)),
        ("no position", _Record(key, changed(position=None))),
        ("position out of range", _Record(key, changed(position=2**70))),
        ("position out of range", _Record(key, changed(position=0))),
    ]
    signed = [(kind, _signed(target, topic_record)) for kind, topic_record in records]
    altered = signed[-1][1]
    return [
        *signed,
        ("not authenticated", forged),
        ("not authenticated", _Record(key, _raw(valid() | {"position": 10**15}), altered.headers)),
    ]


def _signed(target: HostileTarget, record: _Record) -> _Record:
    """The record with a MAC under the relay's key (over what it has of key and value)."""
    mac = target.topic_keys.mac(
        topic=target.topic, key=record.key or b"", headers=[], value=record.value or b""
    )
    return _Record(record.key, record.value, (("mac", mac),))


def _expected_reason(target: HostileTarget, record: _Record) -> str | None:
    try:
        decode(record, topic=target.topic, keys=target.topic_keys)
    except UndecodableRecordError as error:
        return error.reason
    return None


def _kafka_records(api: _Api, target: HostileTarget, rounds: int, run: str) -> list[Finding]:
    started = time.monotonic()
    tallies: dict[str, _Tally] = {}
    poisons: list[_Poison] = []
    for round_ in range(rounds):
        for kind, record in _malformed_records(target, run, round_):
            tally = tallies.setdefault(kind, _Tally(f"kafka record: {kind}"))
            reason = _expected_reason(target, record)
            if reason is None:
                tally.fail("the consumer's own decode accepts this record: it proves nothing")
                continue
            poisons.append(_Poison(kind, record, reason))

    producer = KafkaProducer(
        bootstrap_servers=target.bootstrap,
        acks="all",
        max_block_ms=15_000,
        client_id="hostile-input",
    )
    try:
        partitions = sorted(producer.partitions_for(target.topic))
        futures = []
        for number, poison in enumerate(poisons):
            headers = [
                *poison.record.headers,
                ("hostile-run", run.encode()),
                ("hostile-kind", poison.kind.encode()),
            ]
            futures.append(
                producer.send(
                    target.topic,
                    key=poison.record.key,
                    value=poison.record.value,
                    headers=headers,
                    partition=partitions[number % len(partitions)],
                )
            )
            tallies[poison.kind].sent()
        producer.flush(timeout=30)
        sources = {}
        for poison, future in zip(poisons, futures, strict=True):
            metadata = future.get(timeout=30)
            sources[(metadata.partition, metadata.offset)] = poison
    finally:
        producer.close(timeout=10)

    missing = _read_dead_letters(target, run, sources, tallies)
    for poison in missing.values():
        tallies[poison.kind].fail(f"no dead letter within {WAIT_S:.0f} s")
    findings = [
        tally.finding(
            "each produced to the event topic (spread over every partition) arrived on "
            f"{dead_letter_topic_for(target.topic)} with the same key and value, an error header "
            "of the consumer's reason and a source header naming its partition and offset"
        )
        for tally in tallies.values()
    ]
    ok, detail = _pipeline_works(api, target, run, "kafka", partitions=len(partitions))
    findings.append(
        Finding(
            "kafka records: pipeline afterwards",
            0,
            ok,
            f"{detail}; phase took {time.monotonic() - started:.1f} s",
        )
    )
    return findings


def _read_dead_letters(
    target: HostileTarget,
    run: str,
    sources: dict[tuple[int, int], _Poison],
    tallies: Mapping[str, _Tally],
) -> dict[tuple[int, int], _Poison]:
    """Read the dead-letter topic from its beginning, checking off each poison; the rest."""
    pending = dict(sources)
    topic = dead_letter_topic_for(target.topic)
    consumer = KafkaConsumer(
        bootstrap_servers=target.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id="hostile-input-dead-letters",
        metadata_max_age_ms=2_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    deadline = time.monotonic() + WAIT_S
    try:
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            consumer.topics()
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.5)
        if partitions is None:
            return pending
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        while pending and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for letter in records:
                    _check_letter(letter, target.topic, run, pending, tallies)
    finally:
        consumer.close()
    return pending


def _check_letter(
    letter: Any,
    topic: str,
    run: str,
    pending: dict[tuple[int, int], _Poison],
    tallies: Mapping[str, _Tally],
) -> None:
    headers = dict(letter.headers or [])
    if headers.get("hostile-run") != run.encode():
        return
    try:
        source = json.loads(headers["source"])
        where = (int(source["partition"]), int(source["offset"]))
        from_topic = source["topic"]
    except (KeyError, ValueError, TypeError):
        poison_kind = headers.get("hostile-kind", b"?").decode(errors="replace")
        tally = tallies.get(poison_kind)
        if tally is not None:
            tally.fail(f"a dead letter without a readable source header: {_shown(headers)}")
        return
    poison = pending.pop(where, None) if from_topic == topic else None
    if poison is None:
        # Dead letters may come twice (the consumer re-sends a batch's after a crash).
        return
    tally = tallies[poison.kind]
    error = headers.get("error", b"").decode(errors="replace")
    expected = poison.reason[:MAX_ERROR_HEADER]
    if letter.key != poison.record.key or letter.value != poison.record.value:
        tally.fail(f"dead letter of {where} differs from the record produced")
    elif error.split(":", 1)[0] != expected.split(":", 1)[0]:
        tally.fail(f"dead letter of {where} says {_shown(error)}, expected {_shown(expected)}")
    else:
        tally.saw("dead-lettered")


# --- Unsubscribe links: forged ones record nothing, replayed ones record once --------------------


_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _changed_at(token: str, index: int, rng: random.Random) -> str:
    others = _BASE64URL.replace(token[index], "")
    return token[:index] + rng.choice(others) + token[index + 1 :]


def _forgeries(
    target: HostileTarget, subject: str, genuine: str, rng: random.Random
) -> dict[str, list[str]]:
    """Tokens that must be refused, by kind; all but the random ones name ``subject``."""
    length = len(genuine)
    positions = sorted({0, 1, length // 3, length // 2, 2 * length // 3, length - 2, length - 1})
    positions.append(rng.randrange(length))
    unknown_key = UnsubscribeTokenCodec({"hostile": secrets.token_bytes(32)})
    wrong_secret = UnsubscribeTokenCodec({target.tokens.signing_key_id: secrets.token_bytes(32)})
    return {
        "random bytes": [
            secrets.token_urlsafe(size) for size in (12, 40, 90, rng.randrange(1, 200))
        ],
        "one character changed": [_changed_at(genuine, index, rng) for index in positions],
        "truncated": [
            genuine[:-1],
            genuine[:-2],
            genuine[:-16],
            genuine[: length // 2],
            genuine[:4],
        ],
        "extended": [genuine + "A", genuine + genuine, genuine + "=="],
        "signed with an unknown key": [
            unknown_key.issue(subject=subject, purpose=target.purpose, campaign_id="hostile")
        ],
        "known key id, wrong secret": [
            wrong_secret.issue(subject=subject, purpose=target.purpose, campaign_id="hostile")
        ],
        "not base64url": [
            "'; drop table ledger_events; --",
            "\x00",
            "\u202e" + genuine,
            "A" * 5000,
            "..%2f..%2fetc%2fpasswd",
        ],
        "expired": [_expired_token(target, subject, rng)],
    }


def _clicks(api: _Api, subject: str) -> list[dict[str, Any]]:
    return [event for event in api.history(subject) if event["event_type"] == "UnsubscribeClicked"]


def _link_requests(api: _Api, token: str) -> Iterator[tuple[str, httpx.Response]]:
    """The three requests a link gets: the page, the one-click POST, the page's button."""
    path = f"/u/{quote(token, safe='')}"
    yield "GET", api.send("GET", path)
    yield (
        "one-click POST",
        api.send("POST", path, headers={"Content-Type": FORM}, content=ONE_CLICK_BODY),
    )
    yield (
        "confirm POST",
        api.send("POST", path, headers={"Content-Type": FORM}, content="confirm=unsubscribe"),
    )


def _unsubscribe_tokens(api: _Api, target: HostileTarget, rounds: int, run: str) -> list[Finding]:
    rng = random.Random(run)
    address = _address(run, "unsubscribe")
    subject = target.hasher.subject_for(address)
    granted = api.command(
        "/v1/consents/grant",
        {"address": address, "purpose": target.purpose, "policy_version": target.policy_version},
    )
    if granted.status_code != 201 or granted.json().get("subject") != subject:
        return [Finding("unsubscribe token: setup", 0, False, f"grant answered {_answer(granted)}")]
    genuine = target.tokens.issue(
        subject=subject, purpose=target.purpose, campaign_id=f"hostile-{run}", message_id="m-1"
    )
    tallies: dict[str, _Tally] = {}
    statuses: dict[str, int] = {}
    for _ in range(rounds):
        for kind, tokens in _forgeries(target, subject, genuine, rng).items():
            status = statuses.setdefault(kind, 410 if kind == "expired" else 404)
            tally = tallies.setdefault(kind, _Tally(f"unsubscribe token: {kind}"))
            for token in tokens:
                tally.sent()
                for request, answer in _link_requests(api, token):
                    if answer.status_code != status:
                        tally.fail(f"{request} of {_shown(token)} answered {_answer(answer)}")
            recorded = _clicks(api, subject)
            if recorded:
                tally.fail(f"{len(recorded)} UnsubscribeClicked recorded for these links")
    findings = [
        tally.finding(
            f"GET, one-click POST and confirm POST of each answered {statuses[kind]}; the "
            "person's history holds no UnsubscribeClicked"
        )
        for kind, tally in tallies.items()
    ]
    findings.append(_replayed(api, target, subject, genuine, rounds))
    return findings


def _expired_token(target: HostileTarget, subject: str, rng: random.Random) -> str:
    issued = _now().replace(microsecond=0) - timedelta(days=40, seconds=rng.randrange(86_400))
    claim = UnsubscribeClaim.build(
        subject=subject,
        purpose=target.purpose,
        campaign_id="hostile-expired",
        issued_at=issued,
        expires_at=issued + timedelta(days=30),
    )
    return target.tokens.encode(claim)


def _replayed(api: _Api, target: HostileTarget, subject: str, genuine: str, rounds: int) -> Finding:
    tally = _Tally("unsubscribe token: replayed")
    path = f"/u/{genuine}"
    for _ in range(2):
        tally.sent()
        page = api.send("GET", path)
        if page.status_code != 200:
            tally.fail(f"GET of the genuine link answered {_answer(page)}")
    if _clicks(api, subject):
        tally.fail("GET of the genuine link recorded an UnsubscribeClicked")

    def one_click() -> httpx.Response:
        return api.send("POST", path, headers={"Content-Type": FORM}, content=ONE_CLICK_BODY)

    answers = [one_click() for _ in range(3 * rounds)]
    start = threading.Barrier(CONCURRENT_CLICKS)

    def together() -> httpx.Response:
        start.wait(timeout=WAIT_S)
        return one_click()

    for _ in range(rounds):
        with ThreadPoolExecutor(CONCURRENT_CLICKS) as pool:
            answers.extend(pool.map(lambda _: together(), range(CONCURRENT_CLICKS)))
    answers.append(
        api.send("POST", path, headers={"Content-Type": FORM}, content="confirm=unsubscribe")
    )
    tally.sent(len(answers))
    for answer in answers:
        if answer.status_code != 200:
            tally.fail(f"POST of the genuine link answered {_answer(answer)}")
    clicks = _clicks(api, subject)
    if len(clicks) != 1:
        tally.fail(f"{len(clicks)} UnsubscribeClicked recorded, expected exactly 1")
        return tally.finding("")
    click = clicks[0]
    claim = target.tokens.verify(genuine)
    if (click.get("purpose"), click.get("campaign_id"), click.get("message_id")) != (
        claim.purpose,
        claim.campaign_id,
        claim.message_id,
    ):
        tally.fail(f"the click recorded {_shown(click)}, not what the link says")
    params = {"subject": subject, "purpose": target.purpose, "min_position": click["position"]}
    checked = api.send("GET", "/v1/check", scope=CHECK, params=params)
    if checked.status_code != 200 or checked.json().get("reason") != "unsubscribed":
        tally.fail(f"a check after the click answered {_answer(checked)}")
    return tally.finding(
        f"2 GETs recorded nothing; {len(answers)} POSTs (sequential, {CONCURRENT_CLICKS} at once, "
        "the page's button) all answered 200 and recorded exactly one UnsubscribeClicked with "
        "the link's purpose, campaign and message; a check then answered unsubscribed"
    )


# --- Hostile strings in every string field of every JSON POST -----------------------------------

FieldPath = tuple[str | int, ...]


def _resolve(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _options(schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The non-null alternatives of a schema (itself when it has none)."""
    schema = _resolve(schema, document)
    choices = schema.get("anyOf") or schema.get("oneOf")
    if not choices:
        return [schema]
    found = [_resolve(choice, document) for choice in choices]
    return [choice for choice in found if choice.get("type") != "null"]


def _string_paths(
    schema: Mapping[str, Any], document: Mapping[str, Any], prefix: FieldPath = (), depth: int = 0
) -> list[FieldPath]:
    """Where a string goes in a body of ``schema``: object properties, array items, nested."""
    if depth > 8:
        return []
    found: list[FieldPath] = []
    for option in _options(schema, document):
        if option.get("type") == "string" or isinstance(option.get("const"), str):
            found.append(prefix)
        for name, sub in option.get("properties", {}).items():
            found.extend(_string_paths(sub, document, (*prefix, name), depth + 1))
        if option.get("type") == "array" and "items" in option:
            found.extend(_string_paths(option["items"], document, (*prefix, 0), depth + 1))
    return list(dict.fromkeys(found))


def _placed(container: Any, path: FieldPath, value: Any) -> Any:
    """``container`` (copied) with ``value`` at ``path``, making objects and lists on the way."""
    head, *rest = path
    if isinstance(head, int):
        items = list(container) if isinstance(container, list) else []
        child = items[0] if items else None
        return [_placed(child, tuple(rest), value) if rest else value]
    data = dict(container) if isinstance(container, dict) else {}
    data[head] = _placed(data.get(head), tuple(rest), value) if rest else value
    return data


def _at(data: Any, path: FieldPath) -> tuple[bool, Any]:
    node = data
    for step in path:
        in_list = isinstance(step, int) and isinstance(node, list) and len(node) > step
        in_object = isinstance(step, str) and isinstance(node, dict) and step in node
        if not (in_list or in_object):
            return False, None
        node = node[step]
    return True, node


def _dotted(path: FieldPath) -> str:
    return ".".join(str(step) for step in path)


@dataclass(frozen=True)
class _Route:
    path: str
    schema: Mapping[str, Any]
    """The request body's object schema, resolved."""
    strings: list[FieldPath]
    person: bool
    """Named by ``subject`` or ``address`` (exactly one)."""


def _json_routes(document: Mapping[str, Any]) -> list[_Route]:
    routes = []
    for path, item in document.get("paths", {}).items():
        content = item.get("post", {}).get("requestBody", {}).get("content", {})
        # A streaming route (NDJSON lines, as `POST /v1/check` and `/v1/links`) is probed by
        # the body tests, not field by field.
        if "application/json" not in content or NDJSON in content or "{" in path:
            continue
        schema = _resolve(content["application/json"]["schema"], document)
        properties = schema.get("properties", {})
        routes.append(
            _Route(
                path=path,
                schema=schema,
                strings=_string_paths(schema, document),
                person="subject" in properties and "address" in properties,
            )
        )
    return routes


class _Bodies:
    """Valid bodies for each route, to put one hostile value in; and what a route needs first.

    Fields are filled from the schema (enums, formats, bounds) or by name where only the ledger's
    state says what is valid: the registered purpose, the published policy, a request opened
    before it is extended. A route this cannot fill shows as a refused baseline.
    """

    def __init__(self, api: _Api, target: HostileTarget, run: str, document: Mapping[str, Any]):
        self.api = api
        self.target = target
        self.run = run
        self.document = document
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def fresh(self) -> str:
        with self._lock:
            return f"{self.run}-{next(self._numbers)}"

    def by_name(self, route: _Route) -> dict[str, Any]:
        fresh = self.fresh().replace("-", "_")
        return {
            "purpose": self.target.purpose,
            "version": self.target.policy_version,
            "policy_version": self.target.policy_version,
            "description": "hostile input probe",
            "text_sha256": hashlib.sha256(b"hostile input probe").hexdigest(),
            "request_id": str(uuid4()),
            "due_at": (_now() + timedelta(days=90)).isoformat(),
            "reason": "hostile input probe",
            "address": _address(self.run, fresh),
            "versions": [self.target.policy_version],
            "url": "https://hooks.example.org/consent",
        } | (
            {FRESH_CATALOG_NAME[route.path]: f"hostile_{fresh}"}
            if route.path in FRESH_CATALOG_NAME
            else {}
        )

    def sample(self, schema: Mapping[str, Any]) -> Any:
        option = _options(schema, self.document)[0]
        if "const" in option:
            return option["const"]
        if option.get("enum"):
            return option["enum"][0]
        by_type: dict[str, Any] = {
            "string": {"date-time": _now().isoformat(), "uuid": str(uuid4())}.get(
                option.get("format", ""), "hostile"
            ),
            "integer": max(option.get("minimum", 1), option.get("exclusiveMinimum", 0) + 1),
            "boolean": False,
            "array": [],
        }
        return by_type.get(option.get("type", ""), {})

    def baseline(self, route: _Route) -> dict[str, Any]:
        named = self.by_name(route)
        properties = route.schema.get("properties", {})
        body = {
            name: named[name] if name in named else self.sample(properties[name])
            for name in route.schema.get("required", [])
        }
        if "purpose" in properties and "purpose" not in body:
            # An objection names a purpose or all direct marketing; the others may name one.
            body["purpose"] = named["purpose"]
        if route.person:
            body["subject"] = f"hostile-{self.fresh()}"
        if route.path == "/v1/policy-versions":
            # A new policy version naming no purpose: the target purpose keeps its policy.
            body["purposes"] = []
        return body

    def prepare(self, route: _Route, body: Mapping[str, Any]) -> None:
        """What the ledger must hold before ``body`` can be recorded."""
        person = {name: body[name] for name in ("subject", "address") if name in body}
        if route.path == "/v1/consents/confirm":
            self.api.command(
                "/v1/consents/grant",
                person
                | {
                    "purpose": self.target.purpose,
                    "policy_version": self.target.policy_version,
                    "double_opt_in": "pending",
                },
            )
        elif route.path in {"/v1/rights-requests/extend", "/v1/rights-requests/close"}:
            request_id = body.get("request_id")
            self.api.command(
                "/v1/rights-requests", person | {"right": "access", "request_id": request_id}
            )


def _hostile_values(rounds: int, rng: random.Random) -> list[tuple[str, str]]:
    values = list(HOSTILE_VALUES)
    for number in range((rounds - 1) * RANDOM_VALUES_PER_ROUND):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 40)))
        values.append((f"random #{number + 1}", text))
    return values


def _string_fields(api: _Api, target: HostileTarget, rounds: int, run: str) -> list[Finding]:
    started = time.monotonic()
    opened = api.send("GET", "/openapi.json")
    opened.raise_for_status()
    document = opened.json()
    routes = _json_routes(document)
    bodies = _Bodies(api, target, run, document)
    walked = _Tally("string fields: routes walked")
    scopes: dict[str, str] = {}
    for route in routes:
        walked.sent()
        scope, answer = _first_scope(api, route, bodies)
        if scope is None:
            walked.fail(f"a valid body for POST {route.path} was refused: {_answer(answer)}")
        else:
            scopes[route.path] = scope
    values = _hostile_values(rounds, random.Random(run))
    tallies = {label: _Tally(f"string fields: {label}") for label, _ in values}
    tasks = [
        (label, _Injection(route, scopes[route.path], path, value))
        for route in routes
        if route.path in scopes
        for path in route.strings
        for label, value in values
    ]

    def one(task: tuple[str, _Injection]) -> None:
        label, injection = task
        tally = tallies[label]
        tally.sent()
        try:
            _inject(api, bodies, injection, tally)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            tally.fail(f"{injection.where}: {type(error).__name__}: {error}")

    with ThreadPoolExecutor(FUZZ_WORKERS) as pool:
        list(pool.map(one, tasks))

    fields = sum(len(route.strings) for route in routes if route.path in scopes)
    findings = [
        walked.finding(
            f"{len(routes)} JSON POST routes of /openapi.json, {fields} string fields; a valid "
            "body of each was recorded ("
            + ", ".join(f"{path} with {scope}" for path, scope in sorted(scopes.items()))
            + ")"
        )
    ]
    findings.extend(
        tally.finding(
            "in each string field of each route: never 5xx; 2xx reading back identical in the "
            "audit history where the event holds the field, else a 4xx problem naming the field"
        )
        for tally in tallies.values()
    )
    findings.append(_idempotency_keys(api, target, rounds, run))
    findings.append(_malformed_bodies(api, routes, scopes, rounds))
    findings.append(_single_check_queries(api, target, values))
    ok, detail = _pipeline_works(api, target, run, "strings")
    findings.append(
        Finding(
            "string fields: database intact afterwards",
            0,
            ok,
            f"{detail}; phase took {time.monotonic() - started:.1f} s",
        )
    )
    return findings


def _first_scope(api: _Api, route: _Route, bodies: _Bodies) -> tuple[str | None, httpx.Response]:
    """The scope that takes a valid body (write, else admin, else links), and the last answer."""
    for scope in (WRITE, ADMIN, LINKS):
        body = bodies.baseline(route)
        bodies.prepare(route, body)
        answer = api.command(route.path, body, scope=scope)
        if answer.status_code != 403:
            return (scope if answer.is_success else None), answer
    return None, answer


@dataclass(frozen=True)
class _Injection:
    route: _Route
    scope: str
    path: FieldPath
    value: str

    @property
    def where(self) -> str:
        return f"POST {self.route.path} {_dotted(self.path)}={_shown(self.value)}"


def _inject(api: _Api, bodies: _Bodies, injection: _Injection, tally: _Tally) -> None:
    """One hostile value in one field of a valid body: 2xx and read back, or 4xx naming it."""
    route, path = injection.route, injection.path
    body = bodies.baseline(route)
    if route.person and path[0] == "address":
        del body["subject"]
    body = _placed(body, path, injection.value)
    bodies.prepare(route, body)
    answer = api.command(route.path, body, scope=injection.scope)
    if answer.is_success:
        _read_back(api, bodies.target, injection, answer, tally)
        return
    if not answer.is_client_error:
        tally.fail(f"{injection.where} answered {_answer(answer)}")
        return
    problem = _problem(answer)
    named = _problem_fields(problem) if problem is not None else set()
    dotted = _dotted(path)
    if any(dotted == name or dotted.startswith(name + ".") for name in named):
        tally.saw("4xx naming the field")
    else:
        tally.fail(f"{injection.where} answered {_answer(answer)}: not a problem naming the field")


def _read_back(
    api: _Api, target: HostileTarget, injection: _Injection, answer: httpx.Response, tally: _Tally
) -> None:
    accepted = answer.json()
    path, value = injection.path, injection.value
    if "event_ids" not in accepted:
        if injection.route.path == "/v1/subjects" and path == ("address",):
            if accepted.get("subject") != target.hasher.subject_for(value):
                tally.fail(f"{injection.where} answered another subject than the address's")
                return
            tally.saw("2xx read back")
        else:
            tally.saw("2xx not exposed")
        return
    event_ids = set(accepted["event_ids"])
    events = [event for event in api.history(accepted["subject"]) if event["event_id"] in event_ids]
    if len(events) != len(event_ids):
        tally.fail(
            f"{injection.where}: {len(event_ids)} event(s) answered, {len(events)} in the history"
        )
        return
    # A command's address is kept as the event's personal address (the subject is its hash).
    stored_at = ("personal", "address") if path == ("address",) else path
    found = [stored for present, stored in (_at(event, stored_at) for event in events) if present]
    if not found:
        tally.saw("2xx not exposed")
    elif all(stored == value for stored in found):
        tally.saw("2xx read back")
    else:
        tally.fail(f"{injection.where} reads back as {_shown(found)}")


def _idempotency_keys(api: _Api, target: HostileTarget, rounds: int, run: str) -> Finding:
    tally = _Tally("string fields: Idempotency-Key header")
    keys: list[str | bytes] = []
    for round_ in range(rounds):
        unique = f"{run}-{round_}"
        keys += [
            f"'; drop table ledger_events; -- {unique}",
            f"%s{{schema}}{unique}",
            "k" * 129,
            "\u202e".encode() + unique.encode(),
            f"a\tb{unique}",
        ]
    for key in keys:
        tally.sent()
        body = {
            "address": _address(run, f"idem-{tally.injected}"),
            "purpose": target.purpose,
            "policy_version": target.policy_version,
        }
        first = api.command("/v1/consents/grant", body, idempotency_key=key)
        where = f"grant with Idempotency-Key {_shown(key)}"
        if first.status_code == 201:
            again = api.command("/v1/consents/grant", body, idempotency_key=key)
            text = key.decode("latin-1") if isinstance(key, bytes) else key
            if first.json()["command_id"] != text:
                tally.fail(f"{where} recorded command id {_shown(first.json()['command_id'])}")
            elif again.status_code != 200 or again.json() != first.json() | {"duplicate": True}:
                tally.fail(f"{where}, sent again, answered {_answer(again)}")
            else:
                tally.saw("recorded once")
        elif first.status_code == 422 and "Idempotency-Key" in _problem_fields(
            _problem(first) or {}
        ):
            tally.saw("422 naming it")
        else:
            tally.fail(f"{where} answered {_answer(first)}")
    return tally.finding(
        "each recorded under exactly that command id and answered 200 duplicate when sent "
        "again, or refused with a 422 problem naming Idempotency-Key"
    )


def _malformed_bodies(
    api: _Api, routes: Sequence[_Route], scopes: Mapping[str, str], rounds: int
) -> Finding:
    tally = _Tally("string fields: malformed and oversize JSON bodies")
    # A body that is not JSON may be 400 or 422; one over the limit must be 413 (limits.py).
    broken: list[tuple[str, bytes, int | None]] = [
        ("truncated JSON", b'{"subject": "hostile-', None),
        ("not UTF-8", b'{"subject": "\xff\xfe"}', None),
        ("a JSON array", b"[]", None),
        ("a JSON string", b'"hostile"', None),
        ("nothing", b"", None),
        ("over the body limit", b'{"x": "' + b"x" * MAX_BODY_BYTES + b'"}', 413),
    ]
    for route in list(routes) * rounds:
        scope = scopes.get(route.path, WRITE)
        for label, content, status in broken:
            tally.sent()
            answer = api.send("POST", route.path, scope=scope, headers=JSON_BODY, content=content)
            expected = answer.status_code == status if status else answer.is_client_error
            if not expected or _problem(answer) is None:
                tally.fail(f"POST {route.path} with {label} answered {_answer(answer)}")
        tally.sent()
        chunks = (b"x" * 8192 for _ in range(MAX_BODY_BYTES // 8192 + 2))
        answer = api.send("POST", route.path, scope=scope, headers=JSON_BODY, content=chunks)
        if answer.status_code != 413 or _problem(answer) is None:
            tally.fail(f"POST {route.path} chunked past the limit answered {_answer(answer)}")
    return tally.finding(
        "truncated, non-UTF-8, non-object and empty bodies answered 4xx problems; bodies over "
        f"{MAX_BODY_BYTES} bytes, declared or chunked, 413 problems"
    )


def _single_check_queries(
    api: _Api, target: HostileTarget, values: Sequence[tuple[str, str]]
) -> Finding:
    tally = _Tally("string fields: GET /v1/check query")
    for name in ("subject", "address"):
        for label, value in values:
            tally.sent()
            # A lone surrogate has no UTF-8: its percent-encoding is of the bytes Python gives it.
            query = urlencode({"purpose": target.purpose, name: value}, errors="surrogatepass")
            answer = api.send("GET", f"/v1/check?{query}", scope=CHECK)
            where = f"GET /v1/check {name}={_shown(value)} ({label})"
            if answer.status_code == 200:
                # What the server can read of the URL: a lone surrogate's bytes are not UTF-8.
                read = value.encode(errors="surrogatepass").decode(errors="replace")
                expected = read if name == "subject" else _subject_or_none(target, read)
                if answer.json().get("subject") != expected:
                    tally.fail(f"{where} answered for another person: {_answer(answer)}")
                else:
                    tally.saw("200 about that person")
            elif answer.is_client_error and name in _problem_fields(_problem(answer) or {}):
                tally.saw("4xx naming it")
            else:
                tally.fail(f"{where} answered {_answer(answer)}")
    return tally.finding(
        "each hostile value as the subject or address of a single check answered 200 about "
        "exactly that subject (the address's hash) or a 4xx problem naming the parameter"
    )


def _subject_or_none(target: HostileTarget, address: str) -> str | None:
    try:
        return target.hasher.subject_for(address)
    except LedgerError:
        return None


# --- Bulk checks ---------------------------------------------------------------------------------


def _bulk(
    api: _Api,
    target: HostileTarget,
    content: bytes,
    *,
    media: str = NDJSON,
    params: Mapping[str, Any] | None = None,
) -> httpx.Response:
    return api.send(
        "POST",
        "/v1/check",
        scope=CHECK,
        params={"purpose": target.purpose} if params is None else params,
        headers={"Content-Type": media},
        content=content,
    )


def _declared_over(
    api: _Api, path: str, scope: str | None, media: str, length: int
) -> tuple[int, bool]:
    """Status of a POST declaring ``length`` bytes but sending one KiB, and if it is a 413
    problem."""
    parts = urlsplit(api.base)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=HTTP_TIMEOUT_S
    )
    try:
        connection.putrequest("POST", path)
        for name, value in (api.auth(scope) if scope else {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Type", media)
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        with contextlib.suppress(OSError):
            connection.send(b"x" * 1024)
        response = connection.getresponse()
        body = response.read()
        kind = response.getheader("content-type", "")
        problem = kind.startswith(PROBLEM_JSON) and json.loads(body).get("status") == 413
        return response.status, problem
    finally:
        connection.close()


def _bulk_checks(api: _Api, target: HostileTarget, rounds: int, run: str) -> list[Finding]:
    started = time.monotonic()
    granted = api.command(
        "/v1/consents/grant",
        {
            "address": _address(run, "bulk"),
            "purpose": target.purpose,
            "policy_version": target.policy_version,
        },
    )
    if granted.status_code != 201:
        return [Finding("bulk check: setup", 0, False, f"grant answered {_answer(granted)}")]
    known, position = granted.json()["subject"], granted.json()["position"]
    ready = _covered_check(api, target, known, position)
    if ready.status_code != 200 or ready.json().get("allowed") is not True:
        return [Finding("bulk check: setup", 0, False, f"a check answered {_answer(ready)}")]
    return [
        _body_limits(api, target, rounds),
        _ndjson_lines(api, target, known, rounds),
        _csv_lines(api, target, known, rounds),
        _wrong_media(api, target, rounds),
        _bad_parameters(api, target, rounds),
        _still_answers(api, target, known, started),
    ]


def _body_limits(api: _Api, target: HostileTarget, rounds: int) -> Finding:
    tally = _Tally("bulk check: bodies over the limit")
    path = f"/v1/check?purpose={target.purpose}"
    cases = [
        (path, CHECK, NDJSON, MAX_BULK_BODY_BYTES + 1),
        (path, CHECK, "text/csv", 2**62),
        ("/v1/consents/grant", WRITE, "application/json", MAX_BODY_BYTES + 1),
        ("/u/hostile", None, FORM, MAX_FORM_BYTES + 1),
    ]
    for where, scope, media, length in cases * rounds:
        tally.sent()
        status, problem = _declared_over(api, where, scope, media, length)
        if status != 413 or not problem:
            tally.fail(f"POST {where} declaring {length} bytes answered {status}")
    return tally.finding(
        f"a bulk check declaring {MAX_BULK_BODY_BYTES + 1} and 2**62 bytes, a command over "
        f"{MAX_BODY_BYTES} and an unsubscribe form over {MAX_FORM_BYTES} each answered a 413 "
        "problem without the body being read"
    )


def _lines_of(answer: httpx.Response) -> list[str]:
    return [line for line in answer.text.split("\n") if line]


def _ndjson_lines(api: _Api, target: HostileTarget, known: str, rounds: int) -> Finding:
    """Each bad line between two good ones: the bad one answers in its place, the good ones too."""
    tally = _Tally("bulk check: malformed NDJSON lines")
    good = json.dumps(known).encode()
    bad: list[tuple[bytes, bool | None]] = [
        (b"{not json", True),
        (b'{"subject": 1}', True),
        (b'{"subject": "a", "address": "b"}', True),
        (b'"unterminated', True),
        (b'{"address": "not an address"}', True),
        (b"x" * (MAX_LINE_BYTES + 1), True),
        (b"[1, 2]", None),
        # Not a subject (1 to 128 of [A-Za-z0-9._:@-]): an error in its place.
        (b"'; drop table ledger_events; --", True),
        (b"\x1b[31m" + known.encode(), True),
        ("\u202e".encode() + known.encode(), True),
        (b"\xff\xfe", True),
        (b"\x00", None),
        (b"a\x00b", None),
        (b'{"subject": "a\\u0000b"}', None),
        (b'{"subject": "a\\ud800b"}', None),
        (b'{"address": "a\\u0000b@example.org"}', None),
        (b"\r", None),
    ]
    for line, error in bad * rounds:
        tally.sent()
        where = f"NDJSON line {_shown(line)}"
        try:
            answer = _bulk(api, target, good + b"\n" + line + b"\n" + good + b"\n")
        except httpx.HTTPError as failure:
            tally.fail(f"{where}: the answer broke off ({type(failure).__name__}: {failure})")
            continue
        answers = _lines_of(answer)
        expected = 3 if line.strip() else 2
        if answer.status_code != 200 or len(answers) != expected:
            tally.fail(f"{where} answered {_answer(answer)}")
            continue
        try:
            parsed = [json.loads(text) for text in answers]
        except ValueError:
            tally.fail(f"{where} answered lines that are not JSON: {_answer(answer)}")
            continue
        ends = (parsed[0], parsed[-1])
        if any(end.get("subject") != known or end.get("allowed") is not True for end in ends):
            tally.fail(f"{where}: the good lines around it answered {_shown(ends)}")
        elif expected == 3 and not _line_as_expected(parsed[1], error):
            tally.fail(f"{where} answered {_shown(parsed[1])}")
        else:
            tally.saw("answered in place")
    return tally.finding(
        "each bad line between two good ones answered 200 with one answer per line in order: "
        "an error for lines that are not a person or not a possible subject, allowed for the "
        "good ones"
    )


def _line_as_expected(answer: Any, error: bool | None) -> bool:
    if not isinstance(answer, dict):
        return False
    if error is None:
        return "error" in answer or answer.get("allowed") is False
    if error:
        return isinstance(answer.get("error"), str)
    return answer.get("allowed") is False


def _csv_lines(api: _Api, target: HostileTarget, known: str, rounds: int) -> Finding:
    tally = _Tally("bulk check: malformed CSV lines")
    good = known.encode()
    bad = [
        b'"unbalanced',
        b'"a""b",c,d',
        b"a,b,c,d,e,f,g",
        b"=cmd|' /C calc'!A0",
        b"x" * (MAX_LINE_BYTES + 1),
        b"\xff\xfe",
        b"a\x00b",
        "\u202e".encode() + good,
    ]
    for line in bad * rounds:
        tally.sent()
        where = f"CSV line {_shown(line)}"
        try:
            answer = _bulk(
                api,
                target,
                b"subject\n" + good + b"\n" + line + b"\n" + good + b"\n",
                media="text/csv",
            )
        except httpx.HTTPError as failure:
            tally.fail(f"{where}: the answer broke off ({type(failure).__name__}: {failure})")
            continue
        rows = _lines_of(answer)
        if answer.status_code != 200 or len(rows) != 4:
            tally.fail(f"{where} answered {_answer(answer)}")
        elif not (rows[1].startswith(f"{known},true") and rows[3].startswith(f"{known},true")):
            tally.fail(f"{where}: the good lines around it answered {_shown(rows)}")
        elif rows[2].startswith(f"{known},"):
            tally.fail(f"{where} was taken for the good subject: {_shown(rows[2])}")
        else:
            tally.saw("answered in place")
    return tally.finding(
        "after a header, each bad line between two good ones answered 200 with a header row and "
        "one row per line in order, the good ones allowed"
    )


def _wrong_media(api: _Api, target: HostileTarget, rounds: int) -> Finding:
    tally = _Tally("bulk check: wrong media type")
    media_types = [
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "text/html",
        "image/png",
    ]
    for media in media_types * rounds:
        tally.sent()
        answer = _bulk(api, target, b"hostile\n", media=media)
        problem = _problem(answer)
        if answer.status_code != 415 or "Content-Type" not in _problem_fields(problem or {}):
            tally.fail(f"Content-Type {media} answered {_answer(answer)}")
    return tally.finding("each answered a 415 problem naming Content-Type")


def _bad_parameters(api: _Api, target: HostileTarget, rounds: int) -> Finding:
    tally = _Tally("bulk check: missing or bad parameters")
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "purpose"),
        ({"purpose": "'; drop table ledger_events; --"}, "purpose"),
        ({"purpose": "a\x00b"}, "purpose"),
        ({"purpose": target.purpose, "min_position": -1}, "min_position"),
        ({"purpose": target.purpose, "min_position": "x"}, "min_position"),
        ({"purpose": target.purpose, "input": "'; --"}, "input"),
        ({"purpose": target.purpose, "channel": "pigeon"}, "channel"),
    ]
    for params, name in cases * rounds:
        tally.sent()
        answer = _bulk(api, target, b"hostile\n", params=params)
        if not answer.is_client_error or name not in _problem_fields(_problem(answer) or {}):
            tally.fail(f"POST /v1/check?{_shown(params)} answered {_answer(answer)}")
    return tally.finding("each answered a 4xx problem naming the parameter")


def _still_answers(api: _Api, target: HostileTarget, known: str, started: float) -> Finding:
    tally = _Tally("bulk check: server answers afterwards")
    tally.sent()
    health = api.send("GET", "/healthz")
    if health.status_code != 200:
        tally.fail(f"GET /healthz answered {_answer(health)}")
    for _ in range(CHECK_REPEATS):
        answer = api.send(
            "GET", "/v1/check", scope=CHECK, params={"subject": known, "purpose": target.purpose}
        )
        if answer.status_code != 200 or answer.json().get("allowed") is not True:
            tally.fail(f"a single check answered {_answer(answer)}")
        bulk = _bulk(api, target, json.dumps(known).encode() + b"\n")
        if bulk.status_code != 200 or json.loads(bulk.text or "{}").get("allowed") is not True:
            tally.fail(f"a bulk check answered {_answer(bulk)}")
    return tally.finding(
        f"/healthz answered 200; {CHECK_REPEATS} single and {CHECK_REPEATS} bulk checks of a "
        f"granted person answered allowed; phase took {time.monotonic() - started:.1f} s"
    )
