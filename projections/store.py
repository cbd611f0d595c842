"""The projection tables in PostgreSQL: migration, and applying events with last-position-wins."""

import json
from collections.abc import Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from projections.decision import EVERY_SCOPE
from schemas import (
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    DoubleOptIn,
    EventBase,
    InteractionRecorded,
    ObjectionRecorded,
    PolicyVersionAccepted,
    PolicyVersionPublished,
    ProcessingRestricted,
    PurposeRegistered,
    RestrictionLifted,
    RightsRequestClosed,
    RightsRequestExtended,
    RightsRequestOpened,
    SubjectErased,
    UnsubscribeClicked,
)

Statement = tuple[sql.Composed | str, tuple[Any, ...]]
_WITHDRAW_EMAIL = (
    "update {t} set status = 'withdrawn', reason = 'unsubscribed', since = %s, "
    "last_position = %s where subject = %s and channel = 'email' and last_position < %s"
)
_WITHDRAW_EMAIL_PURPOSE = (
    "update {t} set status = 'withdrawn', reason = 'unsubscribed', since = %s, "
    "last_position = %s where subject = %s and channel = 'email' and purpose = %s "
    "and last_position < %s"
)


def migrate(conn: psycopg.Connection[Any], *, schema: str) -> None:
    """Create the projection tables if missing (safe to run twice)."""
    for resource in sorted(files("projections").joinpath("sql").iterdir(), key=lambda r: r.name):
        if resource.name.endswith(".sql"):
            ddl = resource.read_text(encoding="utf-8")
            conn.execute(sql.SQL(ddl).format(schema=sql.Identifier(schema)))


class ProjectionWriter:
    """Turns events into upserts guarded by ``last_position``, so applying twice equals once.

    The same statements serve PostgreSQL (``schema`` given: psycopg composed SQL) and the
    embedded SQLite file (``schema=None``: plain text with ``?`` placeholders and values that
    SQLite stores as text).
    """

    def __init__(self, *, schema: str | None) -> None:
        self._s = None if schema is None else sql.Identifier(schema)
        # Composing SQL costs more than sending it: each distinct statement is built once.
        self._composed: dict[tuple[str, str], sql.Composed | str] = {}

    @property
    def sqlite(self) -> bool:
        return self._s is None

    def _q(self, template: str, *, t: str) -> sql.Composed | str:
        """The statement ``template`` on table ``t`` of our schema, composed once."""
        key = (template, t)
        composed = self._composed.get(key)
        if composed is None:
            if self._s is None:
                # Table names are ours; every value stays a bound parameter.
                composed = template.replace("{t}", t).replace("%s", "?")
            else:
                composed = sql.SQL(template).format(
                    t=sql.SQL("{}.{}").format(self._s, sql.Identifier(t))
                )
            self._composed[key] = composed
        return composed

    def _consent(
        self, event: EventBase, position: int, purpose: str, channel: str, status: str, **cols: Any
    ) -> Statement:
        return (
            self._q(
                "insert into {t} (subject, purpose, channel, status, reason, policy_version, "
                "since, last_position) values (%s, %s, %s, %s, %s, %s, %s, %s) "
                "on conflict (subject, purpose, channel) do update set "
                "status = excluded.status, reason = excluded.reason, "
                "policy_version = coalesce(excluded.policy_version, {t}.policy_version), "
                "since = excluded.since, last_position = excluded.last_position "
                "where {t}.last_position < excluded.last_position",
                t="consent_state",
            ),
            (
                event.subject,
                purpose,
                channel,
                status,
                cols.get("reason"),
                cols.get("policy_version"),
                event.occurred_at,
                position,
            ),
        )

    def _suppress(self, event: EventBase, position: int, scope: str, reason: str) -> Statement:
        return (
            self._q(
                "insert into {t} (subject, scope, reason, since, last_position, active) "
                "values (%s, %s, %s, %s, %s, true) on conflict (subject, scope) do update set "
                "reason = excluded.reason, since = excluded.since, "
                "last_position = excluded.last_position, active = true "
                "where {t}.last_position < excluded.last_position",
                t="suppression",
            ),
            (event.subject, scope, reason, event.occurred_at, position),
        )

    def _lift_suppression(self, event: EventBase, position: int, scope: str) -> Statement:
        # A newer explicit consent for a purpose ends an unsubscribe from that purpose only.
        return (
            self._q(
                "update {t} set active = false, last_position = %s "
                "where subject = %s and scope = %s and reason = 'unsubscribed' "
                "and last_position < %s",
                t="suppression",
            ),
            (position, event.subject, scope, position),
        )

    def _withdraw_email(self, event: EventBase, position: int, purpose: str | None) -> Statement:
        template = _WITHDRAW_EMAIL if purpose is None else _WITHDRAW_EMAIL_PURPOSE
        params: tuple[Any, ...] = (event.occurred_at, position, event.subject)
        return (
            self._q(template, t="consent_state"),
            (*params, *(() if purpose is None else (purpose,)), position),
        )

    def statements(self, event: EventBase, position: int) -> list[Statement]:
        """What applying ``event``, stored at ``position``, writes."""
        statements = self._statements(event, position)
        if not self.sqlite:
            return statements
        return [(query, tuple(map(_sqlite_value, params))) for query, params in statements]

    def _statements(self, event: EventBase, position: int) -> list[Statement]:  # noqa: PLR0911
        match event:
            case ConsentGranted():
                status = "pending" if event.double_opt_in is DoubleOptIn.PENDING else "granted"
                return [
                    self._consent(
                        event,
                        position,
                        event.purpose,
                        event.channel,
                        status,
                        policy_version=event.policy_version,
                    ),
                    self._lift_suppression(event, position, event.purpose),
                ]
            case ConsentConfirmed():
                return [self._consent(event, position, event.purpose, event.channel, "granted")]
            case ConsentWithdrawn():
                return [
                    self._consent(
                        event,
                        position,
                        event.purpose,
                        event.channel,
                        "withdrawn",
                        reason=event.reason.value,
                    )
                ]
            case UnsubscribeClicked():
                if event.list_id is not None and event.purpose is None:
                    return [
                        self._suppress(event, position, f"list:{event.list_id}", "unsubscribed")
                    ]
                scope = event.purpose or EVERY_SCOPE
                return [
                    self._suppress(event, position, scope, "unsubscribed"),
                    self._withdraw_email(event, position, event.purpose),
                ]
            case ObjectionRecorded():
                return [self._suppress(event, position, event.purpose or EVERY_SCOPE, "objection")]
            case SubjectErased():
                return [self._suppress(event, position, EVERY_SCOPE, "erased")]
            case PolicyVersionAccepted():
                return [
                    (
                        self._q(
                            "insert into {t} (subject, version, text_sha256, accepted_at, "
                            "last_position) values (%s, %s, %s, %s, %s) "
                            "on conflict (subject, version) do nothing",
                            t="policy_acceptance",
                        ),
                        (
                            event.subject,
                            event.version,
                            event.text_sha256,
                            event.occurred_at,
                            position,
                        ),
                    )
                ]
            case RightsRequestOpened() | RightsRequestExtended() | RightsRequestClosed():
                return [self._rights(event, position)]
            case _:
                return self._catalog_and_limits(event, position)

    def _catalog_and_limits(self, event: EventBase, position: int) -> list[Statement]:  # noqa: PLR0911
        match event:
            case PurposeRegistered():
                return [
                    (
                        self._q(
                            "insert into {t} (purpose, legal_basis, max_age_days, "
                            "direct_marketing, last_position) values (%s, %s, %s, %s, %s) "
                            "on conflict (purpose) do nothing",
                            t="purposes",
                        ),
                        (
                            event.purpose,
                            event.legal_basis.value,
                            event.max_age_days,
                            event.direct_marketing,
                            position,
                        ),
                    )
                ]
            case PolicyVersionPublished():
                return [
                    (
                        self._q(
                            "insert into {t} (version, text_sha256, effective_at, purposes, "
                            "requires_reconsent, last_position) values (%s, %s, %s, %s, %s, %s) "
                            "on conflict (version) do nothing",
                            t="policy_versions",
                        ),
                        (
                            event.version,
                            event.text_sha256,
                            event.effective_at,
                            list(event.purposes),
                            event.requires_reconsent,
                            position,
                        ),
                    )
                ]
            case ProcessingRestricted():
                return [
                    (
                        self._q(
                            "insert into {t} (subject, scope, since, last_position, active) "
                            "values (%s, %s, %s, %s, true) on conflict (subject, scope) do update "
                            "set since = excluded.since, last_position = excluded.last_position, "
                            "active = true where {t}.last_position < excluded.last_position",
                            t="restriction",
                        ),
                        (event.subject, scope, event.occurred_at, position),
                    )
                    for scope in (event.purposes or (EVERY_SCOPE,))
                ]
            case RestrictionLifted():
                if not event.purposes:
                    return [
                        (
                            self._q(
                                "update {t} set active = false, last_position = %s "
                                "where subject = %s and last_position < %s",
                                t="restriction",
                            ),
                            (position, event.subject, position),
                        )
                    ]
                return [
                    (
                        self._q(
                            "update {t} set active = false, last_position = %s "
                            "where subject = %s and scope = %s and last_position < %s",
                            t="restriction",
                        ),
                        (position, event.subject, scope, position),
                    )
                    for scope in event.purposes
                ]
            case InteractionRecorded():
                return [
                    (
                        self._q(
                            "insert into {t} (subject, last_at, last_position) values (%s, %s, %s) "
                            "on conflict (subject) do update set last_at = excluded.last_at, "
                            "last_position = excluded.last_position "
                            "where {t}.last_position < excluded.last_position",
                            t="interaction",
                        ),
                        (event.subject, event.occurred_at, position),
                    )
                ]
            case _:
                return []

    def _rights(
        self,
        event: RightsRequestOpened | RightsRequestExtended | RightsRequestClosed,
        position: int,
    ) -> Statement:
        table = "rights_requests"
        if isinstance(event, RightsRequestOpened):
            return (
                self._q(
                    "insert into {t} (request_id, subject, right_name, received_at, due_at, "
                    "last_position) values (%s, %s, %s, %s, %s, %s) "
                    "on conflict (request_id) do nothing",
                    t=table,
                ),
                (
                    event.request_id,
                    event.subject,
                    event.right.value,
                    event.received_at,
                    event.due_at,
                    position,
                ),
            )
        if isinstance(event, RightsRequestExtended):
            return (
                self._q(
                    "update {t} set due_at = %s, extended = true, last_position = %s "
                    "where request_id = %s and last_position < %s",
                    t=table,
                ),
                (event.due_at, position, event.request_id, position),
            )
        return (
            self._q(
                "update {t} set outcome = %s, last_position = %s "
                "where request_id = %s and last_position < %s",
                t=table,
            ),
            (event.outcome.value, position, event.request_id, position),
        )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list):
        return json.dumps(value)
    return value


def apply(
    conn: psycopg.Connection[Any], writer: ProjectionWriter, events: Sequence[tuple[EventBase, int]]
) -> None:
    """Apply events in the caller's transaction, pipelined: one round trip, not one per row."""
    with conn.pipeline(), conn.cursor() as cursor:
        for event, position in events:
            for statement, params in writer.statements(event, position):
                cursor.execute(statement, params)
