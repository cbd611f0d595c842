"""The sender's check: the decision, but never from a projection that is too far behind.

The projection covers ledger position P when every record the relay published up to P has been
applied: for each batch it published, the relay recorded the next offset of every partition it
wrote to (``relay_watermarks``), and the consumers record theirs with the rows
(``consumer_offsets``). A check that needs a newer position waits a bounded time, then raises
`StaleProjectionError`: it never answers from stale state.
"""

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from ledger.domain.rules import Decision, Facts, Reason, decide, reconsent_versions
from projections.errors import ProjectionError
from projections.facts import ProjectionReader
from projections.freshness import Freshness, required_position
from projections.metrics import metered_bulk, metered_check

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


def covered_query(schema: str) -> sql.Composed:
    """The newest ledger position the projection has all applied (parameters: group, topic)."""
    return sql.SQL(COVERED_QUERY).format(
        watermarks=sql.Identifier(schema, "relay_watermarks"),
        offsets=sql.Identifier(schema, "consumer_offsets"),
    )


# `decide`'s rules, in its order, for every subject of the uploaded list at once: one snapshot,
# hash joins instead of a probe per person. Purpose-level inputs come from the catalog, read
# once: whether unsubscribes count (email), the legal basis, the oldest activity that keeps a
# consent alive (NULL: no limit) and the policy versions that need re-consent.
BULK_QUERY = """
select t.subject,
    case
        when x.erased is not null and (c.last_position is null or c.last_position <= x.erased)
            then 'erased'
        when x.objected then 'objected'
        when r.subject is not null then 'restricted'
        when %(email)s and (
            x.unsubscribed_here
            or (x.unsubscribed_everywhere is not null
                and (c.last_position is null or c.last_position <= x.unsubscribed_everywhere))
        ) then 'unsubscribed'
        when %(marketing)s and x.complained is not null
            and (c.last_position is null or c.last_position <= x.complained) then 'complained'
        when %(email)s and x.undeliverable then 'undeliverable'
        when not %(consent_based)s then null
        when c.status is null then 'never_granted'
        when c.status = 'withdrawn' then 'withdrawn'
        when c.status = 'pending' then 'double_opt_in_pending'
        when c.since < %(active_after)s::timestamptz and i.subject is null then 'expired'
        when c.policy_version = any(%(reconsent)s::text[]) then 'reconsent_required'
    end
from {subjects} t
left join {consent} c
    on c.subject = t.subject and c.purpose = %(purpose)s and c.channel = %(channel)s
left join (
    select subject,
        max(last_position) filter (where reason = 'erased') as erased,
        bool_or(reason = 'objection' and (scope = %(purpose)s or (scope = '*' and %(marketing)s)))
            as objected,
        bool_or(reason = 'unsubscribed' and scope = %(purpose)s) as unsubscribed_here,
        max(last_position) filter (where reason = 'unsubscribed' and scope = '*')
            as unsubscribed_everywhere,
        max(last_position) filter (where reason = 'complained' and scope = '*') as complained,
        bool_or(reason = 'undeliverable') as undeliverable
    from {suppression}
    where active and (reason in ('erased', 'undeliverable') or scope in ('*', %(purpose)s))
    group by subject
) x on x.subject = t.subject
left join (
    select distinct subject from {restriction} where active and scope in ('*', %(purpose)s)
) r on r.subject = t.subject
left join {interaction} i on i.subject = t.subject and i.last_at >= %(active_after)s
order by t.n
"""
_DECISIONS: dict[str | None, Decision] = {
    None: Decision(allowed=True),
    **{reason.value: Decision(allowed=False, reason=reason) for reason in Reason},
}


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
    max_staleness_s: float = 1.0
    """An event the ledger had stored this long before the check must be in the projection
    (``math.inf``: no time bound)."""
    wait_s: float = 2.0
    """How long a check waits for the projection to catch up before refusing."""
    poll_s: float = 0.02
    bulk_work_mem: str = "256MB"
    """PostgreSQL ``work_mem`` for a bulk check: its hash tables hold the purpose's consents."""


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
        freshness: Freshness | None = None,
    ) -> None:
        self._head = head
        self.config = config
        self._clock = clock
        self._freshness = freshness or Freshness(ttl_s=0.0, keep_s=config.max_staleness_s)

    def _read_freshness(self) -> tuple[int, int]:
        # The head first: a covered position read after it can only be larger.
        head = self._head()
        return head, self.covered()

    def usable(self) -> bool:
        """False once its connection broke: it is then closed and replaced."""
        return True

    def close(self) -> None:  # noqa: B027 - most checkers hold nothing of their own
        """Release its connection."""

    @abstractmethod
    def covered(self) -> int:
        """The newest ledger position whose events the projection has all applied."""

    @abstractmethod
    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        """What the projection knows for one check."""

    def wait_until_covered(self, *, min_position: int | None = None) -> int:
        """Wait (bounded) until the projection is fresh enough; return what it covers.

        Fresh enough: it covers ``min_position``, is at most ``max_lag`` events behind the
        head, and holds every event stored ``max_staleness_s`` before this check began (the
        head of the oldest read started since). The first look may reuse a (head, covered)
        pair read by another check of the same process within `Freshness.ttl_s`; a pair that
        does not satisfy the check is read again.
        """
        started = time.monotonic()
        deadline = started + self.config.wait_s
        since = started - self.config.max_staleness_s
        head, covered = self._freshness.read(self._read_freshness)
        while True:
            required = required_position(
                self._freshness, self.config, head, since=since, min_position=min_position
            )
            if required is not None:
                if covered >= required:
                    return covered
                if time.monotonic() >= deadline:
                    raise StaleProjectionError(covered=covered, required=required)
                time.sleep(self.config.poll_s)
            head, covered = self._freshness.fetch(self._read_freshness)

    @metered_check
    def check(
        self, subject: str, purpose: str, channel: str = "email", *, min_position: int | None = None
    ) -> CheckResult:
        covered = self.wait_until_covered(min_position=min_position)
        facts = self.facts(subject, purpose, channel)
        decision = decide(facts, purpose=purpose, channel=channel, at=self._clock())
        return CheckResult(decision=decision, covered=covered)

    @metered_bulk
    def bulk_check(
        self,
        subjects: Iterable[str],
        purpose: str,
        channel: str = "email",
        *,
        min_position: int | None = None,
    ) -> Iterator[tuple[str, Decision]]:
        """Stream (subject, decision) for each subject, in order, in bounded memory.

        Freshness is checked once, before the first answer.
        """
        self.wait_until_covered(min_position=min_position)
        yield from self._decide_each(subjects, purpose, channel, self._clock())

    def _decide_each(
        self, subjects: Iterable[str], purpose: str, channel: str, at: datetime
    ) -> Iterator[tuple[str, Decision]]:
        """A decision per subject, in order, once freshness is known."""
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
        freshness: Freshness | None = None,
    ) -> None:
        super().__init__(head=head, config=config, clock=clock, freshness=freshness)
        self._conn = conn
        schema = sql.Identifier(config.schema)
        self._covered_query = covered_query(config.schema)
        self._reader = ProjectionReader(conn, schema=config.schema)

        def table(name: str) -> sql.Composed:
            return sql.SQL("{}.{}").format(schema, sql.Identifier(name))

        self._tables = {
            name: table(name)
            for name in ("consent_state", "suppression", "restriction", "interaction")
        }

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        return self._reader.facts(subject, purpose, channel)

    def usable(self) -> bool:
        return not self._conn.closed

    def close(self) -> None:
        self._conn.close()

    def covered(self) -> int:
        row = self._conn.execute(
            self._covered_query, (self.config.group, self.config.topic)
        ).fetchone()
        return int(row[0]) if row else 0

    def _decide_each(
        self, subjects: Iterable[str], purpose: str, channel: str, at: datetime
    ) -> Iterator[tuple[str, Decision]]:
        """The subjects are copied into a temporary table and decided by one query, whose answers
        stream back as they are read: the first answer comes once the whole list is in."""
        catalog = self._reader.catalog(purpose)
        if catalog.purpose is None:
            unknown = _DECISIONS[Reason.UNKNOWN_PURPOSE.value]
            for subject in subjects:
                yield subject, unknown
            return
        max_age = catalog.purpose.max_age_days
        params = {
            "purpose": purpose,
            "channel": channel,
            "email": channel == "email",
            "marketing": catalog.purpose.direct_marketing,
            "consent_based": catalog.purpose.legal_basis == "consent",
            "active_after": None if max_age is None else at - timedelta(days=max_age),
            "reconsent": sorted(reconsent_versions(catalog.policies, purpose=purpose, at=at)),
        }
        # Unique: inside a caller's transaction, an earlier check's table lives until the commit.
        uploaded = sql.Identifier(f"bulk_check_{uuid.uuid4().hex}")
        query = sql.SQL(BULK_QUERY).format(
            subjects=uploaded,
            consent=self._tables["consent_state"],
            suppression=self._tables["suppression"],
            restriction=self._tables["restriction"],
            interaction=self._tables["interaction"],
        )
        conn = self._conn
        with conn.transaction(), conn.cursor() as cursor:
            cursor.execute("select set_config('work_mem', %s, true)", (self.config.bulk_work_mem,))
            # Compiling this plan costs more than it saves on one run.
            cursor.execute("set local jit = off")
            cursor.execute(
                sql.SQL(
                    "create temporary table {} (n bigint generated always as identity, "
                    "subject text not null) on commit drop"
                ).format(uploaded)
            )
            with cursor.copy(
                sql.SQL("copy {} (subject) from stdin (format binary)").format(uploaded)
            ) as copy:
                copy.set_types(["text"])
                for subject in subjects:
                    copy.write_row((subject,))
            with cursor.copy(
                sql.SQL("copy ({}) to stdout (format binary)").format(query), params
            ) as answers:
                answers.set_types(["text", "text"])
                for subject, reason in answers.rows():
                    yield subject, _DECISIONS[reason]
