"""The consumers' Prometheus metrics: progress per partition, no personal data, no record content.

The only label is the Kafka partition number, a small bounded set.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge

CONSUMER = CollectorRegistry(auto_describe=True)
"""The consumer's series: exported by ``consent-ledger consume`` only."""

CONSUMER_LAG = Gauge(
    "consent_ledger_consumer_lag_records",
    "Records of the partition not applied yet: the broker's high watermark minus the position.",
    ["partition"],
    registry=CONSUMER,
)
CONSUMED_RECORDS = Counter(
    "consent_ledger_consumer_records",
    "Records taken off the topic, applied (committed with their offsets) or dead-lettered.",
    registry=CONSUMER,
)
PROJECTION_POSITION = Gauge(
    "consent_ledger_projection_position",
    "The highest ledger position this consumer has applied to the projection tables.",
    registry=CONSUMER,
)
DEAD_LETTERS = Counter(
    "consent_ledger_dead_letters",
    "Records sent to the dead-letter topic because they could not be decoded or validated.",
    registry=CONSUMER,
)
