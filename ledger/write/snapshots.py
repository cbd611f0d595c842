"""Compact in-memory snapshots of aggregates, for the writer's cache.

A snapshot is bytes, which the cyclic garbage collector does not track: a cache of live
objects made its full collections grow with the cache and stall every caller. Persons, the
many, go through `marshal` as plain tuples; the one catalog is pickled.
"""

import marshal
import pickle
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.aggregates import Catalog, LedgerAggregate, Person, RightsRequestRecord
from ledger.domain.rules import (
    ConsentFacts,
    ConsentStatus,
    PersonState,
    SuppressionFacts,
    SuppressionReason,
)

_PERSON = b"P"
_CATALOG = b"C"


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def dump_aggregate(aggregate: LedgerAggregate) -> bytes:
    """The aggregate's state as bytes; it must have no pending events."""
    if aggregate.pending:
        msg = "only stored state is snapshotted"
        raise ValueError(msg)
    if isinstance(aggregate, Catalog):
        return _CATALOG + pickle.dumps(aggregate, pickle.HIGHEST_PROTOCOL)
    if not isinstance(aggregate, Person):
        msg = f"cannot snapshot {type(aggregate).__name__}"
        raise TypeError(msg)
    consent = aggregate.state
    state: tuple[Any, ...] = (
        aggregate.subject,
        aggregate.version,
        {
            str(cid): tuple((e.bytes, v) for e, v in events)
            for cid, events in aggregate.commands.items()
        },
        # marshal takes only exact built-in types: enum members (str subclasses) become str.
        {
            (str(purpose), str(channel)): (
                record.status.value,
                None if record.policy_version is None else str(record.policy_version),
                record.since.isoformat(),
                record.last_position,
            )
            for (purpose, channel), record in consent.consents.items()
        },
        tuple(
            (str(s.scope), s.reason.value, s.last_position) for s in consent.suppressions.values()
        ),
        tuple(map(str, consent.restrictions)),
        {str(k): str(v) for k, v in aggregate.accepted_policies.items()},
        {
            request_id.bytes: (
                str(r.right),
                r.due_at.isoformat(),
                r.extended,
                None if r.outcome is None else str(r.outcome),
            )
            for request_id, r in aggregate.rights_requests.items()
        },
        consent.erasures,
        _when(consent.last_interaction),
    )
    return _PERSON + marshal.dumps(state)


def load_aggregate(snapshot: bytes) -> LedgerAggregate:
    """The aggregate `dump_aggregate` was given, as a new object."""
    kind, body = snapshot[:1], snapshot[1:]
    if kind == _CATALOG:
        catalog: Catalog = pickle.loads(body)  # noqa: S301 - bytes this process made
        return catalog
    (
        subject,
        version,
        commands,
        consents,
        suppressions,
        restrictions,
        accepted,
        requests,
        erasures,
        last_interaction,
    ) = marshal.loads(body)  # noqa: S302 - bytes this process made
    person = Person(subject=subject, version=version)
    person.commands = {
        cid: tuple((UUID(bytes=e), v) for e, v in events) for cid, events in commands.items()
    }
    person.state = PersonState(
        consents={
            key: ConsentFacts(
                ConsentStatus(status), policy, datetime.fromisoformat(since), position
            )
            for key, (status, policy, since, position) in consents.items()
        },
        suppressions={
            (scope, SuppressionReason(reason)): SuppressionFacts(
                scope, SuppressionReason(reason), position
            )
            for scope, reason, position in suppressions
        },
        restrictions=set(restrictions),
        last_interaction=_from_when(last_interaction),
        erasures=erasures,
    )
    person.accepted_policies = accepted
    person.rights_requests = {
        UUID(bytes=request_id): RightsRequestRecord(
            right, datetime.fromisoformat(due), extended, outcome
        )
        for request_id, (right, due, extended, outcome) in requests.items()
    }
    return person
