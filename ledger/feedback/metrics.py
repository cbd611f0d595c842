"""Metrics of what mailbox providers report back: counts by kind, outcome and reason, nothing more.

Labels are bounded sets (the kinds, outcomes and reject reasons of `ledger.feedback`).
"""

from prometheus_client import CollectorRegistry, Counter

FEEDBACK = CollectorRegistry(auto_describe=True)
"""Exported by ``serve``, which takes reports at ``POST /v1/feedback``."""

REPORTS = Counter(
    "consent_ledger_feedback_reports",
    "Complaint (ARF) and bounce (DSN) reports received, by kind and outcome "
    "(recorded, duplicate, counted: a soft bounce below the limit, rejected).",
    ["kind", "outcome"],
    registry=FEEDBACK,
)
REJECTS = Counter(
    "consent_ledger_feedback_rejects",
    "Reports kept in the reject store, by kind and reason (each report once).",
    ["kind", "reason"],
    registry=FEEDBACK,
)
