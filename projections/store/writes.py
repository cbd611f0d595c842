"""What applying an event writes: one statement per kind of write, shared by both adapters.

Shared by the projection store adapters (`projections.store.postgres`, `projections.store.sqlite`):
each kind of write is one SQL statement over ``{rows}``, a relation ``s`` of the kind's columns
that the adapter supplies (one bound row, or every staged row of one round), so one event and a
whole batch go through the same statement and keep the same ``last_position`` guard.
"""

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ledger.domain import deliverability
from ledger.domain.rules import EMAIL, ERASED_SCOPE, EVERY_PURPOSE
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


@dataclass(frozen=True, slots=True, eq=False)
class Write:
    """One kind of write to one table, as one statement.

    ``statement`` names the target table ``{t}``, the rows to write ``{rows}`` (a relation
    aliased ``s`` with ``columns``, in order) and, for inserts, the column list ``{cols}``.
    ``types`` are the PostgreSQL types of the columns.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    statement: str


_INSERT = "insert into {t} ({cols}) select {cols} from {rows} where true on conflict "
"""An insert of ``{rows}``; ``where true`` lets SQLite tell ``on conflict`` from a join."""
_GUARD = " where {t}.last_position < excluded.last_position"


def _insert(conflict: str) -> str:
    return "".join((_INSERT, conflict))


CONSENT = Write(
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
    _insert(
        "(subject, purpose, channel) do update set status = excluded.status, reason = "
        "excluded.reason, policy_version = coalesce(excluded.policy_version, "
        "{t}.policy_version), since = excluded.since, last_position = excluded.last_position"
        + _GUARD
    ),
)
WITHDRAW_CONSENTS = Write(
    "consent_withdraw",
    "consent_state",
    ("subject", "purpose", "channel", "reason", "since", "last_position"),
    ("text", "text", "text", "text", "timestamptz", "int8"),
    "update {t} set status = 'withdrawn', reason = s.reason, since = s.since, "
    "last_position = s.last_position from {rows} where {t}.subject = s.subject and "
    "({t}.channel = s.channel or s.channel is null) and "
    "({t}.purpose = s.purpose or s.purpose is null) and {t}.last_position < s.last_position",
)
"""Every consent on file of a person that an unsubscribe (email, one purpose or all) or an
erasure (every channel and purpose) ends; a null purpose or channel means every one."""
SUPPRESS = Write(
    "suppression_upsert",
    "suppression",
    ("subject", "scope", "reason", "since", "last_position"),
    ("text", "text", "text", "timestamptz", "int8"),
    _insert(
        "(subject, scope, reason) do update set since = excluded.since, "
        "last_position = excluded.last_position, active = true" + _GUARD
    ),
)
LIFT_SUPPRESSION = Write(
    "suppression_lift",
    "suppression",
    ("subject", "scope", "last_position"),
    ("text", "text", "int8"),
    "update {t} set active = false, last_position = s.last_position from {rows} where "
    "{t}.subject = s.subject and {t}.scope = s.scope and {t}.reason = 'unsubscribed'"
    " and {t}.last_position < s.last_position",
)
LIFT_UNDELIVERABLE = Write(
    "undeliverable_lift",
    "suppression",
    ("subject", "last_position"),
    ("text", "int8"),
    "update {t} set active = false, last_position = s.last_position from {rows} where "
    "{t}.subject = s.subject and {t}.reason = 'undeliverable'"
    " and {t}.last_position < s.last_position",
)
"""A confirmed consent by email: the address receives mail (`ledger.domain.deliverability`)."""
ACCEPT = Write(
    "policy_acceptance_insert",
    "policy_acceptance",
    ("subject", "version", "text_sha256", "accepted_at", "last_position"),
    ("text", "text", "text", "timestamptz", "int8"),
    _insert("(subject, version) do nothing"),
)
OPEN = Write(
    "rights_open",
    "rights_requests",
    ("request_id", "subject", "right_name", "received_at", "due_at", "last_position"),
    ("uuid", "text", "text", "timestamptz", "timestamptz", "int8"),
    _insert("(request_id) do nothing"),
)
EXTEND = Write(
    "rights_extend",
    "rights_requests",
    ("request_id", "due_at", "last_position"),
    ("uuid", "timestamptz", "int8"),
    "update {t} set due_at = s.due_at, extended = true, last_position = s.last_position "
    "from {rows} where {t}.request_id = s.request_id"
    " and {t}.last_position < s.last_position",
)
CLOSE = Write(
    "rights_close",
    "rights_requests",
    ("request_id", "outcome", "last_position"),
    ("uuid", "text", "int8"),
    "update {t} set outcome = s.outcome, last_position = s.last_position from {rows} "
    "where {t}.request_id = s.request_id"
    " and {t}.last_position < s.last_position",
)
PURPOSE = Write(
    "purposes_insert",
    "purposes",
    ("purpose", "legal_basis", "max_age_days", "direct_marketing", "last_position"),
    ("text", "text", "int4", "bool", "int8"),
    _insert("(purpose) do nothing"),
)
POLICY = Write(
    "policy_versions_insert",
    "policy_versions",
    ("version", "text_sha256", "effective_at", "purposes", "requires_reconsent", "last_position"),
    ("text", "text", "timestamptz", "text[]", "bool", "int8"),
    _insert("(version) do nothing"),
)
RESTRICT = Write(
    "restriction_upsert",
    "restriction",
    ("subject", "scope", "since", "last_position"),
    ("text", "text", "timestamptz", "int8"),
    _insert(
        "(subject, scope) do update set since = excluded.since, last_position = "
        "excluded.last_position, active = true" + _GUARD
    ),
)
LIFT_RESTRICTION = Write(
    "restriction_lift",
    "restriction",
    ("subject", "scope", "last_position"),
    ("text", "text", "int8"),
    "update {t} set active = false, last_position = s.last_position from {rows} where "
    "{t}.subject = s.subject and ({t}.scope = s.scope or s.scope is null)"
    " and {t}.last_position < s.last_position",
)
INTERACTION = Write(
    "interaction_upsert",
    "interaction",
    ("subject", "last_at", "last_position"),
    ("text", "timestamptz", "int8"),
    _insert(
        "(subject) do update set last_at = excluded.last_at, last_position = "
        "excluded.last_position" + _GUARD
    ),
)
WRITES = (
    CONSENT,
    WITHDRAW_CONSENTS,
    SUPPRESS,
    LIFT_SUPPRESSION,
    LIFT_UNDELIVERABLE,
    ACCEPT,
    OPEN,
    EXTEND,
    CLOSE,
    PURPOSE,
    POLICY,
    RESTRICT,
    LIFT_RESTRICTION,
    INTERACTION,
)

WHOLE = None
"""The key of a write that touches every row of its group (every email consent, say)."""

GROUPED_TABLES = frozenset({WITHDRAW_CONSENTS.table, LIFT_RESTRICTION.table})
"""The tables that take writes to a whole group."""

Op = tuple[Write, tuple[Any, ...], Hashable, Hashable]
"""One write of one event: its kind, its values (in the kind's column order), and the rows it
touches: the row ``key`` of a group (a person, a request, a catalog entry), or, with key
`WHOLE`, every row of the group in the kind's table. A plain tuple: there are a few per event.
"""


def writes_of(event: EventBase, position: int) -> list[Op]:  # noqa: PLR0911
    """What applying ``event``, stored at ``position``, writes."""
    subject, at = event.subject, event.occurred_at
    match event:
        case ConsentGranted():
            status = "pending" if event.double_opt_in is DoubleOptIn.PENDING else "granted"
            return [
                *_address_confirmed(event, position),
                _consent(event, position, status, None, event.policy_version),
                # A newer explicit consent for a purpose ends an unsubscribe from that purpose.
                (
                    LIFT_SUPPRESSION,
                    (subject, event.purpose, position),
                    subject,
                    event.purpose,
                ),
            ]
        case ConsentConfirmed():
            return [
                _consent(event, position, "granted", None, None),
                *_address_confirmed(event, position),
            ]
        case ConsentWithdrawn():
            return [_consent(event, position, "withdrawn", event.reason.value, None)]
        case UnsubscribeClicked():
            if event.list_id is not None and event.purpose is None:
                return [_suppress(event, position, f"list:{event.list_id}", "unsubscribed")]
            return [
                _suppress(event, position, event.purpose or EVERY_PURPOSE, "unsubscribed"),
                (
                    WITHDRAW_CONSENTS,
                    (subject, event.purpose, EMAIL, "unsubscribed", at, position),
                    subject,
                    WHOLE if event.purpose is None else (event.purpose, "email"),
                ),
            ]
        case ObjectionRecorded():
            return [_suppress(event, position, event.purpose or EVERY_PURPOSE, "objection")]
        case SubjectErased():
            # The person's consents end with their data: none counts as given any more.
            return [
                (WITHDRAW_CONSENTS, (subject, None, None, "erased", at, position), subject, WHOLE),
                _suppress(event, position, ERASED_SCOPE, "erased"),
            ]
        case PolicyVersionAccepted():
            row: tuple[Any, ...] = (subject, event.version, event.text_sha256, at, position)
            return [(ACCEPT, row, subject, event.version)]
        case RightsRequestOpened():
            row = (
                event.request_id,
                subject,
                event.right.value,
                event.received_at,
                event.due_at,
                position,
            )
            return [(OPEN, row, event.request_id, ())]
        case RightsRequestExtended():
            return [(EXTEND, (event.request_id, event.due_at, position), event.request_id, ())]
        case RightsRequestClosed():
            row = (event.request_id, event.outcome.value, position)
            return [(CLOSE, row, event.request_id, ())]
        case _:
            return _catalog_and_limits(event, position)


def _catalog_and_limits(event: EventBase, position: int) -> list[Op]:  # noqa: PLR0911
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
            return [(PURPOSE, row, event.purpose, ())]
        case PolicyVersionPublished():
            row = (
                event.version,
                event.text_sha256,
                event.effective_at,
                list(event.purposes),
                event.requires_reconsent,
                position,
            )
            return [(POLICY, row, event.version, ())]
        case ProcessingRestricted():
            return [
                (RESTRICT, (subject, scope, at, position), subject, scope)
                for scope in (event.purposes or (EVERY_PURPOSE,))
            ]
        case RestrictionLifted():
            if not event.purposes:
                return [(LIFT_RESTRICTION, (subject, None, position), subject, WHOLE)]
            return [
                (LIFT_RESTRICTION, (subject, scope, position), subject, scope)
                for scope in event.purposes
            ]
        case InteractionRecorded():
            return [(INTERACTION, (subject, at, position), subject, ())]
        case _:
            heard = deliverability.heard_back(event)
            if heard is None or heard.scope is None:
                return []
            return [_suppress(event, position, heard.scope, heard.reason)]


def _address_confirmed(event: EventBase, position: int) -> list[Op]:
    if not deliverability.confirms_address(event):
        return []
    scope = deliverability.UNDELIVERABLE_SCOPE
    return [(LIFT_UNDELIVERABLE, (event.subject, position), event.subject, scope)]


def _consent(
    event: ConsentGranted | ConsentConfirmed | ConsentWithdrawn,
    position: int,
    status: str,
    reason: str | None,
    policy_version: str | None,
) -> Op:
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
    return (CONSENT, row, event.subject, (event.purpose, event.channel))


def _suppress(event: EventBase, position: int, scope: str, reason: str) -> Op:
    row = (event.subject, scope, reason, event.occurred_at, position)
    return (SUPPRESS, row, event.subject, scope)
