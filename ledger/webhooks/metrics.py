"""Metrics of webhook delivery: counts by outcome, endpoints retrying, lag; no URL, no subject."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

WEBHOOKS = CollectorRegistry(auto_describe=True)
"""Exported by ``webhooks deliver``."""

DELIVERIES = Counter(
    "consent_ledger_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered; retrying: failed, tried again later; "
    "failed: given up, the endpoint disabled).",
    ["outcome"],
    registry=WEBHOOKS,
)
RETRYING = Gauge(
    "consent_ledger_webhook_endpoints_retrying",
    "Active endpoints waiting to retry a delivery.",
    registry=WEBHOOKS,
)
DISABLED = Counter(
    "consent_ledger_webhook_endpoints_disabled",
    "Endpoints disabled after failing for longer than the retry period.",
    registry=WEBHOOKS,
)
LAG = Gauge(
    "consent_ledger_webhook_lag_events",
    "Events stored that the furthest-behind active endpoint has not been sent yet.",
    registry=WEBHOOKS,
)
DELIVERY_DELAY = Histogram(
    "consent_ledger_webhook_delivery_delay_seconds",
    "From an event's storage to its successful delivery.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0, 3600.0),
    registry=WEBHOOKS,
)
