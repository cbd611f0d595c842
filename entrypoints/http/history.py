"""A person's state and history, checkpoints, proofs and proof bundles."""

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import Field

from access.apikeys import ApiKey, Scope
from entrypoints.http.answers import (
    Answer,
    ConsistencyProof,
    InclusionProof,
    PersonHistory,
    PersonState,
    ProofBundle,
)
from entrypoints.http.auth import Authenticator
from entrypoints.http.examples import CHECKPOINT, VERIFIER_KEY
from entrypoints.http.problems import ApiProblemError, described, documented
from entrypoints.http.services import MAX_POSITION, ApiServices
from ledger.audit.export import NotSealedError, TamperedEventError, export_bundle
from ledger.audit.store import StoredCheckpoint
from ledger.audit.tlog.merkle import consistency_proof, inclusion_proof
from ledger.domain.aggregates import aggregate_id
from ledger.write.service import Ledger
from schemas import dump_event

SUBJECT_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
SUBJECT = Path(pattern=SUBJECT_PATTERN, description="The person's subject.")
NOT_SEALED_RETRY_S = 5


class AddressQuery(Answer):
    """An address whose subject is asked for."""

    address: str = Field(min_length=3, max_length=320)
    """The email address, normalised as every command does it."""


class SubjectAnswer(Answer):
    """The subject of an address: the key the ledger knows the person by."""

    subject: str
    """HMAC-SHA256 of the normalised address under the deployment's subject secret (hex)."""


def _text(description: str, example: str) -> dict[str, Any]:
    """A plain-text answer's documentation."""
    return {
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string", "examples": [example]}}},
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def person_state(ledger: Ledger, subject: str) -> dict[str, Any]:
    """What the ledger holds about a person now, without personal data."""
    person = ledger.person(subject)
    if person is None:
        raise ApiProblemError(404, "unknown-subject", "No event was ever recorded for this person")
    return {
        "subject": subject,
        "consents": [
            {
                "purpose": purpose,
                "channel": channel,
                "status": record.status.value,
                "policy_version": record.policy_version,
                "since": record.since.isoformat(),
            }
            for (purpose, channel), record in sorted(person.consents.items())
        ],
        "unsubscribed": sorted(person.unsubscribed),
        "unsubscribed_lists": sorted(person.unsubscribed_lists),
        "objections": sorted(person.objections),
        "restrictions": sorted(person.restrictions),
        "accepted_policies": dict(sorted(person.accepted_policies.items())),
        "rights_requests": [
            {
                "request_id": str(request_id),
                "right": request.right,
                "due_at": request.due_at.isoformat(),
                "extended": request.extended,
                "outcome": request.outcome,
            }
            for request_id, request in person.rights_requests.items()
        ],
        "erasures": person.erasures,
        "last_interaction_at": None
        if person.last_interaction_at is None
        else person.last_interaction_at.isoformat(),
    }


def latest_checkpoint(services: ApiServices) -> StoredCheckpoint:
    with services.audit_lock:
        checkpoint: StoredCheckpoint | None = services.audit.tree.latest_checkpoint()
    if checkpoint is None:
        raise ApiProblemError(
            404,
            "no-checkpoint",
            "No checkpoint has been cut yet",
            headers={"Retry-After": str(NOT_SEALED_RETRY_S)},
        )
    return checkpoint


def person_bundle(services: ApiServices, subject: str) -> dict[str, Any]:
    """The person's proof bundle against the latest checkpoint; 404 without a checkpoint, 409
    while some of their events are not in it."""
    checkpoint = latest_checkpoint(services)
    try:
        with services.audit_lock:
            return export_bundle(
                subject=subject,
                store=services.audit.store,
                tree=services.audit.tree,
                checkpoint=checkpoint,
                verifier=services.audit.signer.verifier(),
            )
    except NotSealedError as error:
        raise ApiProblemError(
            409,
            "not-yet-sealed",
            "Some of this person's events are not in a checkpoint yet",
            detail=str(error),
            headers={"Retry-After": str(NOT_SEALED_RETRY_S)},
        ) from None
    except TamperedEventError as error:
        raise ApiProblemError(
            500,
            "store-tampered",
            "A stored event is not the one sealed at its position",
            detail=str(error),
        ) from None


def history_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(
        responses=documented(401, 403, 404, 413, 422, 503),
    )
    reader = Depends(auth.require(Scope.WRITE, Scope.AUDIT))
    auditor = Depends(auth.require(Scope.AUDIT))
    anyone = Depends(auth.require(Scope.WRITE, Scope.CHECK, Scope.AUDIT, Scope.ADMIN))

    @router.post(
        "/v1/subjects",
        response_model=SubjectAnswer,
        summary="The subject of an address",
        tags=["sender"],
    )
    def subject_of(body: AddressQuery, key: Annotated[ApiKey, anyone]) -> SubjectAnswer:
        return SubjectAnswer(subject=services.hasher.subject_for(body.address))

    @router.get(
        "/v1/persons/{subject}",
        summary="A person's current state",
        tags=["sender"],
        responses={200: {"model": PersonState, "description": "The person's state"}},
    )
    def state(subject: Annotated[str, SUBJECT], key: Annotated[ApiKey, reader]) -> dict[str, Any]:
        return person_state(services.ledger, subject)

    @router.get(
        "/v1/persons/{subject}/history",
        summary="Every event of a person; personal fields opened for the audit scope only",
        tags=["auditor"],
        responses={200: {"model": PersonHistory, "description": "The person's events"}},
    )
    def history(subject: Annotated[str, SUBJECT], key: Annotated[ApiKey, reader]) -> dict[str, Any]:
        events = services.ledger.history(subject, decrypt=Scope.AUDIT in key.scopes)
        if not events:
            raise ApiProblemError(
                404, "unknown-subject", "No event was ever recorded for this person"
            )
        # Events come in version order; the store knows each version's ledger position.
        positions = services.ledger.store.positions_of(aggregate_id(subject))
        return {
            "subject": subject,
            "events": [
                dump_event(event.model_copy(update={"position": positions.get(version)}))
                for version, event in enumerate(events, start=1)
            ],
        }

    @router.get(
        "/v1/persons/{subject}/bundle",
        summary="The person's proof bundle, checkable offline (consent-ledger audit verify-bundle)",
        tags=["auditor"],
        responses={
            200: {"model": ProofBundle, "description": "The bundle"},
            409: documented(409)[409],
            500: described(
                "store-tampered: a stored event of this person is not the one sealed at its "
                "position (the detail names it); no bundle can prove it, run `consent-ledger "
                "audit verify`. Else an unexpected failure"
            ),
        },
    )
    async def bundle(
        subject: Annotated[str, SUBJECT], key: Annotated[ApiKey, auditor]
    ) -> JSONResponse:
        document = await run_in_threadpool(person_bundle, services, subject)
        if not document["entries"]:
            raise ApiProblemError(
                404, "unknown-subject", "No event was ever recorded for this person"
            )
        return JSONResponse(document)

    @router.get(
        "/v1/audit/checkpoint",
        response_class=PlainTextResponse,
        summary="The latest signed checkpoint (C2SP signed note)",
        tags=["auditor"],
        responses={200: _text("The signed note", CHECKPOINT)},
    )
    def checkpoint(key: Annotated[ApiKey, auditor]) -> PlainTextResponse:
        return PlainTextResponse(latest_checkpoint(services).note)

    @router.get(
        "/v1/audit/key",
        response_class=PlainTextResponse,
        summary="The verifier key of the checkpoints",
        tags=["auditor"],
        responses={200: _text("The key, name+hexkeyid+base64key", VERIFIER_KEY)},
    )
    def verifier_key(key: Annotated[ApiKey, auditor]) -> PlainTextResponse:
        return PlainTextResponse(services.audit.signer.verifier_key() + "\n")

    @router.get(
        "/v1/audit/inclusion",
        summary="RFC 9162 inclusion proof of one event",
        tags=["auditor"],
        responses={200: {"model": InclusionProof, "description": "The proof"}},
    )
    def inclusion(
        key: Annotated[ApiKey, auditor],
        position: Annotated[
            int, Query(ge=1, le=MAX_POSITION, description="The event's ledger position.")
        ],
        size: Annotated[
            int | None,
            Query(ge=1, le=MAX_POSITION, description="Tree size (default: latest checkpoint)."),
        ] = None,
    ) -> dict[str, Any]:
        tree_size = size if size is not None else latest_checkpoint(services).size
        with services.audit_lock:
            index = services.audit.tree.leaf_indices([position]).get(position)
            if index is None or index >= tree_size:
                raise ApiProblemError(
                    404,
                    "not-sealed",
                    "This position is not in a tree of that size",
                    field="position",
                )
            if tree_size > services.audit.tree.size():
                raise ApiProblemError(
                    422, "invalid-field", "No tree of that size yet", field="size"
                )
            proof = inclusion_proof(index=index, size=tree_size, store=services.audit.tree)
        return {
            "position": position,
            "leaf_index": index,
            "tree_size": tree_size,
            "inclusion_proof": [_b64(h) for h in proof],
        }

    @router.get(
        "/v1/audit/consistency",
        summary="RFC 9162 consistency proof between two sizes",
        tags=["auditor"],
        responses={200: {"model": ConsistencyProof, "description": "The proof"}},
    )
    def consistency(
        key: Annotated[ApiKey, auditor],
        first: Annotated[
            int,
            Query(alias="from", ge=1, le=MAX_POSITION, description="The smaller tree size."),
        ],
        second: Annotated[
            int, Query(alias="to", ge=1, le=MAX_POSITION, description="The larger tree size.")
        ],
    ) -> dict[str, Any]:
        with services.audit_lock:
            if second > services.audit.tree.size():
                raise ApiProblemError(422, "invalid-field", "No tree of that size yet", field="to")
            if first > second:
                raise ApiProblemError(422, "invalid-field", "from must not exceed to", field="from")
            proof = consistency_proof(first=first, second=second, store=services.audit.tree)
        return {"from": first, "to": second, "consistency_proof": [_b64(h) for h in proof]}

    return router
