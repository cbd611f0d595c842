"""A person's dossier as an auditor reads it: status, timeline, evidence and proofs, in words.

Built from the log alone (the person's events, decrypted for the audit scope, and the catalog's),
so the page, the CSV and the PDF say the same. Each proof is checked here against the latest
checkpoint, itself checked against the verifier key: the page never shows a proof it did not
verify.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from entrypoints.http.audit.evidence import Known, Row, evidence_rows
from entrypoints.http.audit.words import CHANNELS, REASONS, Words, sentence
from entrypoints.http.pages.i18n import N_
from entrypoints.http.pages.render import WHEN_PATTERN, Pages, when
from entrypoints.http.services import ApiServices
from ledger.audit.export import ProvenEntry, proven_entries
from ledger.audit.store import StoredCheckpoint
from ledger.audit.tlog.note import open_note, parse_checkpoint
from ledger.audit.tlog.verify import AuditError, leaf_hash, verify_inclusion
from ledger.rights.point_in_time import decision_at
from ledger.rights.receipts import Logged, person_log
from schemas import (
    ConsentConfirmed,
    ConsentGranted,
    ConsentWithdrawn,
    PolicyVersionPublished,
    PurposeRegistered,
    SubjectErased,
)

__all__ = ["Checkpoint", "Dossier", "Proof", "build_dossier"]

_CONSENT_EVENTS = (ConsentGranted, ConsentConfirmed, ConsentWithdrawn)


@dataclass(frozen=True, slots=True)
class Proof:
    state: str
    """``ok`` (verified here), ``pending`` (not yet in a checkpoint) or ``bad``."""
    text: str
    index: int | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    cut_at: datetime
    valid: bool
    text: str
    note: str
    verifier_key: str
    fingerprint: str
    """SHA-256 of the verifier key, in groups of four hex digits, to read out loud."""


@dataclass(frozen=True, slots=True)
class Line:
    """One event of the timeline."""

    position: int
    event_type: str
    occurred_at: datetime
    sentence: str
    evidence: list[Row]
    proof: Proof


@dataclass(frozen=True, slots=True)
class Status:
    """One purpose on one channel: may we send, why, since when, decided by which event."""

    purpose: str
    name: str
    channel: str
    allowed: bool
    reason: str
    since: datetime | None
    deciding: int | None


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    text_sha256: str
    url: str | None
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class Dossier:
    subject: str
    origin: str
    made_at: datetime
    status: list[Status]
    timeline: list[Line]
    checkpoint: Checkpoint | None
    policies: list[Policy]
    erased_at: datetime | None
    proven: list[ProvenEntry]
    """The stored entries behind the timeline, for the bundle."""

    @property
    def all_proven(self) -> bool:
        return bool(self.timeline) and all(line.proof.state == "ok" for line in self.timeline)


def fingerprint(verifier_key: str) -> str:
    digest = hashlib.sha256(verifier_key.encode()).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _checkpoint(
    stored: StoredCheckpoint | None, services: ApiServices, w: Words
) -> tuple[Checkpoint | None, bytes | None]:
    """The checkpoint in words, and its root when its signature holds and matches the tree."""
    if stored is None:
        return None, None
    key = services.audit.signer.verifier_key()
    root: bytes | None = None
    try:
        signed = parse_checkpoint(open_note(stored.note, services.audit.signer.verifier()))
    except AuditError:
        text = w.say(N_("THE SIGNATURE OF THE CHECKPOINT IS INVALID"))
    else:
        if (signed.root_hash, signed.size) != (stored.root, stored.size):
            text = w.say(N_("THE SIGNED CHECKPOINT DIFFERS FROM THE STORED TREE"))
        else:
            root = signed.root_hash
            text = w.say(
                N_("Signature valid: tree of %(size)s events, cut on %(when)s (Paris time)"),
                size=stored.size,
                when=w.moment(stored.created_at),
            )
    checkpoint = Checkpoint(
        size=stored.size,
        cut_at=stored.created_at,
        valid=root is not None,
        text=text,
        note=stored.note,
        verifier_key=key,
        fingerprint=fingerprint(key),
    )
    return checkpoint, root


def _proof(
    proven: ProvenEntry, checkpoint: Checkpoint | None, root: bytes | None, w: Words
) -> Proof:
    if proven.index is None or checkpoint is None:
        return Proof("pending", w.say(N_("not yet in a signed checkpoint")), None)
    if root is None:
        return Proof("bad", w.say(N_("cannot be checked: the checkpoint is not valid")), None)
    try:
        verify_inclusion(
            index=proven.index,
            size=checkpoint.size,
            leaf=leaf_hash(proven.entry),
            proof=list(proven.inclusion_proof),
            root=root,
        )
    except AuditError:
        return Proof("bad", w.say(N_("PROOF FAILS: this event is not the one sealed")), None)
    return Proof(
        "ok",
        w.say(
            N_("verified: leaf %(index)s of the signed checkpoint of %(size)s events"),
            index=proven.index,
            size=checkpoint.size,
        ),
        proven.index,
    )


def _status(
    log: list[Logged], subject: str, mine: list[Logged], w: Words, now: datetime
) -> list[Status]:
    """One line per registered purpose on email, and per other channel the person used."""
    pairs = {(e.purpose, "email") for e, _ in log if isinstance(e, PurposeRegistered)}
    pairs |= {(e.purpose, e.channel.value) for e, _ in mine if isinstance(e, _CONSENT_EVENTS)}
    lines = []
    for purpose, channel in sorted(pairs):
        answer = decision_at(log, subject=subject, purpose=purpose, channel=channel, at=now)
        deciding = answer.deciding
        if answer.decision.allowed:
            reason = w.say(N_("consent given")) if answer.grant else w.say(N_("legal basis"))
        else:
            reason = w.of(REASONS, answer.decision.reason)
        lines.append(
            Status(
                purpose=purpose,
                name=w.purpose(purpose),
                channel=w.of(CHANNELS, channel),
                allowed=answer.decision.allowed,
                reason=reason,
                since=None if deciding is None else deciding[0].occurred_at,
                deciding=None if deciding is None else deciding[1],
            )
        )
    return lines


def words_for(pages: Pages, lang: str, log: list[Logged]) -> Words:
    pattern = pages.gettext(lang, WHEN_PATTERN)
    return Words(
        lang=lang,
        gettext=lambda message: pages.gettext(lang, message),
        moment=lambda moment: when(moment, lang, pattern),
        purpose_names={
            e.purpose: e.description for e, _ in log if isinstance(e, PurposeRegistered)
        },
    )


def build_dossier(
    services: ApiServices, pages: Pages, *, lang: str, subject: str, now: datetime | None = None
) -> Dossier | None:
    """The dossier of ``subject``, or None when nothing was ever recorded about them."""
    now = now or datetime.now(UTC)
    log = person_log(services.ledger, subject, decrypt=True)
    mine = [(event, position) for event, position in log if event.subject == subject]
    if not mine:
        return None
    w = words_for(pages, lang, log)
    with services.audit_lock:
        stored = services.audit.tree.latest_checkpoint()
        proven = proven_entries(
            subject=subject, store=services.audit.store, tree=services.audit.tree, checkpoint=stored
        )
    checkpoint, root = _checkpoint(stored, services, w)
    by_position = {entry.position: entry for entry in proven}
    policies = {e.version: e for e, _ in log if isinstance(e, PolicyVersionPublished)}
    actors = {f"api-key:{key.key_id}": key.name for key in services.keys.list()}
    known = Known(mine, policies, actors, w)
    timeline = []
    for event, position in mine:
        data = event.model_dump(mode="json")
        timeline.append(
            Line(
                position=position,
                event_type=event.event_type,
                occurred_at=event.occurred_at,
                sentence=sentence(data, w),
                evidence=evidence_rows(event, data, known),
                proof=_proof(by_position[position], checkpoint, root, w),
            )
        )
    used = _policies_used(mine, policies)
    erased = [e.occurred_at for e, _ in mine if isinstance(e, SubjectErased)]
    return Dossier(
        subject=subject,
        origin=services.audit.signer.name,
        made_at=now,
        status=_status(log, subject, mine, w, now),
        timeline=timeline,
        checkpoint=checkpoint,
        policies=used,
        erased_at=erased[-1] if erased else None,
        proven=proven,
    )


def _policies_used(mine: list[Logged], policies: dict[str, PolicyVersionPublished]) -> list[Policy]:
    versions = {getattr(e, "policy_version", None) or getattr(e, "version", None) for e, _ in mine}
    return [
        Policy(p.version, p.text_sha256, p.url, p.effective_at)
        for version, p in sorted(policies.items(), key=lambda item: item[1].effective_at)
        if version in versions
    ]
