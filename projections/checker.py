"""The sender's check: the decision, but never from a projection that is too far behind.

The projection covers ledger position P when every record the relay published up to P has been
applied: for each batch it published, the relay recorded the next offset of every partition it
wrote to (``relay_watermarks``), and the consumers record theirs with the rows
(``consumer_offsets``). A check that needs a newer position waits a bounded time, then raises
`StaleProjectionError`: it never answers from stale state.
"""

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from projections.decision import (
    ConsentFacts,
    Decision,
    Facts,
    ProjectionReader,
    SuppressionFacts,
    decide,
)

COVERED_QUERY = """
with first_uncovered as (
    select min(w.position) as position
    from {watermarks} w
    left join {offsets} c
      on c.partition = w.partition and c.consumer_group = %s and c.topic = %s
    where w.next_offset > coalesce(c.next_offset, 0)
)
select coalesce(max(w.position), 0)
from {watermarks} w, first_uncovered u
where u.position is null or w.position < u.position
"""


BULK_CHUNK = 10_000
BULK_QUERY = """
select s.subject, c.status, c.policy_version, c.since, c.last_position,
       (select array_agg(array[x.scope, x.reason, x.last_position::text])
          from {suppression} x where x.subject = s.subject and x.active),
       (select array_agg(r.scope) from {restriction} r where r.subject = s.subject and r.active),
       (select i.last_at from {interaction} i where i.subject = s.subject)
from unnest(%s::text[]) with ordinality as s(subject, n)
left join {consent} c on c.subject = s.subject and c.purpose = %s and c.channel = %s
order by s.n
"""


class ProjectionError(Exception):
    """Base of the projections' errors."""


class StaleProjectionError(ProjectionError):
    """The projection does not cover ``required`` yet (it covers ``covered``): retry later."""

    retryable = True

    def __init__(self, *, covered: int, required: int) -> None:
        super().__init__(
            f"projection covers position {covered}, the answer needs {required}: retry later"
        )
        self.covered = covered
        self.required = required


@dataclass(frozen=True, slots=True)
class CheckerConfig:
    schema: str = "public"
    group: str = "consent-ledger-projections"
    topic: str = "consent.events.v1"
    max_lag: int = 1_000
    """How many events the projection may be behind the ledger head and still answer."""
    wait_s: float = 2.0
    """How long a check waits for the projection to catch up before refusing."""
    poll_s: float = 0.02


@dataclass(frozen=True, slots=True)
class CheckResult:
    decision: Decision
    covered: int
    """The ledger position the answer is known to include."""


class Checker(ABC):
    """The check, fail-closed on staleness, over some projection store."""

    def __init__(
        self,
        *,
        head: Callable[[], int],
        config: CheckerConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._head = head
        self.config = config
        self._clock = clock

    @abstractmethod
    def covered(self) -> int:
        """The newest ledger position whose events the projection has all applied."""

    @abstractmethod
    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        """What the projection knows for one check."""

    def wait_until_covered(self, *, min_position: int | None = None) -> int:
        """Wait (bounded) until the projection is fresh enough; return what it covers."""
        deadline = time.monotonic() + self.config.wait_s
        while True:
            required = max(min_position or 0, self._head() - self.config.max_lag)
            covered = self.covered()
            if covered >= required:
                return covered
            if time.monotonic() >= deadline:
                raise StaleProjectionError(covered=covered, required=required)
            time.sleep(self.config.poll_s)

    def check(
        self, subject: str, purpose: str, channel: str = "email", *, min_position: int | None = None
    ) -> CheckResult:
        covered = self.wait_until_covered(min_position=min_position)
        facts = self.facts(subject, purpose, channel)
        decision = decide(facts, purpose=purpose, channel=channel, at=self._clock())
        return CheckResult(decision=decision, covered=covered)

    def bulk_check(
        self,
        subjects: Iterable[str],
        purpose: str,
        channel: str = "email",
        *,
        min_position: int | None = None,
        chunk: int = BULK_CHUNK,
    ) -> Iterator[tuple[str, Decision]]:
        """Stream (subject, decision) for each subject, in order, in bounded memory.

        Freshness is checked once, before the first answer.
        """
        del chunk  # one subject at a time here; stores with set queries batch instead
        self.wait_until_covered(min_position=min_position)
        at = self._clock()
        for subject in subjects:
            facts = self.facts(subject, purpose, channel)
            yield subject, decide(facts, purpose=purpose, channel=channel, at=at)


class SendChecker(Checker):
    """Checks against the PostgreSQL projection fed by the Kafka consumers."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        head: Callable[[], int],
        config: CheckerConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(head=head, config=config, clock=clock)
        self._conn = conn
        schema = sql.Identifier(config.schema)
        self._covered_query = sql.SQL(COVERED_QUERY).format(
            watermarks=sql.SQL("{}.{}").format(schema, sql.Identifier("relay_watermarks")),
            offsets=sql.SQL("{}.{}").format(schema, sql.Identifier("consumer_offsets")),
        )
        self._reader = ProjectionReader(conn, schema=config.schema)

        def table(name: str) -> sql.Composed:
            return sql.SQL("{}.{}").format(schema, sql.Identifier(name))

        self._bulk_query = sql.SQL(BULK_QUERY).format(
            consent=table("consent_state"),
            suppression=table("suppression"),
            restriction=table("restriction"),
            interaction=table("interaction"),
        )

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return self._reader.facts(subject, purpose, channel)

    def covered(self) -> int:
        row = self._conn.execute(
            self._covered_query, (self.config.group, self.config.topic)
        ).fetchone()
        return int(row[0]) if row else 0

    def bulk_check(
        self,
        subjects: Iterable[str],
        purpose: str,
        channel: str = "email",
        *,
        min_position: int | None = None,
        chunk: int = BULK_CHUNK,
    ) -> Iterator[tuple[str, Decision]]:
        """Stream (subject, decision) for each subject, in order, in bounded memory.

        Freshness is checked once, before the first answer; each chunk is one query.
        """
        self.wait_until_covered(min_position=min_position)
        at = self._clock()
        common = self.facts("", purpose, channel)
        if common.purpose is None:
            for subject in subjects:
                yield subject, decide(common, purpose=purpose, channel=channel, at=at)
            return
        iterator = iter(subjects)
        while batch := list(itertools.islice(iterator, chunk)):
            rows = self._conn.execute(self._bulk_query, (batch, purpose, channel)).fetchall()
            for subject, status, policy, since, position, suppressions, restrictions, last in rows:
                facts = Facts(
                    purpose=common.purpose,
                    consent=None
                    if status is None
                    else ConsentFacts(status, policy, since, position),
                    suppressions=tuple(
                        SuppressionFacts(scope, reason, int(pos))
                        for scope, reason, pos in (suppressions or ())
                    ),
                    restrictions=frozenset(restrictions or ()),
                    last_interaction=last,
                    policies=common.policies,
                )
                yield subject, decide(facts, purpose=purpose, channel=channel, at=at)
