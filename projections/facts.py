"""The facts of one check read from the projection tables, for the rule book to decide.

`ledger.domain.rules.decide` is pure: the same facts give the same answer whether they come
from here or from a replay of the log (`ledger.domain.rules.facts_from_log`).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ledger.domain.rules import (
    CatalogFacts,
    ConsentFacts,
    ConsentStatus,
    Facts,
    PolicyFacts,
    PurposeFacts,
    SuppressionFacts,
    SuppressionReason,
)

FACTS_TABLES = (
    "purposes",
    "policy_versions",
    "consent_state",
    "suppression",
    "restriction",
    "interaction",
)
"""The projection tables a check reads its facts from."""
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
        **{name: sql.Identifier(schema, name) for name in FACTS_TABLES}
    )


def facts_from_row(row: Sequence[Any] | None) -> Facts:
    """The `Facts` of a row of `facts_query`."""
    if row is None or row[0] is None:
        return Facts(purpose=None)
    (legal_basis, max_age, marketing, policies, status, version, since, position) = row[:8]
    suppressions, restrictions, last_at = row[8:]
    return Facts(
        purpose=PurposeFacts(legal_basis, max_age, marketing),
        consent=None
        if status is None
        else ConsentFacts(ConsentStatus(status), version, since, position),
        suppressions=tuple(
            SuppressionFacts(scope, SuppressionReason(reason), int(pos))
            for scope, reason, pos in (suppressions or ())
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
