"""The projection tables in PostgreSQL: migration, and applying events with last-position-wins."""

import json
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ledger.domain.rules import ERASED_SCOPE, EVERY_PURPOSE
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

Statement = tuple[sql.Composed | str, dict[str, Any]]

MAX_ROUNDS = 8
"""Rounds of set-based statements per batch; writes past them go one by one (pipelined)."""

_STAGE_DDL = "stage.sql"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def migrate(conn: psycopg.Connection[Any], *, schema: str) -> None:
    """Create the projection tables if missing (safe to run twice, and at once).

    Holds the advisory lock every process of the ledger takes for its DDL (ledger/pgddl.py):
    ``create table if not exists`` fails when another process creates the same table.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('consent-ledger-ddl'))")
        for resource in sorted(
            files("projections").joinpath("sql").iterdir(), key=lambda r: r.name
        ):
            # Only the numbered files are migrations; the staging tables are per session.
            if resource.name.endswith(".sql") and resource.name[0].isdigit():
                ddl = resource.read_text(encoding="utf-8")
                conn.execute(sql.SQL(ddl).format(schema=sql.Identifier(schema)))


@dataclass(frozen=True, slots=True, eq=False)
class _Write:
    """One kind of write to one table: for one row, and for every staged row of one round.

    ``one`` binds ``%(column)s`` parameters; ``many`` reads the staging table ``{stage}``
    (the columns, in order, plus ``round``) and binds ``%(round)s``. Both keep the
    ``last_position`` guard, so they agree row for row.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    one: str
    many: str


_CONSENT = _Write(
    "consent_upsert",
    "consent_state",
    (
        "subject",
        "purpose",
        "channel",
        "status",
        "reason",
        "policy_version",
        "since",
        "last_position",
    ),
    ("text", "text", "text", "text", "text", "text", "timestamptz", "int8"),
    one="insert into {t} (subject, purpose, channel, status, reason, policy_version, since, "
    "last_position) values (%(subject)s, %(purpose)s, %(channel)s, %(status)s, "
    "%(reason)s, %(policy_version)s, %(since)s, %(last_position)s) on conflict (subject, "
    "purpose, channel) do update set status = excluded.status, reason = excluded.reason, "
    "policy_version = coalesce(excluded.policy_version, {t}.policy_version), since = "
    "excluded.since, last_position = excluded.last_position where {t}.last_position < "
    "excluded.last_position",
    many="insert into {t} (subject, purpose, channel, status, reason, policy_version, since, "
    "last_position) select subject, purpose, channel, status, reason, policy_version, "
    "since, last_position from {stage} where round = %(round)s on conflict (subject, "
    "purpose, channel) do update set status = excluded.status, reason = excluded.reason, "
    "policy_version = coalesce(excluded.policy_version, {t}.policy_version), since = "
    "excluded.since, last_position = excluded.last_position where {t}.last_position < "
    "excluded.last_position",
)
_WITHDRAW_EMAIL = _Write(
    "consent_withdraw_email",
    "consent_state",
    ("subject", "purpose", "since", "last_position"),
    ("text", "text", "timestamptz", "int8"),
    one="update {t} set status = 'withdrawn', reason = 'unsubscribed', since = %(since)s, "
    "last_position = %(last_position)s where subject = %(subject)s and channel = 'email' "
    "and (purpose = %(purpose)s or %(purpose)s is null) and last_position < "
    "%(last_position)s",
    many="update {t} set status = 'withdrawn', reason = 'unsubscribed', since = s.since, "
    "last_position = s.last_position from {stage} s where s.round = %(round)s and "
    "{t}.subject = s.subject and {t}.channel = 'email' and ({t}.purpose = s.purpose or "
    "s.purpose is null) and {t}.last_position < s.last_position",
)
_SUPPRESS = _Write(
    "suppression_upsert",
    "suppression",
    ("subject", "scope", "reason", "since", "last_position"),
    ("text", "text", "text", "timestamptz", "int8"),
    one="insert into {t} (subject, scope, reason, since, last_position) values (%(subject)s, "
    "%(scope)s, %(reason)s, %(since)s, %(last_position)s) on conflict (subject, scope) do "
    "update set reason = excluded.reason, since = excluded.since, last_position = "
    "excluded.last_position, active = true where {t}.last_position < "
    "excluded.last_position",
    many="insert into {t} (subject, scope, reason, since, last_position) select subject, "
    "scope, reason, since, last_position from {stage} where round = %(round)s on conflict "
    "(subject, scope) do update set reason = excluded.reason, since = excluded.since, "
    "last_position = excluded.last_position, active = true where {t}.last_position < "
    "excluded.last_position",
)
_LIFT_SUPPRESSION = _Write(
    "suppression_lift",
    "suppression",
    ("subject", "scope", "last_position"),
    ("text", "text", "int8"),
    one="update {t} set active = false, last_position = %(last_position)s where subject = "
    "%(subject)s and scope = %(scope)s and reason = 'unsubscribed' and last_position < "
    "%(last_position)s",
    many="update {t} set active = false, last_position = s.last_position from {stage} s where "
    "s.round = %(round)s and {t}.subject = s.subject and {t}.scope = s.scope and "
    "{t}.reason = 'unsubscribed' and {t}.last_position < s.last_position",
)
_ACCEPT = _Write(
    "policy_acceptance_insert",
    "policy_acceptance",
    ("subject", "version", "text_sha256", "accepted_at", "last_position"),
    ("text", "text", "text", "timestamptz", "int8"),
    one="insert into {t} (subject, version, text_sha256, accepted_at, last_position) values "
    "(%(subject)s, %(version)s, %(text_sha256)s, %(accepted_at)s, %(last_position)s) on "
    "conflict (subject, version) do nothing",
    many="insert into {t} (subject, version, text_sha256, accepted_at, last_position) select "
    "subject, version, text_sha256, accepted_at, last_position from {stage} where round = "
    "%(round)s on conflict (subject, version) do nothing",
)
_OPEN = _Write(
    "rights_open",
    "rights_requests",
    ("request_id", "subject", "right_name", "received_at", "due_at", "last_position"),
    ("uuid", "text", "text", "timestamptz", "timestamptz", "int8"),
    one="insert into {t} (request_id, subject, right_name, received_at, due_at, "
    "last_position) values (%(request_id)s, %(subject)s, %(right_name)s, %(received_at)s, "
    "%(due_at)s, %(last_position)s) on conflict (request_id) do nothing",
    many="insert into {t} (request_id, subject, right_name, received_at, due_at, "
    "last_position) select request_id, subject, right_name, received_at, due_at, "
    "last_position from {stage} where round = %(round)s on conflict (request_id) do "
    "nothing",
)
_EXTEND = _Write(
    "rights_extend",
    "rights_requests",
    ("request_id", "due_at", "last_position"),
    ("uuid", "timestamptz", "int8"),
    one="update {t} set due_at = %(due_at)s, extended = true, last_position = "
    "%(last_position)s where request_id = %(request_id)s and last_position < "
    "%(last_position)s",
    many="update {t} set due_at = s.due_at, extended = true, last_position = s.last_position "
    "from {stage} s where s.round = %(round)s and {t}.request_id = s.request_id and "
    "{t}.last_position < s.last_position",
)
_CLOSE = _Write(
    "rights_close",
    "rights_requests",
    ("request_id", "outcome", "last_position"),
    ("uuid", "text", "int8"),
    one="update {t} set outcome = %(outcome)s, last_position = %(last_position)s where "
    "request_id = %(request_id)s and last_position < %(last_position)s",
    many="update {t} set outcome = s.outcome, last_position = s.last_position from {stage} s "
    "where s.round = %(round)s and {t}.request_id = s.request_id and {t}.last_position < "
    "s.last_position",
)
_PURPOSE = _Write(
    "purposes_insert",
    "purposes",
    ("purpose", "legal_basis", "max_age_days", "direct_marketing", "last_position"),
    ("text", "text", "int4", "bool", "int8"),
    one="insert into {t} (purpose, legal_basis, max_age_days, direct_marketing, "
    "last_position) values (%(purpose)s, %(legal_basis)s, %(max_age_days)s, "
    "%(direct_marketing)s, %(last_position)s) on conflict (purpose) do nothing",
    many="insert into {t} (purpose, legal_basis, max_age_days, direct_marketing, "
    "last_position) select purpose, legal_basis, max_age_days, direct_marketing, "
    "last_position from {stage} where round = %(round)s on conflict (purpose) do nothing",
)
_POLICY = _Write(
    "policy_versions_insert",
    "policy_versions",
    ("version", "text_sha256", "effective_at", "purposes", "requires_reconsent", "last_position"),
    ("text", "text", "timestamptz", "text[]", "bool", "int8"),
    one="insert into {t} (version, text_sha256, effective_at, purposes, requires_reconsent, "
    "last_position) values (%(version)s, %(text_sha256)s, %(effective_at)s, %(purposes)s, "
    "%(requires_reconsent)s, %(last_position)s) on conflict (version) do nothing",
    many="insert into {t} (version, text_sha256, effective_at, purposes, requires_reconsent, "
    "last_position) select version, text_sha256, effective_at, purposes, "
    "requires_reconsent, last_position from {stage} where round = %(round)s on conflict "
    "(version) do nothing",
)
_RESTRICT = _Write(
    "restriction_upsert",
    "restriction",
    ("subject", "scope", "since", "last_position"),
    ("text", "text", "timestamptz", "int8"),
    one="insert into {t} (subject, scope, since, last_position) values (%(subject)s, "
    "%(scope)s, %(since)s, %(last_position)s) on conflict (subject, scope) do update set "
    "since = excluded.since, last_position = excluded.last_position, active = true where "
    "{t}.last_position < excluded.last_position",
    many="insert into {t} (subject, scope, since, last_position) select subject, scope, since, "
    "last_position from {stage} where round = %(round)s on conflict (subject, scope) do "
    "update set since = excluded.since, last_position = excluded.last_position, active = "
    "true where {t}.last_position < excluded.last_position",
)
_LIFT_RESTRICTION = _Write(
    "restriction_lift",
    "restriction",
    ("subject", "scope", "last_position"),
    ("text", "text", "int8"),
    one="update {t} set active = false, last_position = %(last_position)s where subject = "
    "%(subject)s and (scope = %(scope)s or %(scope)s is null) and last_position < "
    "%(last_position)s",
    many="update {t} set active = false, last_position = s.last_position from {stage} s where "
    "s.round = %(round)s and {t}.subject = s.subject and ({t}.scope = s.scope or s.scope "
    "is null) and {t}.last_position < s.last_position",
)
_INTERACTION = _Write(
    "interaction_upsert",
    "interaction",
    ("subject", "last_at", "last_position"),
    ("text", "timestamptz", "int8"),
    one="insert into {t} (subject, last_at, last_position) values (%(subject)s, %(last_at)s, "
    "%(last_position)s) on conflict (subject) do update set last_at = excluded.last_at, "
    "last_position = excluded.last_position where {t}.last_position < "
    "excluded.last_position",
    many="insert into {t} (subject, last_at, last_position) select subject, last_at, "
    "last_position from {stage} where round = %(round)s on conflict (subject) do update "
    "set last_at = excluded.last_at, last_position = excluded.last_position where "
    "{t}.last_position < excluded.last_position",
)
_WRITES = (
    _CONSENT,
    _WITHDRAW_EMAIL,
    _SUPPRESS,
    _LIFT_SUPPRESSION,
    _ACCEPT,
    _OPEN,
    _EXTEND,
    _CLOSE,
    _PURPOSE,
    _POLICY,
    _RESTRICT,
    _LIFT_RESTRICTION,
    _INTERACTION,
)

_WHOLE = None
"""The key of a write that touches every row of its group (every email consent, say)."""

_GROUPED_TABLES = frozenset({_WITHDRAW_EMAIL.table, _LIFT_RESTRICTION.table})
"""The tables that take writes to a whole group."""

_COPY = "copy {stage} from stdin (format binary)"


_Op = tuple[_Write, tuple[Any, ...], Hashable, Hashable]
"""One write of one event: its kind, its values (in the kind's column order), and the rows it
touches: the row ``key`` of a group (a person, a request, a catalog entry), or, with key
`_WHOLE`, every row of the group in the kind's table. A plain tuple: there are a few per event.
"""


def _ops(event: EventBase, position: int) -> list[_Op]:  # noqa: PLR0911
    """What applying ``event``, stored at ``position``, writes."""
    subject, at = event.subject, event.occurred_at
    match event:
        case ConsentGranted():
            status = "pending" if event.double_opt_in is DoubleOptIn.PENDING else "granted"
            return [
                _consent(event, position, status, None, event.policy_version),
                # A newer explicit consent for a purpose ends an unsubscribe from that purpose.
                (
                    _LIFT_SUPPRESSION,
                    (subject, event.purpose, position),
                    subject,
                    event.purpose,
                ),
            ]
        case ConsentConfirmed():
            return [_consent(event, position, "granted", None, None)]
        case ConsentWithdrawn():
            return [_consent(event, position, "withdrawn", event.reason.value, None)]
        case UnsubscribeClicked():
            if event.list_id is not None and event.purpose is None:
                return [_suppress(event, position, f"list:{event.list_id}", "unsubscribed")]
            return [
                _suppress(event, position, event.purpose or EVERY_PURPOSE, "unsubscribed"),
                (
                    _WITHDRAW_EMAIL,
                    (subject, event.purpose, at, position),
                    subject,
                    _WHOLE if event.purpose is None else (event.purpose, "email"),
                ),
            ]
        case ObjectionRecorded():
            return [_suppress(event, position, event.purpose or EVERY_PURPOSE, "objection")]
        case SubjectErased():
            return [_suppress(event, position, ERASED_SCOPE, "erased")]
        case PolicyVersionAccepted():
            row: tuple[Any, ...] = (subject, event.version, event.text_sha256, at, position)
            return [(_ACCEPT, row, subject, event.version)]
        case RightsRequestOpened():
            row = (
                event.request_id,
                subject,
                event.right.value,
                event.received_at,
                event.due_at,
                position,
            )
            return [(_OPEN, row, event.request_id, ())]
        case RightsRequestExtended():
            return [(_EXTEND, (event.request_id, event.due_at, position), event.request_id, ())]
        case RightsRequestClosed():
            row = (event.request_id, event.outcome.value, position)
            return [(_CLOSE, row, event.request_id, ())]
        case _:
            return _catalog_and_limits(event, position)


def _catalog_and_limits(event: EventBase, position: int) -> list[_Op]:  # noqa: PLR0911
    subject, at = event.subject, event.occurred_at
    match event:
        case PurposeRegistered():
            row: tuple[Any, ...] = (
                event.purpose,
                event.legal_basis.value,
                event.max_age_days,
                event.direct_marketing,
                position,
            )
            return [(_PURPOSE, row, event.purpose, ())]
        case PolicyVersionPublished():
            row = (
                event.version,
                event.text_sha256,
                event.effective_at,
                list(event.purposes),
                event.requires_reconsent,
                position,
            )
            return [(_POLICY, row, event.version, ())]
        case ProcessingRestricted():
            return [
                (_RESTRICT, (subject, scope, at, position), subject, scope)
                for scope in (event.purposes or (EVERY_PURPOSE,))
            ]
        case RestrictionLifted():
            if not event.purposes:
                return [(_LIFT_RESTRICTION, (subject, None, position), subject, _WHOLE)]
            return [
                (_LIFT_RESTRICTION, (subject, scope, position), subject, scope)
                for scope in event.purposes
            ]
        case InteractionRecorded():
            return [(_INTERACTION, (subject, at, position), subject, ())]
        case _:
            return []


def _consent(
    event: ConsentGranted | ConsentConfirmed | ConsentWithdrawn,
    position: int,
    status: str,
    reason: str | None,
    policy_version: str | None,
) -> _Op:
    row = (
        event.subject,
        event.purpose,
        event.channel,
        status,
        reason,
        policy_version,
        event.occurred_at,
        position,
    )
    return (_CONSENT, row, event.subject, (event.purpose, event.channel))


def _suppress(event: EventBase, position: int, scope: str, reason: str) -> _Op:
    row = (event.subject, scope, reason, event.occurred_at, position)
    return (_SUPPRESS, row, event.subject, scope)


@dataclass(slots=True)
class _Schedule:
    """A batch's writes by round: the rows staged per kind (round first), the last round of
    each kind, and the writes past the last round, in list order."""

    staged: dict[_Write, list[tuple[Any, ...]]]
    rounds: dict[_Write, int]
    rest: list[_Op]


def _schedule(ops: Iterable[_Op], max_rounds: int) -> _Schedule:
    """Number each write one more than the latest earlier write touching a row it touches.

    Writes of one round touch distinct rows, so they commute and one statement may apply them
    all; running the rounds in order keeps the order of every two writes that share a row,
    which is all the order that matters: the tables end up as if each write ran alone, in list
    order. Writes past ``max_rounds`` come after every round, still in list order.
    """
    ops = list(ops)
    # Writes to a whole group are rare; without them, only writes to the same row are ordered.
    any_whole = any(key is _WHOLE for _, _, _, key in ops)
    by_row: dict[tuple[str, Hashable, Hashable], int] = {}
    by_group: dict[tuple[str, Hashable], int] = {}
    whole: dict[tuple[str, Hashable], int] = {}
    staged: dict[_Write, list[tuple[Any, ...]]] = {write: [] for write in _WRITES}
    last: dict[_Write, int] = {}
    rest = []
    for op in ops:
        write, row, group, key = op
        at = (write.table, group, key)
        if any_whole and write.table in _GROUPED_TABLES:
            in_group = (write.table, group)
            if key is _WHOLE:
                number = by_group.get(in_group, 0) + 1
                whole[in_group] = number
            else:
                number = max(by_row.get(at, 0), whole.get(in_group, 0)) + 1
                by_row[at] = number
            by_group[in_group] = max(by_group.get(in_group, 0), number)
        else:
            number = by_row.get(at, 0) + 1
            by_row[at] = number
        if number > max_rounds:
            rest.append(op)
            continue
        staged[write].append((number, *row))
        if number > last.get(write, 1):
            last[write] = number
    return _Schedule(
        {write: rows for write, rows in staged.items() if rows},
        {write: last.get(write, 1) for write, rows in staged.items() if rows},
        rest,
    )


class ProjectionWriter:
    """Turns events into upserts guarded by ``last_position``, so applying twice equals once.

    The same writes serve PostgreSQL (``schema`` given: psycopg composed SQL, set-based per
    batch) and the embedded SQLite file (``schema=None``: one statement per write, plain text
    with named placeholders and values that SQLite stores as text).
    """

    def __init__(self, *, schema: str | None, max_rounds: int = MAX_ROUNDS) -> None:
        self._s = None if schema is None else sql.Identifier(schema)
        self._max_rounds = max_rounds
        # Composing SQL costs more than sending it: each distinct statement is built once.
        self._composed: dict[tuple[str, str], sql.Composed | str] = {}

    @property
    def sqlite(self) -> bool:
        return self._s is None

    def _q(self, template: str, write: _Write) -> sql.Composed | str:
        """``template`` on the table (and staging table) of ``write``, composed once."""
        key = (template, write.name)
        composed = self._composed.get(key)
        if composed is None:
            if self._s is None:
                # Table names are ours; every value stays a bound parameter.
                composed = _PLACEHOLDER.sub(r":\1", template.replace("{t}", write.table))
            else:
                composed = sql.SQL(template).format(
                    t=sql.SQL("{}.{}").format(self._s, sql.Identifier(write.table)),
                    stage=_stage(write),
                )
            self._composed[key] = composed
        return composed

    def _one(self, op: _Op) -> Statement:
        write, row, _, _ = op
        params = dict(zip(write.columns, row, strict=True))
        if self.sqlite:
            params = {name: _sqlite_value(value) for name, value in params.items()}
        return self._q(write.one, write), params

    def statements(self, event: EventBase, position: int) -> list[Statement]:
        """What applying ``event``, stored at ``position``, writes: one statement per write."""
        return [self._one(op) for op in _ops(event, position)]

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[tuple[EventBase, int]]) -> None:
        """Apply ``events`` in the caller's transaction, as if one by one in list order.

        The writes are copied into staging tables and applied by round (see `_schedule`), one
        set-based statement per kind of write and round; the few writes past the last round
        (one person with many events in the batch) follow one by one, pipelined.
        """
        schedule = _schedule(
            (op for event, position in events for op in _ops(event, position)), self._max_rounds
        )
        if not schedule.staged:
            return
        with conn.cursor() as cursor:
            cursor.execute(_stage_ddl())
            for write, rows in schedule.staged.items():
                with cursor.copy(self._q(_COPY, write)) as copy:
                    copy.set_types(["int4", *write.types])
                    for row in rows:
                        copy.write_row(row)
            for number in range(1, max(schedule.rounds.values()) + 1):
                for write in _WRITES:
                    if schedule.rounds.get(write, 0) >= number:
                        cursor.execute(self._q(write.many, write), {"round": number})
            if schedule.rest:
                with conn.pipeline():
                    for op in schedule.rest:
                        cursor.execute(*self._one(op))
            # Another batch may follow in the same transaction.
            cursor.execute(
                sql.SQL("truncate {}").format(sql.SQL(", ").join(map(_stage, schedule.staged)))
            )


def _stage(write: _Write) -> sql.Composable:
    return sql.Identifier("pg_temp", f"projection_stage_{write.name}")


@cache
def _stage_ddl() -> str:
    return files("projections").joinpath("sql", _STAGE_DDL).read_text(encoding="utf-8")


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
    """Apply events in the caller's transaction (see `ProjectionWriter.apply`)."""
    writer.apply(conn, events)
