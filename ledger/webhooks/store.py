"""The registered endpoints, each with its place in the ledger, and the deliveries made to them.

An endpoint's ``cursor`` is the last ledger position it was sent (or that did not concern it):
delivery goes on from there, one event after the other, so each endpoint sees the ledger's
order, and a person's events in theirs. Redelivery from a position moves the cursor back.
"""

import base64
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ledger.sidecar import SideStore, as_text

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
ACTIVE, DISABLED = "active", "disabled"
DELIVERED, RETRYING, FAILED = "delivered", "retrying", "failed"

DDL = (
    """create table if not exists {webhooks} (
    webhook_id text primary key,
    url text not null,
    event_types text not null,
    purposes text not null,
    secret text not null,
    status text not null,
    disabled_reason text,
    created_at text not null,
    cursor_position bigint not null,
    failing_since text,
    attempts integer not null default 0,
    next_attempt_at text
)""",
    """create table if not exists {webhook_deliveries} (
    delivery_id text primary key,
    webhook_id text not null,
    position bigint not null,
    event_id text not null,
    event_type text not null,
    status text not null,
    attempts integer not null,
    response_status integer,
    error text,
    last_attempt_at text not null
)""",
    """create index if not exists webhook_deliveries_by_hook
    on {webhook_deliveries} (webhook_id, position)""",
)
_HOOK_COLUMNS = (
    "webhook_id, url, event_types, purposes, secret, status, disabled_reason, created_at,"
    " cursor_position, failing_since, attempts, next_attempt_at"
)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Endpoint:
    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    """Empty: every event about a person."""
    purposes: tuple[str, ...]
    """Empty: every purpose. Events without a purpose (a global unsubscribe) concern all."""
    secret: str
    status: str
    disabled_reason: str | None
    created_at: datetime
    cursor: int
    failing_since: datetime | None
    attempts: int
    next_attempt_at: datetime | None

    @classmethod
    def of(cls, row: Sequence[object]) -> "Endpoint":
        return cls(
            webhook_id=str(row[0]),
            url=str(row[1]),
            event_types=tuple(json.loads(str(row[2]))),
            purposes=tuple(json.loads(str(row[3]))),
            secret=str(row[4]),
            status=str(row[5]),
            disabled_reason=None if row[6] is None else str(row[6]),
            created_at=datetime.fromisoformat(str(row[7])),
            cursor=int(str(row[8])),
            failing_since=_time(None if row[9] is None else str(row[9])),
            attempts=int(str(row[10])),
            next_attempt_at=_time(None if row[11] is None else str(row[11])),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event sent (or tried) to one endpoint; ``delivery_id`` is its ``webhook-id``."""

    delivery_id: str
    webhook_id: str
    position: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    error: str | None
    last_attempt_at: str


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookStore(SideStore):
    """Endpoints and deliveries in this mode's database."""

    DDL = DDL

    def register(
        self,
        *,
        url: str,
        event_types: Sequence[str],
        purposes: Sequence[str],
        cursor: int,
        at: datetime,
    ) -> Endpoint:
        """A new active endpoint with a new secret, sent what is stored after ``cursor``."""
        webhook_id = f"wh_{uuid.uuid4().hex}"
        self._tables.run(
            f"insert into {{webhooks}} ({_HOOK_COLUMNS}) values"  # noqa: S608 - our column names
            " (%s, %s, %s, %s, %s, %s, null, %s, %s, null, 0, null)",
            (
                webhook_id,
                url,
                json.dumps(sorted(event_types)),
                json.dumps(sorted(purposes)),
                new_secret(),
                ACTIVE,
                as_text(at),
                cursor,
            ),
        )
        endpoint = self.get(webhook_id)
        if endpoint is None:
            raise LookupError(webhook_id)
        return endpoint

    def get(self, webhook_id: str) -> Endpoint | None:
        rows = self._tables.run(
            f"select {_HOOK_COLUMNS} from {{webhooks}} where webhook_id = %s",  # noqa: S608
            (webhook_id,),
        )
        return Endpoint.of(rows[0]) if rows else None

    def endpoints(self, *, active_only: bool = False) -> list[Endpoint]:
        rows = self._tables.run(
            f"select {_HOOK_COLUMNS} from {{webhooks}}"  # noqa: S608 - our column names
            " where status = %s or %s order by created_at, webhook_id",
            (ACTIVE, not active_only),
        )
        return [Endpoint.of(row) for row in rows]

    def disable(self, webhook_id: str, *, reason: str) -> bool:
        rows = self._tables.run(
            "update {webhooks} set status = %s, disabled_reason = %s where webhook_id = %s"
            " returning webhook_id",
            (DISABLED, reason, webhook_id),
        )
        return bool(rows)

    def delete(self, webhook_id: str) -> bool:
        self._tables.run("delete from {webhook_deliveries} where webhook_id = %s", (webhook_id,))
        rows = self._tables.run(
            "delete from {webhooks} where webhook_id = %s returning webhook_id", (webhook_id,)
        )
        return bool(rows)

    def rewind(self, webhook_id: str, *, after: int) -> bool:
        """Send again everything stored after ``after``; the endpoint is active again."""
        rows = self._tables.run(
            "update {webhooks} set cursor_position = %s, status = %s, disabled_reason = null,"
            " failing_since = null, attempts = 0, next_attempt_at = null"
            " where webhook_id = %s returning webhook_id",
            (after, ACTIVE, webhook_id),
        )
        return bool(rows)

    def progress(
        self,
        endpoint: Endpoint,
        *,
        cursor: int,
        deliveries: Sequence[Delivery],
        failing_since: datetime | None,
        attempts: int,
        next_attempt_at: datetime | None,
    ) -> None:
        """Where the endpoint now stands, and the deliveries made since (upserted by id)."""
        if deliveries:
            self._tables.run_many(
                "insert into {webhook_deliveries} (delivery_id, webhook_id, position, event_id,"
                " event_type, status, attempts, response_status, error, last_attempt_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (delivery_id) do"
                " update set status = excluded.status, attempts = excluded.attempts,"
                " response_status = excluded.response_status, error = excluded.error,"
                " last_attempt_at = excluded.last_attempt_at",
                [
                    (
                        d.delivery_id,
                        d.webhook_id,
                        d.position,
                        d.event_id,
                        d.event_type,
                        d.status,
                        d.attempts,
                        d.response_status,
                        d.error,
                        d.last_attempt_at,
                    )
                    for d in deliveries
                ],
            )
        self._tables.run(
            "update {webhooks} set cursor_position = %s, failing_since = %s, attempts = %s,"
            " next_attempt_at = %s where webhook_id = %s and cursor_position = %s",
            (
                cursor,
                None if failing_since is None else as_text(failing_since),
                attempts,
                None if next_attempt_at is None else as_text(next_attempt_at),
                endpoint.webhook_id,
                endpoint.cursor,
            ),
        )

    def deliveries(self, webhook_id: str, *, limit: int = 100) -> list[Delivery]:
        rows = self._tables.run(
            "select delivery_id, webhook_id, position, event_id, event_type, status, attempts,"
            " response_status, error, last_attempt_at from {webhook_deliveries}"
            " where webhook_id = %s order by position desc limit %s",
            (webhook_id, limit),
        )
        return [Delivery(*row) for row in rows]
