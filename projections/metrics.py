"""The projections' Prometheus metrics: counts only, no personal data, no per-person label."""

from prometheus_client import Gauge

RIGHTS_REQUESTS_OPEN = Gauge(
    "consent_ledger_rights_requests_open",
    "Data-subject rights requests not yet closed, as of the last query of the projection.",
    ["right"],
)
RIGHTS_REQUESTS_OVERDUE = Gauge(
    "consent_ledger_rights_requests_overdue",
    "Open data-subject rights requests past their due date, as of the last query.",
    ["right"],
)
