"""The auditors' page: one person's timeline with each event's proof status, no JavaScript."""

import base64
import hashlib
import html
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from access.apikeys import ApiKey, Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.history import SUBJECT
from entrypoints.http.problems import ApiProblemError, documented, html_page
from entrypoints.http.services import ApiServices
from ledger.audit.export import ProvenEntry, proven_entries
from ledger.audit.store import StoredCheckpoint
from ledger.audit.tlog.note import open_note, parse_checkpoint
from ledger.audit.tlog.verify import AuditError, leaf_hash, verify_inclusion

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;line-height:1.4;color:#111}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#eee}code{font-size:.85em;word-break:break-all}
.ok{color:#064}.bad{color:#a00;font-weight:bold}.wait{color:#555}
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_HEADERS = {
    # A person's history, shown to an auditor: no cache keeps it, no other origin frames it,
    # and the page runs nothing but its own stylesheet (allowed by its hash).
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _proof_status(
    proven: ProvenEntry, checkpoint: StoredCheckpoint | None, root: bytes | None
) -> tuple[str, str]:
    """(css class, words) for one event: verified here, from the stored proof and root."""
    if proven.index is None or checkpoint is None or root is None:
        return "wait", "not yet in a signed checkpoint"
    try:
        verify_inclusion(
            index=proven.index,
            size=checkpoint.size,
            leaf=leaf_hash(proven.entry),
            proof=list(proven.inclusion_proof),
            root=root,
        )
    except AuditError as error:
        return "bad", f"PROOF FAILS: {error}"
    return "ok", f"proven: leaf {proven.index} of the signed tree of {checkpoint.size}"


def _what(event: dict[str, Any]) -> str:
    parts = []
    for name in ("purpose", "list_id", "channel", "reason", "method", "right", "outcome"):
        if event.get(name):
            parts.append(f"{name}: {event[name]}")
    if event.get("all_direct_marketing"):
        parts.append("all direct marketing")
    if event.get("purposes"):
        parts.append("purposes: " + ", ".join(event["purposes"]))
    return "; ".join(parts)


def render_timeline(
    *,
    subject: str,
    entries: list[ProvenEntry],
    checkpoint: StoredCheckpoint | None,
    checkpoint_status: str,
    trusted_root: bytes | None,
    policies: dict[str, str],
    origin: str,
) -> str:
    rows = []
    for proven in entries:
        event = proven.event
        css, status = _proof_status(proven, checkpoint, trusted_root)
        version = event.get("policy_version") or event.get("version")
        text_hash = event.get("text_sha256") or (policies.get(version) if version else None)
        rows.append(
            "<tr>"
            f"<td>{proven.position}</td>"
            f"<td>{_e(_when(event.get('occurred_at')))}</td>"
            f"<td>{_e(event.get('event_type'))}</td>"
            f"<td>{_e(_what(event))}</td>"
            f"<td>{_e(version)}</td>"
            f"<td><code>{_e(text_hash)}</code></td>"
            f"<td>{_e(event.get('source'))}</td>"
            f'<td class="{css}">{_e(status)}</td>'
            "</tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="8">No event recorded.</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Consent timeline of {_e(subject)}</title><style>{STYLE}</style></head>
<body><main>
<h1>Consent timeline</h1>
<p>Person (subject): <code>{_e(subject)}</code><br>Log: <code>{_e(origin)}</code></p>
<p>Checkpoint: {_e(checkpoint_status)}</p>
<table>
<caption>Every recorded event of this person, oldest first. Each proof is checked by this page
against the signed checkpoint above; check them yourself with the proof bundle
(<code>consent-ledger audit verify-bundle</code>).</caption>
<thead><tr><th scope="col">Position</th><th scope="col">Occurred (UTC)</th>
<th scope="col">Event</th><th scope="col">What</th><th scope="col">Policy version</th>
<th scope="col">Policy text SHA-256</th><th scope="col">Source</th>
<th scope="col">Proof</th></tr></thead>
<tbody>
{body}
</tbody></table>
</main></body></html>
"""


def _when(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def _checkpoint_status(
    checkpoint: StoredCheckpoint | None, services: ApiServices
) -> tuple[str, bytes | None]:
    """Words for the checkpoint, and its root when the signature holds and matches the tree."""
    if checkpoint is None:
        return "none cut yet", None
    try:
        signed = parse_checkpoint(open_note(checkpoint.note, services.audit.signer.verifier()))
    except AuditError as error:
        return f"SIGNATURE INVALID: {error}", None
    if signed.root_hash != checkpoint.root or signed.size != checkpoint.size:
        return "SIGNED CONTENT DIFFERS FROM THE STORED TREE HEAD", None
    cut = f"{checkpoint.created_at:%Y-%m-%d %H:%M:%S}"
    return f"signature valid, tree size {signed.size}, cut {cut} UTC", signed.root_hash


def auditor_router(services: ApiServices, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["auditor"], responses=documented(401, 403, 404, 422, 503))
    auditor = Depends(auth.require(Scope.AUDIT, browser=True))

    @router.get(
        "/audit/persons/{subject}",
        response_class=HTMLResponse,
        summary="One person's timeline with proof status (HTML)",
        responses={200: html_page("The timeline page")},
    )
    async def timeline(
        subject: Annotated[str, SUBJECT], key: Annotated[ApiKey, auditor]
    ) -> HTMLResponse:
        def build() -> str:
            with services.audit_lock:
                checkpoint = services.audit.tree.latest_checkpoint()
                entries = proven_entries(
                    subject=subject,
                    store=services.audit.store,
                    tree=services.audit.tree,
                    checkpoint=checkpoint,
                )
            if not entries:
                raise ApiProblemError(
                    404, "unknown-subject", "No event was ever recorded for this person"
                )
            status, trusted_root = _checkpoint_status(checkpoint, services)
            catalog = services.ledger.catalog()
            return render_timeline(
                subject=subject,
                entries=entries,
                checkpoint=checkpoint,
                checkpoint_status=status,
                trusted_root=trusted_root,
                policies={v: p.text_sha256 for v, p in catalog.policies.items()},
                origin=services.audit.signer.name,
            )

        return HTMLResponse(await run_in_threadpool(build), headers=PAGE_HEADERS)

    return router
