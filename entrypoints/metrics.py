"""What a process exports on /metrics: the series of the parts it runs, and nothing else.

Each package defines its series in a registry of its own (``ledger.metrics.WRITER``,
``relay.metrics.RELAY``, ...); a process serves the union of the parts it runs, so ``serve`` in
production shows no relay backlog, consumer position or checkpoint age frozen at 0 or NaN.
"""

from collections.abc import Iterable
from enum import StrEnum

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    disable_created_metrics,
)
from prometheus_client.registry import Collector

import consumers.metrics
import ledger.feedback.metrics
import ledger.metrics
import ledger.webhooks.metrics
import projections.metrics
import relay.metrics

# A `_created` series per counter and histogram child says when this process first touched
# it: Prometheus reads none of them, and they doubled the exposition.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Part(StrEnum):
    """A part of the system a process may run."""

    WRITER = "writer"
    CHECKS = "checks"
    FEED = "feed"
    """Applies events to the projection: the embedded feed, or the Kafka consumer."""
    AUDITOR = "auditor"
    RELAY = "relay"
    CONSUMER = "consumer"
    FEEDBACK = "feedback"
    """Takes complaint and bounce reports (``POST /v1/feedback``)."""
    WEBHOOKS = "webhooks"
    """Delivers the ledger's events to webhook endpoints (``webhooks deliver``)."""


SERIES: dict[Part, tuple[Collector, ...]] = {
    Part.WRITER: (ledger.metrics.WRITER,),
    Part.CHECKS: (projections.metrics.CHECKS_PART,),
    Part.FEED: (projections.metrics.ENFORCEMENT,),
    Part.AUDITOR: (ledger.metrics.AUDITOR,),
    Part.RELAY: (relay.metrics.RELAY,),
    Part.CONSUMER: (consumers.metrics.CONSUMER, projections.metrics.ENFORCEMENT),
    Part.FEEDBACK: (ledger.feedback.metrics.FEEDBACK,),
    Part.WEBHOOKS: (ledger.webhooks.metrics.WEBHOOKS,),
}
"""The series registries of each part."""


def process_registry(parts: Iterable[Part], *extra: Collector) -> CollectorRegistry:
    """The registry a process serves: its parts' series, ``extra`` collectors (the business
    gauges of ``serve``), and the process's own CPU, memory and garbage-collector series."""
    registry = CollectorRegistry(auto_describe=True)
    chosen: list[Collector] = []
    for part in parts:
        chosen.extend(c for c in SERIES[part] if c not in chosen)
    for collector in (*chosen, *extra, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


API_PARTS = (Part.WRITER, Part.CHECKS, Part.FEEDBACK)
"""What ``serve`` runs in both modes."""
EMBEDDED_PARTS = (Part.FEED, Part.AUDITOR)
"""What ``serve`` also runs in embedded mode: the feed of the projection and a sealer."""
