"""The soak's steady mixed load through the HTTP API, and what it saw.

Commands (grants, withdrawals, grants again), one-click unsubscribes, single and bulk checks,
each stream at its own rate, from this process (not the server's). A command is retried with
its Idempotency-Key until acknowledged, as a careful client does through faults; what was
acknowledged, and when, is kept for the final verification. A probe writes and then checks with
the write's position every quarter second: the first probe that gets through after a fault
ends the recovery. A watcher polls the projection for the clicks not yet enforced.
"""

import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from ledger.domain.identity import SubjectHasher
from ledger.links.tokens import UnsubscribeTokenCodec

PURPOSE = "newsletter"
POLICY = "v1"
RETRY_FOR_S = 120.0
RETRY_PAUSE_S = 0.2
IN_FLIGHT = 200
"""Requests of one stream in flight at most; beyond, a tick is skipped and counted."""
WATCH_EVERY_S = 0.1
PROBE_EVERY_S = 0.25
PIPELINE = (
    "select (select coalesce(max(notification_id), 0) from {schema}.ledger_events),"
    " (select coalesce(max(position), 0) from {schema}.follower_positions),"
    " (select coalesce(sum(next_offset), 0) from {schema}.consumer_offsets)"
)


@dataclass(frozen=True)
class Rates:
    commands: float = 30.0
    clicks: float = 8.0
    checks: float = 40.0
    bulk_every_s: float = 2.0
    bulk_size: int = 400


@dataclass
class Acked:
    kind: str
    command_id: str
    event_ids: list[str]
    position: int
    acked_at: float


@dataclass
class Click:
    subject: str
    command_id: str
    acked_at: float
    enforced_at: float | None = None


@dataclass
class Probe:
    started: float
    ended: float
    ok: bool


@dataclass
class Seen:
    """Everything the load observed; times are `time.monotonic()`."""

    acked: list[Acked] = field(default_factory=list)
    clicks: dict[str, Click] = field(default_factory=dict)
    """By subject: each person clicks one link at most (and never consents again after)."""
    answers: list[tuple[float, str, bool]] = field(default_factory=list)
    """(sent at, subject, allowed) of every check answer about a person who had clicked."""
    probes: list[Probe] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    """``<stream> <status>`` of every answer (``<stream> error`` for no answer)."""
    given_up: Counter[str] = field(default_factory=Counter)
    """Commands still unacknowledged after retrying `RETRY_FOR_S`."""
    skipped: Counter[str] = field(default_factory=Counter)
    pipeline: list[tuple[float, int, int, int]] = field(default_factory=list)
    """(time, ledger head, relayed position, records the consumers applied), every second."""
    refused: list[str] = field(default_factory=list)
    """Well-formed commands answered 4xx: none should be."""
    checks_answered: int = 0


@dataclass(kw_only=True, eq=False)
class MixedLoad:
    api: str
    keys: dict[str, str]
    dsn: str
    schema: str
    tokens: UnsubscribeTokenCodec
    hasher: SubjectHasher
    rates: Rates
    seed: int = 1
    seen: Seen = field(default_factory=Seen, init=False)
    _granted: list[str] = field(default_factory=list, init=False)
    """Subjects with an acknowledged consent, not withdrawn, never clicked."""
    _withdrawn: list[str] = field(default_factory=list, init=False)
    _busy: set[str] = field(default_factory=set, init=False)
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._names = itertools.count()

    # --- HTTP -------------------------------------------------------------------------------

    def _auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    async def _request(self, stream: str, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = await self._clients[stream].request(method, path, **kwargs)
        except httpx.HTTPError:
            self.seen.statuses[f"{stream} error"] += 1
            return None
        self.seen.statuses[f"{stream} {answer.status_code}"] += 1
        return answer

    async def command(
        self, kind: str, path: str, body: dict[str, Any], scope: str = "write"
    ) -> Acked | None:
        """Send until acknowledged (same Idempotency-Key every time); None if never."""
        command_id = f"soak-{uuid.uuid4()}"
        headers = self._auth(scope) | {"Idempotency-Key": command_id}
        deadline = time.monotonic() + RETRY_FOR_S
        while time.monotonic() < deadline:
            answer = await self._request("command", "POST", path, json=body, headers=headers)
            if answer is not None and answer.status_code in (200, 201):
                data = answer.json()
                acked = Acked(
                    kind, command_id, data["event_ids"], data["position"], time.monotonic()
                )
                self.seen.acked.append(acked)
                return acked
            if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                self.seen.refused.append(f"{kind}: {answer.status_code} {answer.text[:300]}")
                return None
            await asyncio.sleep(RETRY_PAUSE_S)
        self.seen.given_up[kind] += 1
        return None

    # --- setup ------------------------------------------------------------------------------

    async def setup(self, people: int) -> None:
        """The purpose, the policy version, and ``people`` consents to start from."""
        await self.command(
            "purpose",
            "/v1/purposes",
            {
                "purpose": PURPOSE,
                "legal_basis": "consent",
                "description": "The monthly newsletter",
                "direct_marketing": True,
            },
            "admin",
        )
        await self.command(
            "policy",
            "/v1/policy-versions",
            {
                "version": POLICY,
                "text_sha256": "0" * 64,
                "effective_at": "2026-01-01T00:00:00Z",
                "purposes": [PURPOSE],
            },
            "admin",
        )
        await asyncio.gather(*(self._grant_new() for _ in range(people)))

    # --- streams ----------------------------------------------------------------------------

    def _address(self) -> str:
        return f"soak{next(self._names)}@mail.example.org"

    async def _grant_new(self) -> None:
        address = self._address()
        body = {"address": address, "purpose": PURPOSE, "policy_version": POLICY}
        if await self.command("grant", "/v1/consents/grant", body):
            self._granted.append(self.hasher.subject_for(address))

    def _take(self, pool: list[str]) -> str | None:
        """A random subject of ``pool``, removed from it and marked busy."""
        for _ in range(5):
            if not pool:
                return None
            subject = pool.pop(self._random.randrange(len(pool)))
            if subject not in self._busy:
                self._busy.add(subject)
                return subject
            pool.append(subject)
        return None

    async def _one_command(self) -> None:
        roll = self._random.random()
        if roll < 0.15 and (subject := self._take(self._granted)):
            body = {"subject": subject, "purpose": PURPOSE}
            done = await self.command("withdraw", "/v1/consents/withdraw", body)
            (self._withdrawn if done else self._granted).append(subject)
            self._busy.discard(subject)
        elif roll < 0.25 and (subject := self._take(self._withdrawn)):
            body = {"subject": subject, "purpose": PURPOSE, "policy_version": POLICY}
            done = await self.command("grant", "/v1/consents/grant", body)
            (self._granted if done else self._withdrawn).append(subject)
            self._busy.discard(subject)
        else:
            await self._grant_new()

    async def _one_click(self) -> None:
        subject = self._take(self._granted)
        if subject is None:
            return
        token = self.tokens.issue(subject=subject, purpose=PURPOSE, campaign_id="soak")
        claim = self.tokens.verify(token)
        deadline = time.monotonic() + RETRY_FOR_S
        while time.monotonic() < deadline:
            answer = await self._request(
                "click",
                "POST",
                f"/u/{token}",
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            if answer is not None and answer.status_code == 200:
                self.seen.clicks[subject] = Click(subject, claim.command_id, time.monotonic())
                return
            if answer is not None and answer.status_code < 500:
                self.seen.refused.append(f"click: {answer.status_code} {answer.text[:300]}")
                return
            await asyncio.sleep(RETRY_PAUSE_S)
        self.seen.given_up["click"] += 1
        # Maybe recorded, maybe not: never consented again either way.

    def _check_targets(self, count: int) -> list[str]:
        """Half people who clicked lately (the answers that matter), half others."""
        now = time.monotonic()
        recent = [c.subject for c in self.seen.clicks.values() if now - c.acked_at < 10]
        picked = self._random.sample(recent, min(len(recent), count // 2))
        others = self._granted + self._withdrawn
        picked += self._random.sample(others, min(len(others), count - len(picked)))
        return picked

    def _note(self, sent_at: float, subject: str, allowed: bool) -> None:
        self.seen.checks_answered += 1
        if subject in self.seen.clicks:
            self.seen.answers.append((sent_at, subject, allowed))

    async def _one_check(self) -> None:
        for subject in self._check_targets(1):
            sent_at = time.monotonic()
            answer = await self._request(
                "check",
                "GET",
                "/v1/check",
                params={"subject": subject, "purpose": PURPOSE},
                headers=self._auth("check"),
            )
            if answer is not None and answer.status_code == 200:
                self._note(sent_at, subject, bool(answer.json()["allowed"]))

    async def _one_bulk(self) -> None:
        subjects = self._check_targets(self.rates.bulk_size)
        body = "".join(f"{s}\n" for s in subjects).encode()
        sent_at = time.monotonic()
        answer = await self._request(
            "bulk",
            "POST",
            "/v1/check",
            params={"purpose": PURPOSE},
            content=body,
            headers=self._auth("check") | {"Content-Type": "application/x-ndjson"},
        )
        if answer is None or answer.status_code != 200:
            return
        for line in answer.text.splitlines():
            row = json.loads(line)
            if "subject" in row:
                self._note(sent_at, row["subject"], bool(row["allowed"]))

    async def _one_probe(self) -> None:
        started = time.monotonic()
        address = self._address()
        body = {"address": address, "purpose": PURPOSE, "policy_version": POLICY}
        headers = self._auth("write") | {"Idempotency-Key": f"soak-probe-{uuid.uuid4()}"}
        ok = False
        answer = await self._request(
            "probe", "POST", "/v1/consents/grant", json=body, headers=headers
        )
        if answer is not None and answer.status_code == 201:
            data = answer.json()
            self.seen.acked.append(
                Acked(
                    "grant",
                    headers["Idempotency-Key"],
                    data["event_ids"],
                    data["position"],
                    time.monotonic(),
                )
            )
            check = await self._request(
                "probe",
                "GET",
                "/v1/check",
                params={"address": address, "purpose": PURPOSE, "min_position": data["position"]},
                headers=self._auth("check"),
            )
            ok = check is not None and check.status_code == 200 and check.json()["allowed"]
        self.seen.probes.append(Probe(started, time.monotonic(), ok))

    async def _every(self, name: str, period: float, step: Any, stop: asyncio.Event) -> None:
        slots = asyncio.Semaphore(IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()

        async def run() -> None:
            try:
                await step()
            finally:
                slots.release()

        start = time.monotonic()
        for tick in itertools.count():
            delay = start + tick * period - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
            if slots.locked():
                self.seen.skipped[name] += 1
                continue
            await slots.acquire()
            task = asyncio.create_task(run())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def watch(self, stop: asyncio.Event) -> None:
        """Note when each click reaches the projection (polled every `WATCH_EVERY_S`)."""
        query = (
            f"select subject from {self.schema}.suppression "  # noqa: S608 - our own schema name
            "where subject = any(%s) and reason = 'unsubscribed' and scope = %s and active"
        )
        conn: psycopg.AsyncConnection[Any] | None = None
        sampled = 0.0
        while True:
            finished = stop.is_set()
            pending = [c.subject for c in self.seen.clicks.values() if c.enforced_at is None]
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                if pending:
                    rows = await (await conn.execute(query, (pending, PURPOSE))).fetchall()
                    now = time.monotonic()
                    for (subject,) in rows:
                        self.seen.clicks[subject].enforced_at = now
                if time.monotonic() - sampled >= 1.0:
                    sampled = time.monotonic()
                    row = await (await conn.execute(PIPELINE.format(schema=self.schema))).fetchone()
                    if row is not None:
                        head, relayed, applied = (int(v) for v in row)
                        self.seen.pipeline.append((sampled, head, relayed, applied))
            except psycopg.Error:
                if conn is not None:
                    await conn.close()
                conn = None
            if finished:
                break
            await asyncio.sleep(WATCH_EVERY_S)
        if conn is not None:
            await conn.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Every stream until ``stop``; then the watcher's last look."""
        rates = self.rates
        streams = [
            ("command", 1 / rates.commands, self._one_command),
            ("click", 1 / rates.clicks, self._one_click),
            ("check", 1 / rates.checks, self._one_check),
            ("bulk", rates.bulk_every_s, self._one_bulk),
            ("probe", PROBE_EVERY_S, self._one_probe),
        ]
        await asyncio.gather(
            *(self._every(name, period, step, stop) for name, period, step in streams)
        )

    async def __aenter__(self) -> "MixedLoad":
        # A client per stream, as separate senders would have: a stream whose requests wait
        # (checks during an outage) does not hold the connections of the others.
        for stream in ("command", "click", "check", "bulk", "probe"):
            self._clients[stream] = httpx.AsyncClient(
                base_url=self.api,
                timeout=httpx.Timeout(15.0),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.aclose()
