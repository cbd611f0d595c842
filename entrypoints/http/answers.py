"""The JSON answers of the API as models, so the OpenAPI document describes every field.

The routes build their answers as before; these models document them (``responses``) and the
tests validate real answers against the schemas they give. Examples come from
`entrypoints.http.examples`, filled into the document by field name.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """An answer of the API: its fields' docstrings are their descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True, populate_by_name=True)


class Health(Answer):
    """Whether this process can serve: its mode and whether its store answers."""

    status: str
    """``ok``, or ``unavailable`` (answered 503)."""
    mode: str
    """``embedded`` or ``production``."""
    store: str
    """``ok``, or the kind of failure of the store (never its address or credentials)."""


class ConsentState(Answer):
    """A person's consent to one purpose on one channel, now."""

    purpose: str
    """The purpose."""
    channel: str
    """The channel."""
    status: str
    """``granted``, ``pending`` (double opt-in not confirmed) or ``withdrawn``."""
    policy_version: str | None
    """The policy version the consent was given under."""
    since: str
    """When it took this status (ISO 8601, UTC)."""


class RightsRequestState(Answer):
    """A rights request of the person, open or closed."""

    request_id: str
    """The request's id."""
    right: str
    """The right exercised."""
    due_at: str
    """When the answer is due (ISO 8601, UTC)."""
    extended: bool
    """Whether its deadline was extended once already."""
    outcome: str | None
    """How it ended; null while open."""


class PersonState(Answer):
    """What the ledger holds about a person now, without personal data."""

    subject: str
    """The person's subject."""
    consents: list[ConsentState]
    """Every consent, by purpose and channel."""
    unsubscribed: list[str]
    """Purposes unsubscribed from (``*``: every marketing message)."""
    unsubscribed_lists: list[str]
    """Mailing lists unsubscribed from."""
    objections: list[str]
    """Purposes objected to (``*``: all direct marketing)."""
    restrictions: list[str]
    """Purposes whose processing is restricted (``*``: every purpose)."""
    accepted_policies: dict[str, str]
    """Policy versions accepted, each with the SHA-256 of the text accepted."""
    rights_requests: list[RightsRequestState]
    """The person's rights requests."""
    erasures: int
    """How many times the person was erased (their data key destroyed)."""
    last_interaction_at: str | None
    """The last sign of life (a click, a purchase...), which restarts the consent's clock."""


class PersonHistory(Answer):
    """Every event of a person, in the order they were recorded."""

    subject: str
    """The person's subject."""
    events: list[dict[str, Any]]
    """The events as stored (the JSON Schemas of schemas/json/), each with its ``position``;
    personal fields opened for a key with the audit scope, sealed otherwise."""


class BundleEntry(Answer):
    """One event of a proof bundle with its inclusion proof."""

    index: int
    """The event's leaf index in the audit tree."""
    entry: str
    """The base64 entry the leaf hash is computed from (README: Leaves)."""
    inclusion_proof: list[str]
    """RFC 9162 inclusion proof to the checkpoint's root, base64 hashes."""
    event: dict[str, Any]
    """The stored envelope of the event."""


class ProofBundle(Answer):
    """A person's events with proofs to a signed checkpoint, checkable offline
    (``consent-ledger audit verify-bundle``)."""

    format: str
    """``consent-ledger-proof-bundle/1``."""
    checkpoint: str
    """The signed checkpoint (C2SP signed note) the proofs lead to."""
    verifier_key: str
    """The key that signed it (publish it; verify against your own copy)."""
    entries: list[BundleEntry]
    """Each event of the person, with its proof."""


class InclusionProof(Answer):
    """RFC 9162 inclusion proof of one event."""

    position: int
    """The event's ledger position."""
    leaf_index: int
    """Its leaf index in the tree."""
    tree_size: int
    """The size of the tree proven against."""
    inclusion_proof: list[str]
    """The proof, base64 hashes."""


class ConsistencyProof(Answer):
    """RFC 9162 consistency proof between two tree sizes."""

    first: int = Field(alias="from")
    """The smaller tree size."""
    second: int = Field(alias="to")
    """The larger tree size."""
    consistency_proof: list[str]
    """The proof, base64 hashes."""


class OpenRightsRequestAnswer(Answer):
    """An open rights request, as the projection holds it."""

    request_id: str
    """The request's id."""
    subject: str
    """The person's subject."""
    right: str
    """The right exercised."""
    received_at: str | None
    """When it was received (ISO 8601, UTC)."""
    due_at: str
    """When the answer is due (ISO 8601, UTC)."""
    extended: bool
    """Whether its deadline was extended once already."""
    overdue: bool
    """Whether it is past its due date."""


class RightCounts(Answer):
    """Open and overdue requests of one right."""

    open: int
    """Requests not yet closed."""
    overdue: int
    """Of them, past their due date."""


class RightsRequests(Answer):
    """Open rights requests, soonest due first, and counts by right."""

    as_of: str
    """When the list was read (ISO 8601, UTC)."""
    requests: list[OpenRightsRequestAnswer]
    """The requests (only the overdue ones with ``overdue=true``)."""
    summary: dict[str, RightCounts]
    """Counts by right, every right listed."""


class PersonExport(Answer):
    """Everything the ledger holds about a person (GDPR art. 15 and 20)."""

    format: str
    """``consent-ledger/export/v1``."""
    subject: str
    """The person's subject."""
    exported_at: str
    """When the export was made (ISO 8601, UTC)."""
    erased: bool
    """Whether the person was erased: their personal fields then read ``{"kind": "erased"}``."""
    events: list[dict[str, Any]]
    """Every event of the person, personal fields decrypted."""
    consent_receipts: list[dict[str, Any]]
    """One ISO/IEC TS 27560 consent record per grant (README: Export lists their fields)."""
    proof_bundle: dict[str, Any] | None
    """``status`` (``included``, ``pending``, ``tampered``) with the ``bundle`` or the
    ``detail`` of why not."""


class ConsentInForce(Answer):
    """The consent in force at the time asked about."""

    status: str
    """``granted``, ``pending`` or ``withdrawn``."""
    policy_version: str | None
    """The policy version it was given under."""
    since: str
    """When it took this status (ISO 8601, UTC)."""
    position: int
    """The ledger position of the event that set it."""


class PolicyInForce(Answer):
    """The policy version the consent was given under."""

    version: str
    """Its label."""
    text_sha256: str
    """SHA-256 of its text (hex)."""
    url: str | None
    """Where it is published."""
    effective_at: str
    """From when it applies (ISO 8601, UTC)."""
    requires_reconsent: bool
    """Whether older consents lapsed when it took effect."""


class DecisionAt(Answer):
    """Whether sending was allowed at a time, and why, replayed from the log."""

    subject: str
    """The person's subject."""
    purpose: str
    """The purpose asked about."""
    channel: str
    """The channel asked about."""
    at: str
    """The time asked about (ISO 8601, UTC)."""
    as_of_position: int
    """The last ledger position the answer includes."""
    allowed: bool
    """Whether sending was allowed then."""
    reason: str | None
    """Why not (null when allowed): the rule book's first reason."""
    consent: ConsentInForce | None
    """The consent in force, if any."""
    policy: PolicyInForce | None
    """The policy version of that consent."""
    grant: dict[str, Any] | None
    """The grant in force: its position, times, source, evidence and fields (never personal
    data)."""
    deciding_event: dict[str, Any] | None
    """The event that decided: the grant that allows, or the one that denies."""
