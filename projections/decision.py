"""May we send? The decision for one (person, purpose, channel) from the facts the ledger holds.

`decide` is pure: the same facts give the same answer whether they come from the projection
tables (`ProjectionReader.facts`) or from a replay of the log.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

EVERY_SCOPE = "*"
ERASED_SCOPE = "#erased"
"""The suppression row of an erasure: its own, so that it never overwrites an objection or an
unsubscribe from everything (neither a purpose slug nor a list can be spelled like this)."""


class Reason(StrEnum):
    """Why sending is denied; the order of the checks in `decide` is the order here."""

    UNKNOWN_PURPOSE = "unknown_purpose"
    ERASED = "erased"
    OBJECTED = "objected"
    RESTRICTED = "restricted"
    UNSUBSCRIBED = "unsubscribed"
    NEVER_GRANTED = "never_granted"
    WITHDRAWN = "withdrawn"
    DOUBLE_OPT_IN_PENDING = "double_opt_in_pending"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"


@dataclass(frozen=True, slots=True)
class PurposeFacts:
    legal_basis: str
    max_age_days: int | None
    direct_marketing: bool


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    version: str
    effective_at: datetime
    purposes: tuple[str, ...]
    requires_reconsent: bool


@dataclass(frozen=True, slots=True)
class ConsentFacts:
    status: str
    policy_version: str | None
    since: datetime
    last_position: int


@dataclass(frozen=True, slots=True)
class SuppressionFacts:
    scope: str
    reason: str
    last_position: int


@dataclass(frozen=True, slots=True)
class CatalogFacts:
    """What one check reads that does not depend on the person: the purpose and the policies."""

    purpose: PurposeFacts | None
    policies: tuple[PolicyFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the decision reads about one person and one purpose on one channel."""

    purpose: PurposeFacts | None
    consent: ConsentFacts | None = None
    suppressions: tuple[SuppressionFacts, ...] = ()
    restrictions: frozenset[str] = field(default_factory=frozenset)
    last_interaction: datetime | None = None
    policies: tuple[PolicyFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason | None = None


def decide(facts: Facts, *, purpose: str, channel: str, at: datetime) -> Decision:  # noqa: PLR0911, PLR0912
    """Allowed, or the first reason to deny (DESIGN.md section 9)."""
    if facts.purpose is None:
        return Decision(allowed=False, reason=Reason.UNKNOWN_PURPOSE)
    consent = facts.consent
    for suppression in facts.suppressions:
        # After an erasure only a newer explicit consent counts (a new key, a new start).
        if suppression.reason == "erased" and (
            consent is None or consent.last_position < suppression.last_position
        ):
            return Decision(allowed=False, reason=Reason.ERASED)
    for suppression in facts.suppressions:
        if suppression.reason == "objection" and (
            suppression.scope == purpose
            or (suppression.scope == EVERY_SCOPE and facts.purpose.direct_marketing)
        ):
            return Decision(allowed=False, reason=Reason.OBJECTED)
    if EVERY_SCOPE in facts.restrictions or purpose in facts.restrictions:
        return Decision(allowed=False, reason=Reason.RESTRICTED)
    for suppression in facts.suppressions:
        if suppression.reason != "unsubscribed" or channel != "email":
            continue
        if suppression.scope == purpose:
            return Decision(allowed=False, reason=Reason.UNSUBSCRIBED)
        newer_consent = consent is not None and consent.last_position > suppression.last_position
        if suppression.scope == EVERY_SCOPE and not newer_consent:
            return Decision(allowed=False, reason=Reason.UNSUBSCRIBED)
    if facts.purpose.legal_basis != "consent":
        return Decision(allowed=True)
    if consent is None:
        return Decision(allowed=False, reason=Reason.NEVER_GRANTED)
    if consent.status == "withdrawn":
        return Decision(allowed=False, reason=Reason.WITHDRAWN)
    if consent.status == "pending":
        return Decision(allowed=False, reason=Reason.DOUBLE_OPT_IN_PENDING)
    if facts.purpose.max_age_days is not None:
        active = max(consent.since, facts.last_interaction or consent.since)
        if at - active > timedelta(days=facts.purpose.max_age_days):
            return Decision(allowed=False, reason=Reason.EXPIRED)
    if consent.policy_version in reconsent_versions(facts.policies, purpose=purpose, at=at):
        return Decision(allowed=False, reason=Reason.RECONSENT_REQUIRED)
    return Decision(allowed=True)


def reconsent_versions(
    policies: Sequence[PolicyFacts], *, purpose: str, at: datetime
) -> frozenset[str]:
    """The policy versions a consent to ``purpose`` must be renewed from, as of ``at``.

    A consent given under one of them is outdated by a newer published version, in effect at
    ``at``, that requires re-consent for ``purpose``.
    """
    by_version = {p.version: p for p in policies}
    return frozenset(
        version
        for version, given in by_version.items()
        if any(
            p.requires_reconsent
            and p.effective_at > given.effective_at
            and p.effective_at <= at
            and (not p.purposes or purpose in p.purposes)
            for p in policies
        )
    )


_FACTS_TABLES = (
    "purposes",
    "policy_versions",
    "consent_state",
    "suppression",
    "restriction",
    "interaction",
)
_FACTS_QUERY = """
select p.legal_basis, p.max_age_days, p.direct_marketing,
    (select coalesce(json_agg(json_build_array(
        v.version, v.effective_at, v.purposes, v.requires_reconsent)), '[]')
     from {policy_versions} v),
    c.status, c.policy_version, c.since, c.last_position,
    (select array_agg(array[x.scope, x.reason, x.last_position::text])
     from {suppression} x where x.subject = %(subject)s and x.active),
    (select array_agg(r.scope) from {restriction} r where r.subject = %(subject)s and r.active),
    (select i.last_at from {interaction} i where i.subject = %(subject)s)
from (select 1) as one
left join {purposes} p on p.purpose = %(purpose)s
left join {consent_state} c
    on c.subject = %(subject)s and c.purpose = %(purpose)s and c.channel = %(channel)s
"""


def facts_query(schema: str) -> sql.Composed:
    """One check's facts in one round trip (parameters: subject, purpose, channel).

    A single check is answered at a high rate, and eight small queries cost more than the
    reading they do.
    """
    return sql.SQL(_FACTS_QUERY).format(
        **{name: sql.Identifier(schema, name) for name in _FACTS_TABLES}
    )


def facts_from_row(row: Sequence[Any] | None) -> Facts:
    """The `Facts` of a row of `facts_query`."""
    if row is None or row[0] is None:
        return Facts(purpose=None)
    (legal_basis, max_age, marketing, policies, status, version, since, position) = row[:8]
    suppressions, restrictions, last_at = row[8:]
    return Facts(
        purpose=PurposeFacts(legal_basis, max_age, marketing),
        consent=None if status is None else ConsentFacts(status, version, since, position),
        suppressions=tuple(
            SuppressionFacts(scope, reason, int(pos)) for scope, reason, pos in (suppressions or ())
        ),
        restrictions=frozenset(restrictions or ()),
        last_interaction=last_at,
        policies=tuple(
            PolicyFacts(v, datetime.fromisoformat(effective), tuple(purposes), reconsent)
            for v, effective, purposes, reconsent in policies
        ),
    )


class ProjectionReader:
    """Reads the facts of one check from the projection tables."""

    def __init__(self, conn: psycopg.Connection[Any], *, schema: str) -> None:
        self._conn = conn
        self._s = sql.Identifier(schema)
        # Composed once: rendering the query again on every check costs more than parsing it.
        self._facts_query = facts_query(schema).as_bytes(conn)

    def _t(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(self._s, sql.Identifier(table))

    def catalog(self, purpose: str) -> CatalogFacts:
        """The purpose (None if not registered) and every published policy version."""
        purpose_row = self._conn.execute(
            sql.SQL(
                "select legal_basis, max_age_days, direct_marketing from {} where purpose = %s"
            ).format(self._t("purposes")),
            (purpose,),
        ).fetchone()
        if purpose_row is None:
            return CatalogFacts(purpose=None)
        policies = self._conn.execute(
            sql.SQL("select version, effective_at, purposes, requires_reconsent from {}").format(
                self._t("policy_versions")
            )
        ).fetchall()
        return CatalogFacts(
            purpose=PurposeFacts(*purpose_row),
            policies=tuple(
                PolicyFacts(v, effective, tuple(purposes), reconsent)
                for v, effective, purposes, reconsent in policies
            ),
        )

    def facts(self, subject: str, purpose: str, channel: str) -> Facts:
        row = self._conn.execute(
            self._facts_query, {"subject": subject, "purpose": purpose, "channel": channel}
        ).fetchone()
        return facts_from_row(row)
