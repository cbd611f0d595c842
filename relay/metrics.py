"""The relay's Prometheus metrics: its position, backlog and broker errors, no personal data."""

from prometheus_client import CollectorRegistry, Counter, Gauge

RELAY = CollectorRegistry(auto_describe=True)
"""The relay's series: exported by ``consent-ledger relay`` only."""

RELAY_BACKLOG = Gauge(
    "consent_ledger_relay_backlog_events",
    "Stored events not yet acknowledged by Kafka: the ledger head minus the relayed position.",
    registry=RELAY,
)
RELAY_POSITION = Gauge(
    "consent_ledger_relay_position",
    "The ledger position the relay has published up to.",
    registry=RELAY,
)
RELAY_PUBLISHED = Counter(
    "consent_ledger_relay_published_events",
    "Events published to Kafka and acknowledged.",
    registry=RELAY,
)
RELAY_ERRORS = Counter(
    "consent_ledger_relay_broker_errors",
    "Relay batches that failed on the broker (retried).",
    registry=RELAY,
)
