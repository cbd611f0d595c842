"""The projections' Prometheus metrics: counts only, no personal data, no per-person label."""

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ledger.domain.rules import Decision, Reason
from schemas import (
    ConsentWithdrawn,
    EventBase,
    Right,
    Source,
    UnsubscribeClicked,
    WithdrawalReason,
)

logger = logging.getLogger(__name__)

CHECKS_PART = CollectorRegistry(auto_describe=True)
"""The checks' series and the rights gauges: exported by ``serve``."""
ENFORCEMENT = CollectorRegistry(auto_describe=True)
"""Unsubscribe-to-enforced times: exported by what applies events (``consume``, or ``serve``'s
embedded feed)."""

RIGHTS_REQUESTS_OPEN = Gauge(
    "consent_ledger_rights_requests_open",
    "Data-subject rights requests not yet closed, as of the last query of the projection.",
    ["right"],
    registry=CHECKS_PART,
)
RIGHTS_REQUESTS_OVERDUE = Gauge(
    "consent_ledger_rights_requests_overdue",
    "Open data-subject rights requests past their due date, as of the last query.",
    ["right"],
    registry=CHECKS_PART,
)
RIGHTS_REQUESTS_DUE_SOON = Gauge(
    "consent_ledger_rights_requests_due_soon",
    "Open data-subject rights requests due within the next seven days and not yet overdue.",
    ["right"],
    registry=CHECKS_PART,
)
UNSUBSCRIBE_ENFORCED = Histogram(
    "consent_ledger_unsubscribe_enforced_seconds",
    "From a live unsubscribe click's or complaint's recorded time to the projection applying it "
    "(checks then deny); imported history is not counted.",
    registry=ENFORCEMENT,
    buckets=(
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        15,
        60,
        300,
        900,
        3600,
        6 * 3600,
        24 * 3600,
        48 * 3600,
        72 * 3600,
    ),
)
"""10 ms to 72 hours: a click enforced at once shows apart from one a second late, and the
48-hour rule of the large mailbox providers is a bucket bound."""
CHECKS = Counter(
    "consent_ledger_checks",
    "May-we-send answers, by kind (single or bulk), decision (allowed, denied) and reason.",
    ["kind", "decision", "reason"],
    registry=CHECKS_PART,
)
CHECK_DURATION = Histogram(
    "consent_ledger_check_duration_seconds",
    "Time to answer a check: one subject, or a whole bulk list.",
    ["kind"],
    registry=CHECKS_PART,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10, 60, 300),
)

DUE_SOON_DAYS = 7

P = ParamSpec("P")


class _Answer(Protocol):
    @property
    def decision(self) -> Decision: ...


R = TypeVar("R", bound=_Answer)
Answers = Iterator[tuple[str, Decision]]


def observe_unsubscribes(events: Iterable[EventBase], *, now: datetime | None = None) -> None:
    """Observe, for each live unsubscribe click or complaint among events just applied, how
    long it took from being recorded to being applied."""
    at = now or datetime.now(UTC)
    for event in events:
        if enforces_a_live_request(event):
            UNSUBSCRIBE_ENFORCED.observe(max((at - event.recorded_at).total_seconds(), 0.0))


def enforces_a_live_request(event: EventBase) -> bool:
    """An unsubscribe or a complaint as it happens: not a line of an imported history, which
    was enforced (or not) by the system it came from, and whose recorded time says nothing
    of how fast this one acts."""
    if event.source is Source.IMPORT:
        return False
    if isinstance(event, UnsubscribeClicked):
        return True
    return isinstance(event, ConsentWithdrawn) and event.reason is WithdrawalReason.COMPLAINT


class CheckMeter:
    """Counts the checks of one kind by reason, with each label child bound once."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._children: dict[str, Any] = {}
        self._duration = CHECK_DURATION.labels(kind)

    def count(self, decision: str, reason: str, n: int = 1) -> None:
        child = self._children.get(reason)
        if child is None:
            child = self._children[reason] = CHECKS.labels(self._kind, decision, reason)
        child.inc(n)

    def decided(self, reason: Reason | None, n: int = 1) -> None:
        if reason is None:
            self.count("allowed", "none", n)
        else:
            self.count("denied", reason.value, n)

    def took(self, started: float) -> None:
        self._duration.observe(time.monotonic() - started)


SINGLE_CHECKS = CheckMeter("single")
BULK_CHECKS = CheckMeter("bulk")


def metered_check(method: Callable[P, R]) -> Callable[P, R]:
    """Count a single check's answer by reason (or its failure) and time it."""

    @functools.wraps(method)
    def metered(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.monotonic()
        try:
            result = method(*args, **kwargs)
        except Exception as error:
            # Fail-closed answers: a stale projection is retryable, anything else failed.
            retryable = getattr(error, "retryable", False)
            SINGLE_CHECKS.count("error", "stale_projection" if retryable else "failed")
            SINGLE_CHECKS.took(started)
            raise
        single_check_answered(started, result.decision)
        return result

    return metered


def single_check_answered(started: float, decision: Decision) -> None:
    """Count one single check's answer by reason, and its time since ``started``."""
    SINGLE_CHECKS.took(started)
    SINGLE_CHECKS.decided(decision.reason)


def metered_bulk(method: Callable[P, Answers]) -> Callable[P, Answers]:
    """Count a bulk check's answers by reason once its stream ends, and time the whole list."""

    @functools.wraps(method)
    def metered(*args: P.args, **kwargs: P.kwargs) -> Answers:
        return _counted(method(*args, **kwargs), time.monotonic())

    return metered


def _counted(answers: Answers, started: float) -> Answers:
    # A plain dict: Counter's += costs three times as much per answer.
    tally: dict[Reason | None, int] = {}
    try:
        for subject, decision in answers:
            reason = decision.reason
            tally[reason] = tally.get(reason, 0) + 1
            yield subject, decision
    finally:
        for reason, n in tally.items():
            BULK_CHECKS.decided(reason, n)
        BULK_CHECKS.took(started)


Rows = Sequence[tuple[Any, ...]]
Query = Callable[[], tuple[Rows, Rows, Rows]]
"""Returns (purpose, channel, opted-in count), (reason, suppressed persons),
(right, open, overdue, due soon) rows."""


class BusinessMetrics(Collector):
    """Gauges of the projection computed on scrape from three aggregate queries, cached.

    A scrape within ``ttl_s`` of the last query answers from the cache, so however many
    Prometheus servers scrape, the tables see at most one set of counts per ``ttl_s``. The
    counts are grouped aggregates (no row leaves the database). The rights counts set the
    rights gauges of this module, which the registry collects before this collector: they show
    a refresh from the next scrape on.
    """

    def __init__(
        self, query: Query, *, ttl_s: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._query = query
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._rows: tuple[Rows, Rows, Rows] = ((), (), ())

    def _refresh(self) -> tuple[Rows, Rows, Rows]:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._ttl_s:
                try:
                    self._rows = self._query()
                except Exception:
                    # A scrape must not fail because the database blinked: the last counts stay.
                    logger.exception("business metrics: the projection query failed")
                self._at = now
                counts = {right.value: (0, 0, 0) for right in Right}
                counts.update({str(r[0]): (r[1], r[2] or 0, r[3] or 0) for r in self._rows[2]})
                for right, (opened, overdue, due_soon) in counts.items():
                    RIGHTS_REQUESTS_OPEN.labels(right=right).set(opened)
                    RIGHTS_REQUESTS_OVERDUE.labels(right=right).set(overdue)
                    RIGHTS_REQUESTS_DUE_SOON.labels(right=right).set(due_soon)
            return self._rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        consents, suppressed, _ = self._refresh()
        opted_in = GaugeMetricFamily(
            "consent_ledger_persons_opted_in",
            "Persons whose consent is granted, per purpose and channel (cached projection count).",
            labels=["purpose", "channel"],
        )
        for purpose, channel, count in consents:
            opted_in.add_metric([str(purpose), str(channel)], float(count))
        yield opted_in
        suppression = GaugeMetricFamily(
            "consent_ledger_persons_suppressed",
            "Persons with an active suppression, by reason (cached projection count).",
            labels=["reason"],
        )
        for reason, count in suppressed:
            suppression.add_metric([str(reason)], float(count))
        yield suppression

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Described without querying: registering the collector must not touch the database.
        yield GaugeMetricFamily(
            "consent_ledger_persons_opted_in", "", labels=["purpose", "channel"]
        )
        yield GaugeMetricFamily("consent_ledger_persons_suppressed", "", labels=["reason"])
