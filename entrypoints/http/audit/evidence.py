"""The evidence of one event, as rows of a definition list: what was shown, where, by whom."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entrypoints.http.audit.words import METHODS, SOURCES, Words
from entrypoints.http.pages.i18n import N_
from ledger.rights.receipts import Logged
from schemas import (
    ConsentConfirmed,
    ConsentGranted,
    ErasedPersonalData,
    EventBase,
    PersonalData,
    PolicyVersionPublished,
)

__all__ = ["Known", "Row", "evidence_rows", "policy_href"]

Row = tuple[str, str, str | None]
"""A label, its value, and where the value links to (the policy text), if anywhere."""

_PERSONAL = (
    ("address", N_("Email address")),
    ("ip", N_("IP address")),
    ("user_agent", N_("Browser (user agent)")),
    ("page_url", N_("Page of the form")),
    ("note", N_("Note")),
)


def policy_href(version: str) -> str:
    return f"/audit/policies/{version}"


def _policy_rows(
    version: str | None, policies: Mapping[str, PolicyVersionPublished], w: Words
) -> list[Row]:
    if version is None:
        return []
    rows: list[Row] = [(w.say(N_("Policy version")), version, policy_href(version))]
    policy = policies.get(version)
    if policy is not None:
        rows.append((w.say(N_("Policy text (SHA-256)")), policy.text_sha256, None))
    return rows


def _double_opt_in(event: EventBase, mine: list[Logged], w: Words) -> list[Row]:
    """Both steps of a double opt-in, with their times, on the grant and on the confirmation."""
    if isinstance(event, ConsentGranted) and event.double_opt_in.value == "not_applicable":
        return []
    if isinstance(event, ConsentGranted):
        step = (w.say(N_("Double opt-in asked")), w.moment(event.occurred_at), None)
        confirmed = next(
            (
                e
                for e, _ in mine
                if isinstance(e, ConsentConfirmed)
                and (e.purpose, e.channel) == (event.purpose, event.channel)
                and e.occurred_at >= event.occurred_at
            ),
            None,
        )
        if event.double_opt_in.value == "confirmed":
            done = w.moment(event.occurred_at)
        elif confirmed is not None:
            done = w.moment(confirmed.occurred_at)
        else:
            done = w.say(N_("not confirmed"))
        return [step, (w.say(N_("Double opt-in confirmed")), done, None)]
    if isinstance(event, ConsentConfirmed):
        asked = [
            e
            for e, _ in mine
            if isinstance(e, ConsentGranted)
            and (e.purpose, e.channel) == (event.purpose, event.channel)
            and e.occurred_at <= event.occurred_at
        ]
        if asked:
            return [(w.say(N_("Double opt-in asked")), w.moment(asked[-1].occurred_at), None)]
    return []


@dataclass(frozen=True, slots=True)
class Known:
    """What the dossier knows besides one event: the person's log, the policies, the keys."""

    mine: list[Logged]
    policies: Mapping[str, PolicyVersionPublished]
    actors: Mapping[str, str]
    """API key names by actor (``api-key:<id>``)."""
    w: Words


def evidence_rows(event: EventBase, fields: dict[str, Any], known: Known) -> list[Row]:
    """Everything that proves ``event`` (``fields``: its JSON), personal data opened (the
    audit scope reads it)."""
    mine, policies, actors, w = known.mine, known.policies, known.actors, known.w
    version = fields.get("policy_version") or fields.get("version")
    rows = _policy_rows(version, policies, w)
    evidence = event.evidence
    if evidence is not None:
        if evidence.consent_text_sha256:
            rows.append((w.say(N_("Wording shown (SHA-256)")), evidence.consent_text_sha256, None))
        if evidence.form_id:
            form = evidence.form_id + (
                f" v{evidence.form_version}" if evidence.form_version else ""
            )
            rows.append((w.say(N_("Form")), form, None))
        if evidence.double_opt_in_token_id:
            rows.append((w.say(N_("Double opt-in token")), evidence.double_opt_in_token_id, None))
        if evidence.artefact_sha256:
            rows.append((w.say(N_("Proof artefact (SHA-256)")), evidence.artefact_sha256, None))
    rows += _double_opt_in(event, mine, w)
    personal = event.personal
    if isinstance(personal, PersonalData):
        rows += [
            (w.say(label), str(getattr(personal, name)), None)
            for name, label in _PERSONAL
            if getattr(personal, name)
        ]
    elif isinstance(personal, ErasedPersonalData):
        rows.append((w.say(N_("Personal data")), w.say(N_("destroyed by the erasure")), None))
    for name, label in (
        ("campaign_id", N_("Campaign")),
        ("message_id", N_("Message")),
        ("request_id", N_("Rights request")),
    ):
        if fields.get(name):
            rows.append((w.say(label), str(fields[name]), None))
    if fields.get("method"):
        rows.append((w.say(N_("Unsubscribe method")), w.of(METHODS, fields["method"]), None))
    actor = actors.get(event.actor)
    rows.append((w.say(N_("Actor")), f"{actor} ({event.actor})" if actor else event.actor, None))
    rows.append((w.say(N_("Source")), w.of(SOURCES, event.source), None))
    rows.append((w.say(N_("Recorded on")), w.moment(event.recorded_at), None))
    return rows
