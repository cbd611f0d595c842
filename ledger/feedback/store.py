"""The reports that recorded nothing (with why), and the soft bounces counted towards a suppression.

Neither holds personal data: a reject keeps the report's digest, its kind, the reason and the
reporting provider, not the report (it names addresses of people the ledger could not find,
so nothing could erase them); a soft bounce is counted by subject.
"""

from dataclasses import dataclass
from datetime import datetime

from ledger.sidecar import SideStore, as_text

DDL = (
    """create table if not exists {feedback_rejects} (
    report_sha256 text primary key,
    kind text not null,
    reason text not null,
    provider text,
    received_at text not null
)""",
    """create table if not exists {soft_bounces} (
    subject text not null,
    report_sha256 text not null,
    bounced_at text not null,
    primary key (subject, report_sha256)
)""",
)


@dataclass(frozen=True, slots=True)
class RejectRow:
    report_sha256: str
    kind: str
    reason: str
    provider: str | None
    received_at: str


class FeedbackStore(SideStore):
    """Rejected reports and soft-bounce counts, in this mode's database."""

    DDL = DDL

    def reject(
        self, *, report_sha256: str, kind: str, reason: str, provider: str | None, at: datetime
    ) -> bool:
        """Keep a report that recorded nothing; False if the same report was kept before."""
        rows = self._tables.run(
            "insert into {feedback_rejects} (report_sha256, kind, reason, provider, received_at)"
            " values (%s, %s, %s, %s, %s) on conflict (report_sha256) do nothing"
            " returning report_sha256",
            (report_sha256, kind, reason, provider, as_text(at)),
        )
        return bool(rows)

    def rejects(self, *, limit: int = 100) -> list[RejectRow]:
        rows = self._tables.run(
            "select report_sha256, kind, reason, provider, received_at from {feedback_rejects}"
            " order by received_at desc, report_sha256 limit %s",
            (limit,),
        )
        return [RejectRow(*row) for row in rows]

    def reject_counts(self) -> dict[str, int]:
        """How many reports were rejected, by reason."""
        rows = self._tables.run(
            "select reason, count(*) from {feedback_rejects} group by reason order by reason"
        )
        return {reason: int(count) for reason, count in rows}

    def soft_bounce(
        self, *, subject: str, report_sha256: str, at: datetime, since: datetime
    ) -> int:
        """Count a soft bounce (each report once); how many the subject has since ``since``."""
        self._tables.run(
            "insert into {soft_bounces} (subject, report_sha256, bounced_at) values (%s, %s, %s)"
            " on conflict (subject, report_sha256) do nothing",
            (subject, report_sha256, as_text(at)),
        )
        rows = self._tables.run(
            "select count(*) from {soft_bounces} where subject = %s and bounced_at >= %s",
            (subject, as_text(since)),
        )
        return int(rows[0][0])

    def clear_soft_bounces(self, subject: str) -> None:
        """Forget a subject's soft bounces once they suppressed the address."""
        self._tables.run("delete from {soft_bounces} where subject = %s", (subject,))
