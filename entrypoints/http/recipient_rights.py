"""A person's rights from their preference centre: ``POST /p/{token}/rights``.

The form's ``right`` says which, each recorded as events from source ``preference_centre``
before the answer, one form posted twice recording once (ids derive from the form's nonce):

- ``download`` (GDPR art. 15 and 20): an access request opened and fulfilled, answered with the
  export (events decrypted, ISO/IEC TS 27560 receipts, the proof bundle) as a JSON attachment;
- ``erase`` (art. 17): an erasure request opened with its one-month due date, which the
  operator closes; the page says when;
- ``object`` (art. 21): an objection to all direct marketing.

Only the signed link reaches this, and only with a genuine nonce of the page (else ``403``).
"""

import asyncio
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from entrypoints.http.forms import Form
from entrypoints.http.pages import PAGE_HEADERS, Pages
from entrypoints.http.preferences import PREFERENCES_USE, checked_form
from entrypoints.http.problems import ApiProblemError, documented, html_page
from entrypoints.http.recipient import FormNonces, try_again
from entrypoints.http.unsubscribe import TOKEN
from ledger.domain.commands import (
    CloseRightsRequest,
    Command,
    OpenRightsRequest,
    RecordObjection,
)
from ledger.domain.errors import LedgerError
from ledger.links.tokens import UnsubscribeTokenCodec
from ledger.rights.receipts import Proofs, export_document
from ledger.write.service import Ledger
from schemas import Right, RightsOutcome, Source

__all__ = ["RIGHTS", "recipient_rights_router"]

ACTOR = "preference-centre"
RIGHTS = ("download", "erase", "object")
_IDS = uuid.UUID("5d0c9a1e-6f7b-4c1e-9a57-2f7d1c3b8e40")
"""The namespace of request ids derived from a form's nonce (UUID 5)."""


def recipient_rights_router(
    *,
    codec: UnsubscribeTokenCodec,
    ledger: Ledger,
    pages: Pages,
    proofs: Callable[[], Proofs | None] = lambda: None,
    audit_lock: "threading.Lock | None" = None,
) -> APIRouter:
    """``POST /p/{token}/rights``: download my data, request erasure, object."""
    router = APIRouter(tags=["recipient"], responses=documented(403, 404, 410, 413, 422, 503))
    links = codec.for_use(PREFERENCES_USE)
    nonces = FormNonces(codec)
    lock = audit_lock or threading.Lock()

    def exported(subject: str) -> bytes:
        with lock:
            document = export_document(ledger, subject, proofs=proofs(), now=datetime.now(UTC))
        return json.dumps(document, ensure_ascii=False, indent=2).encode()

    @router.post(
        "/p/{token}/rights",
        summary="Exercise a right from the preference centre (download, erase, object)",
        responses={
            200: {
                "description": "The page saying the right is recorded; to download, the "
                "person's export as an attachment",
                "content": {
                    **html_page("The page")["content"],
                    "application/json": {"schema": {"$ref": "#/components/schemas/PersonExport"}},
                },
            }
        },
    )
    async def exercise(token: Annotated[str, TOKEN], request: Request, fields: Form) -> Response:
        checked = checked_form(links, nonces, pages, request, token=token, fields=fields)
        if isinstance(checked, HTMLResponse):
            return checked
        claim, form, _ = checked
        nonce = form["nonce"]
        right = form.get("right")
        if right not in RIGHTS:
            raise ApiProblemError(
                400,
                "unknown-right",
                "right must be one of " + ", ".join(RIGHTS),
                field="right",
                headers=PAGE_HEADERS,
            )
        command_id = FormNonces.command_id(nonce, right)
        common = {
            "subject": claim.subject,
            "source": Source.PREFERENCE_CENTRE,
            "actor": ACTOR,
            "occurred_at": ledger.clock(),
            "command_id": command_id,
        }
        request_id = uuid.uuid5(_IDS, command_id)
        step: Command
        if right == "object":
            step = RecordObjection(**common, all_direct_marketing=True)
        else:
            kind = Right.ACCESS if right == "download" else Right.ERASURE
            step = OpenRightsRequest(**common, request_id=request_id, right=kind)
        try:
            await ledger.record(step)
            if right == "download":
                body = await asyncio.to_thread(exported, claim.subject)
                closed = common | {"command_id": FormNonces.command_id(nonce, "download.closed")}
                await ledger.record(
                    CloseRightsRequest(
                        **closed, request_id=request_id, outcome=RightsOutcome.FULFILLED
                    )
                )
        except LedgerError as error:
            if not error.retryable:
                raise
            return try_again(pages, request)
        if right == "download":
            return Response(
                body,
                media_type="application/json",
                headers={
                    **PAGE_HEADERS,
                    "Content-Disposition": 'attachment; filename="my-data.json"',
                },
            )
        due_at = step.effective_due_at if isinstance(step, OpenRightsRequest) else None
        context = {"right": right, "due_at": due_at}
        return pages.render(request, "recipient/right_recorded.html", context)

    return router
