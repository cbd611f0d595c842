"""What a preference centre shows a person, and the true events their choices record.

A choice is one purpose the person may hear about (a direct-marketing purpose), in the words of
the page's language, with whether they receive it now. Saving compares what was ticked with
that state and records only what changed: a grant (evidence: the SHA-256 of the exact wording
shown and the form's version), a withdrawal, or an unsubscribe, all from source
``preference_centre``. Command ids derive from the form's nonce, so one form posted twice
records once.
"""

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass

from entrypoints.http.recipient import wording
from ledger.domain.aggregates import Catalog, Person
from ledger.domain.commands import Command, GrantConsent, Unsubscribe, WithdrawConsent
from ledger.domain.rules import EVERY_PURPOSE, ConsentStatus, covers
from schemas import (
    Channel,
    Evidence,
    LegalBasis,
    PersonalData,
    Source,
    UnsubscribeMethod,
    UtcDatetime,
    WithdrawalReason,
)

__all__ = ["ACTOR", "FORM_ID", "FORM_VERSION", "Choice", "changes", "choices", "receives_now"]

FORM_ID = "preference_centre"
FORM_VERSION = "2026-12-07"
"""Changes whenever the page's wording around the purposes changes: it is in the evidence."""
ACTOR = "preference-centre"


@dataclass(frozen=True, slots=True)
class Choice:
    purpose: str
    label: str
    description: str
    receives: bool
    consent: bool
    """Whether the purpose rests on consent (then leaving it withdraws the consent)."""
    policy_version: str | None
    """The newest policy covering the purpose, under which a grant is given."""
    wording_sha256: str


def _newest_policy(catalog: Catalog, purpose: str) -> str | None:
    covering = [p for p in catalog.policies.values() if covers(p.purposes, purpose)]
    return max(covering, key=lambda p: p.effective_at).version if covering else None


def receives_now(person: Person | None, purpose: str, *, consent: bool) -> bool:
    """Whether ``person`` receives ``purpose``'s emails as the ledger stands."""
    if person is None:
        return False
    blocked = person.unsubscribed | person.objections
    if EVERY_PURPOSE in blocked or purpose in blocked:
        return False
    if not consent:
        return True
    record = person.consents.get((purpose, Channel.EMAIL))
    return record is not None and record.status is ConsentStatus.GRANTED


def choices(
    catalog: Catalog, lang: str, statement: str, receives: Callable[[str, bool], bool]
) -> list[Choice]:
    """Every direct-marketing purpose, worded in ``lang``; ``statement`` is the boxes' legend;
    ``receives(purpose, consent_based)`` says whether the person receives it."""
    shown = []
    for purpose, registered in sorted(catalog.purposes.items()):
        if not registered.direct_marketing:
            continue
        words = wording(catalog, purpose, lang)
        exact = json.dumps(
            [FORM_VERSION, lang, statement, words.label, words.description], ensure_ascii=False
        )
        consent = registered.legal_basis is LegalBasis.CONSENT
        shown.append(
            Choice(
                purpose=purpose,
                label=words.label,
                description=words.description,
                receives=receives(purpose, consent),
                consent=consent,
                policy_version=_newest_policy(catalog, purpose),
                wording_sha256=hashlib.sha256(exact.encode()).hexdigest(),
            )
        )
    return shown


def changes(
    shown: list[Choice],
    wanted: Collection[str] | None,
    *,
    subject: str,
    nonce_id: str,
    personal: PersonalData | None,
    at: UtcDatetime,
) -> list[Command]:
    """The commands turning ``shown`` into ``wanted`` (None: unsubscribe from everything)."""
    common = {
        "subject": subject,
        "source": Source.PREFERENCE_CENTRE,
        "actor": ACTOR,
        "occurred_at": at,
        "personal": personal,
    }
    if wanted is None:
        return [
            Unsubscribe(
                **common,
                method=UnsubscribeMethod.PREFERENCE_CENTRE,
                command_id=f"{nonce_id}.everything",
            )
        ]
    commands: list[Command] = []
    for choice in shown:
        command_id = f"{nonce_id}.{choice.purpose}"
        if choice.purpose in wanted and not choice.receives and choice.policy_version:
            evidence = Evidence(
                consent_text_sha256=choice.wording_sha256,
                form_id=FORM_ID,
                form_version=FORM_VERSION,
            )
            commands.append(
                GrantConsent(
                    **common,
                    purpose=choice.purpose,
                    policy_version=choice.policy_version,
                    evidence=evidence,
                    command_id=command_id,
                )
            )
        elif choice.purpose not in wanted and choice.receives:
            if choice.consent:
                commands.append(
                    WithdrawConsent(
                        **common,
                        purpose=choice.purpose,
                        reason=WithdrawalReason.USER_REQUEST,
                        command_id=command_id,
                    )
                )
            else:
                commands.append(
                    Unsubscribe(
                        **common,
                        purpose=choice.purpose,
                        method=UnsubscribeMethod.PREFERENCE_CENTRE,
                        command_id=command_id,
                    )
                )
    return commands
