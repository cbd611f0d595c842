"""A person's export (GDPR art. 15 and 20): their events, consent receipts and proof bundle.

Each consent receipt is modelled on the consent record of ISO/IEC TS 27560 (and the Kantara
Consent Receipt it grew from): who consented, to which notice (version and text hash), for which
purposes, on which legal basis, for what processing and retention, how to withdraw, and every
event of that consent since.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.audit.export import NotSealedError, TamperedEventError, export_bundle
from ledger.audit.store import TreeStore
from ledger.audit.tlog.note import NoteVerifier
from ledger.domain.aggregates import aggregate_id
from ledger.rights.point_in_time import logged_event_json
from ledger.write.service import Ledger
from schemas import (
    CATALOG_SUBJECT,
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    EventBase,
    PolicyVersionPublished,
    PurposeRegistered,
    SubjectErased,
    UnsubscribeClicked,
    dump_event,
)

EXPORT_FORMAT = "consent-ledger/export/v1"
RECEIPT_SCHEMA = "ISO/IEC TS 27560:2023 consent record (consent-ledger profile v1)"
DEFAULT_WITHDRAWAL_METHOD = (
    "Follow the unsubscribe link in any of our emails (one click), or write to the contact "
    "address of the privacy policy; withdrawing is as easy as consenting (GDPR art. 7(3))."
)
_RECEIPT_NAMESPACE = uuid5(NAMESPACE_URL, "https://consent-ledger/receipts")
_LEGAL_BASIS_ARTICLE = {
    "consent": "GDPR art. 6(1)(a)",
    "contract": "GDPR art. 6(1)(b)",
    "legal_obligation": "GDPR art. 6(1)(c)",
    "legitimate_interest": "GDPR art. 6(1)(f)",
}

Logged = tuple[EventBase, int]
"""An event and its ledger position."""


def person_log(ledger: Ledger, subject: str, *, decrypt: bool = False) -> list[Logged]:
    """The person's and the catalog's events with their positions, in ledger order."""
    logged: list[Logged] = []
    for who in (subject, CATALOG_SUBJECT):
        events = ledger.history(who, decrypt=decrypt and who == subject)
        positions = ledger.store.positions_of(aggregate_id(who))
        # Events come in version order, from 1; the store knows each version's position.
        logged.extend(
            (event.model_copy(update={"position": positions[version]}), positions[version])
            for version, event in enumerate(events, start=1)
        )
    return sorted(logged, key=lambda item: item[1])


@dataclass(frozen=True, slots=True)
class Proofs:
    """Where the proof bundle comes from: the audit tree and the key checking its checkpoints."""

    tree: TreeStore
    verifier: NoteVerifier


def export_document(
    ledger: Ledger,
    subject: str,
    *,
    proofs: Proofs | None,
    now: datetime,
    withdrawal_method: str = DEFAULT_WITHDRAWAL_METHOD,
) -> dict[str, Any]:
    """Everything the ledger holds about ``subject``, decrypted, with receipts and proofs.

    The proof bundle covers the person's events when the latest checkpoint does; otherwise it
    is reported as pending (seal and cut a checkpoint, then export again).
    """
    log = person_log(ledger, subject, decrypt=True)
    mine = [(event, position) for event, position in log if event.subject == subject]
    purposes = {e.purpose: e for e, _ in log if isinstance(e, PurposeRegistered)}
    policies = {e.version: e for e, _ in log if isinstance(e, PolicyVersionPublished)}
    return {
        "format": EXPORT_FORMAT,
        "subject": subject,
        "exported_at": now.isoformat(),
        "erased": any(isinstance(e, SubjectErased) for e, _ in mine),
        "events": [dump_event(event) for event, _ in mine],
        "consent_receipts": [
            _receipt(
                subject,
                grant=(event, position),
                mine=mine,
                purposes=purposes,
                policies=policies,
                withdrawal_method=withdrawal_method,
            )
            for event, position in mine
            if isinstance(event, ConsentGranted)
        ],
        "proof_bundle": _proof_bundle(ledger, subject, proofs) if mine else None,
    }


def _proof_bundle(ledger: Ledger, subject: str, proofs: Proofs | None) -> dict[str, Any]:
    if proofs is None:
        return {"status": "unavailable", "detail": "no audit tree was given to the export"}
    checkpoint = proofs.tree.latest_checkpoint()
    if checkpoint is None:
        return {"status": "pending", "detail": "no checkpoint has been cut yet"}
    try:
        bundle = export_bundle(
            subject=subject,
            store=ledger.store,
            tree=proofs.tree,
            checkpoint=checkpoint,
            verifier=proofs.verifier,
        )
    except NotSealedError as error:
        return {"status": "pending", "detail": str(error)}
    except TamperedEventError as error:
        # The person still gets their events; the export says they cannot be proven.
        return {"status": "tampered", "detail": str(error)}
    return {"status": "included", "bundle": bundle}


def receipt_id(grant: EventBase) -> UUID:
    """The receipt's stable id, derived from the grant event's id: every export gives the same."""
    return uuid5(_RECEIPT_NAMESPACE, str(grant.event_id))


def _concerns(event: EventBase, purpose: str, channel: str) -> bool:
    match event:
        case ConsentConfirmed() | ConsentWithdrawn():
            return (event.purpose, event.channel) == (purpose, channel)
        case UnsubscribeClicked():
            # An unsubscribe stops email: for one purpose, or every one; a list is not a purpose.
            return channel == "email" and event.list_id is None and event.purpose in (None, purpose)
        case SubjectErased():
            return True
        case _:
            return False


def _receipt(
    subject: str,
    *,
    grant: tuple[ConsentGranted, int],
    mine: list[Logged],
    purposes: dict[str, PurposeRegistered],
    policies: dict[str, PolicyVersionPublished],
    withdrawal_method: str,
) -> dict[str, Any]:
    event, position = grant
    purpose, channel = event.purpose, event.channel.value
    later: list[Logged] = []
    for other, other_position in mine:
        if other_position <= position:
            continue
        if isinstance(other, ConsentGranted) and (other.purpose, other.channel) == (
            purpose,
            event.channel,
        ):
            break  # a new grant opens a receipt of its own
        if _concerns(other, purpose, channel):
            later.append((other, other_position))
    registered = purposes.get(purpose)
    policy = policies.get(event.policy_version)
    return {
        "schema_version": RECEIPT_SCHEMA,
        "record_id": str(receipt_id(event)),
        "pii_principal_id": subject,
        "notice": {
            "policy_version": event.policy_version,
            "text_sha256": None if policy is None else policy.text_sha256,
            "url": None if policy is None else policy.url,
            "effective_at": None if policy is None else policy.effective_at.isoformat(),
            "shown_text_sha256": None
            if event.evidence is None
            else event.evidence.consent_text_sha256,
        },
        "purposes": [
            {
                "purpose": purpose,
                "description": None if registered is None else registered.description,
                "direct_marketing": None if registered is None else registered.direct_marketing,
            }
        ],
        "legal_basis": None
        if registered is None
        else {
            "basis": registered.legal_basis.value,
            "article": _LEGAL_BASIS_ARTICLE[registered.legal_basis.value],
        },
        "processing": {
            "channel": channel,
            "operations": ["collect", "store", f"contact by {channel}"],
        },
        "retention": _retention(registered),
        "withdrawal_method": withdrawal_method,
        "state": _state(event, later),
        "events": [_receipt_event(e, p) for e, p in [grant, *later]],
    }


def _retention(registered: PurposeRegistered | None) -> dict[str, Any]:
    if registered is None or registered.max_age_days is None:
        return {"max_age_days": None, "rule": "until withdrawn"}
    return {
        "max_age_days": registered.max_age_days,
        "rule": f"lapses {registered.max_age_days} days after the consent or the last "
        "interaction (a click; an email open does not count), whichever is later",
    }


def _state(grant: ConsentGranted, later: list[Logged]) -> str:
    state = "pending" if grant.double_opt_in.value == "pending" else "given"
    for event, _ in later:
        match event:
            case ConsentConfirmed():
                state = "given"
            case ConsentWithdrawn() | UnsubscribeClicked():
                state = "withdrawn"
            case SubjectErased():
                state = "erased"
            case _:
                pass
    return state


def _receipt_event(event: EventBase, position: int) -> dict[str, Any]:
    return {
        **logged_event_json(event, position),
        "reason": event.reason.value if isinstance(event, ConsentWithdrawn) else None,
    }
