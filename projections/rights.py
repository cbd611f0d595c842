"""Open and overdue data-subject rights requests, read from the projection's ``rights_requests``."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.metrics import RIGHTS_REQUESTS_OPEN, RIGHTS_REQUESTS_OVERDUE
from schemas import Right


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """A rights request still waiting for its answer."""

    request_id: str
    subject: str
    right: str
    received_at: datetime | None
    due_at: datetime
    extended: bool

    def overdue(self, now: datetime) -> bool:
        return self.due_at < now

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "subject": self.subject,
            "right": self.right,
            "received_at": None if self.received_at is None else self.received_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "extended": self.extended,
            "overdue": self.overdue(now),
        }


def summarise(requests: list[OpenRequest], *, now: datetime) -> dict[str, dict[str, int]]:
    """Open and overdue counts by right (every right listed), and set the metrics to them."""
    opened = Counter(r.right for r in requests)
    overdue = Counter(r.right for r in requests if r.overdue(now))
    summary = {right.value: {"open": opened[right], "overdue": overdue[right]} for right in Right}
    for right, counts in summary.items():
        RIGHTS_REQUESTS_OPEN.labels(right=right).set(counts["open"])
        RIGHTS_REQUESTS_OVERDUE.labels(right=right).set(counts["overdue"])
    return summary
