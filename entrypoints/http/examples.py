"""An example of every field and parameter of the API, by name, for the OpenAPI document.

``Schema.field`` names one schema's field where the same name means something else elsewhere.
A test validates every example against the schema of the field it illustrates, and another
fails when a field or parameter has none: a new field gets its example here.
"""

from typing import Any

SUBJECT = "3f1c9a6e2b7d4c58a0e9f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
WHEN = "2026-12-07T09:30:00Z"
REQUEST_ID = "9a3c2f0e-3d3b-4d5e-8c6f-0a1b2c3d4e5f"
WEBHOOK_ID = "wh_0c7a1b2d3e4f5a6b7c8d9e0f1a2b3c4d"
B64_HASH = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
CHECKPOINT = (
    "consent-ledger\n42\nn4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n\n"
    "\u2014 consent-ledger Az3grlYBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
)
VERIFIER_KEY = "consent-ledger+0c7a1b2d+AXeQ9m2pYBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
LOGGED_EVENT = {
    "event_id": "5b8e2d1c-0f3a-4e6b-9c7d-1a2b3c4d5e6f",
    "event_type": "ConsentGranted",
    "position": 17,
    "occurred_at": WHEN,
    "recorded_at": WHEN,
    "source": "web_form",
    "evidence": {"form_id": "signup-footer"},
}
STORED_EVENT = {
    "event_id": "5b8e2d1c-0f3a-4e6b-9c7d-1a2b3c4d5e6f",
    "event_type": "UnsubscribeClicked",
    "schema_version": 1,
    "subject": SUBJECT,
    "occurred_at": WHEN,
    "recorded_at": WHEN,
    "command_id": "kc1:0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "source": "one_click",
    "actor": "unsubscribe-link",
    "method": "one_click_post",
    "position": 17,
}

FIELD_EXAMPLES: dict[str, Any] = {
    # Commands: the person, the time, the provenance.
    "occurred_at": WHEN,
    "source": "web_form",
    "evidence": {"form_id": "signup-footer", "consent_text_sha256": SHA256},
    "subject": SUBJECT,
    "address": "ann@example.org",
    "personal": {"ip": "192.0.2.4", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
    # The catalog.
    "purpose": "newsletter",
    "purposes": ["newsletter"],
    "legal_basis": "consent",
    "description": "The monthly newsletter",
    "max_age_days": 1095,
    "direct_marketing": True,
    "version": "2026-11",
    "policy_version": "2026-11",
    "text_sha256": SHA256,
    "url": "https://www.example.org/privacy/2026-11",
    "effective_at": "2026-11-01T00:00:00Z",
    "requires_reconsent": False,
    "text": "Politique de confidentialité\n\n1. Qui sommes-nous ? ...",
    "versions": ["2026-11"],
    "announced_at": WHEN,
    # Consents and unsubscribes.
    "channel": "email",
    "double_opt_in": "pending",
    "reason": "user_request",
    "list_id": "weekly-deals",
    "campaign_id": "2026-12-winter-sale",
    "message_id": "<20261207093000.4f2a@mail.example.org>",
    "method": "one_click_post",
    "all_direct_marketing": True,
    "kind": "click",
    # Rights requests.
    "request_id": REQUEST_ID,
    "right": "access",
    "received_at": WHEN,
    "due_at": "2027-01-06T09:30:00Z",
    "outcome": "fulfilled",
    "ExtendRightsRequestRequest.reason": "Records are spread over three systems",
    "ExtendRightsRequestRequest.due_at": "2027-03-06T09:30:00Z",
    # Personal data and evidence.
    "ip": "192.0.2.4",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "page_url": "https://www.example.org/newsletter/signup",
    "note": "Asked by phone to stop the newsletter",
    "PersonalFields.kind": "clear",
    "consent_text_sha256": SHA256,
    "form_id": "signup-footer",
    "form_version": "3",
    "double_opt_in_token_id": "doi-7f3a9c",
    "artefact_sha256": SHA256,
    # Answers to commands and checks.
    "command_id": "signup-42",
    "event_ids": ["5b8e2d1c-0f3a-4e6b-9c7d-1a2b3c4d5e6f"],
    "position": 17,
    "duplicate": False,
    "allowed": False,
    "covered": 17,
    "CheckAnswer.reason": "unsubscribed",
    "CheckAnswer.denied_by": "consent",
    "DecisionAt.reason": "unsubscribed",
    # Health.
    "Health.status": "ok",
    "mode": "embedded",
    "store": "ok",
    # A person's state.
    "consents": [
        {
            "purpose": "newsletter",
            "channel": "email",
            "status": "granted",
            "policy_version": "2026-11",
            "since": WHEN,
        }
    ],
    "status": "granted",
    "since": WHEN,
    "unsubscribed": ["*"],
    "unsubscribed_lists": ["weekly-deals"],
    "objections": [],
    "restrictions": [],
    "accepted_policies": {"2026-11": SHA256},
    "rights_requests": [
        {
            "request_id": REQUEST_ID,
            "right": "access",
            "due_at": "2027-01-06T09:30:00Z",
            "extended": False,
            "outcome": None,
        }
    ],
    "extended": False,
    "RightsRequestState.outcome": None,
    "erasures": 0,
    "last_interaction_at": WHEN,
    # History, proofs and bundles.
    "events": [STORED_EVENT],
    "event": STORED_EVENT,
    "index": 16,
    "entry": "Y29uc2VudC1sZWRnZXItZW50cnkvMQoxNwo=",
    "inclusion_proof": [B64_HASH],
    "consistency_proof": [B64_HASH],
    "format": "consent-ledger-proof-bundle/1",
    "PersonExport.format": "consent-ledger/export/v1",
    "checkpoint": CHECKPOINT,
    "verifier_key": VERIFIER_KEY,
    "entries": [
        {
            "index": 16,
            "entry": "Y29uc2VudC1sZWRnZXItZW50cnkvMQoxNwo=",
            "inclusion_proof": [B64_HASH],
            "event": STORED_EVENT,
        }
    ],
    "leaf_index": 16,
    "tree_size": 42,
    "from": 40,
    "to": 42,
    # Rights requests, export, decision at a time.
    "as_of": WHEN,
    "requests": [
        {
            "request_id": REQUEST_ID,
            "subject": SUBJECT,
            "right": "access",
            "received_at": WHEN,
            "due_at": "2027-01-06T09:30:00Z",
            "extended": False,
            "overdue": False,
        }
    ],
    "summary": {"access": {"open": 1, "overdue": 0}},
    "open": 1,
    "overdue": False,
    "RightCounts.overdue": 0,
    "exported_at": WHEN,
    "erased": False,
    "consent_receipts": [{"record_id": "0f3e8a52-6c1d-5b7e-9a2f-3c4d5e6f7a8b", "state": "active"}],
    "proof_bundle": {"status": "pending", "detail": "no checkpoint has been cut yet"},
    "at": WHEN,
    "as_of_position": 17,
    "consent": {"status": "granted", "policy_version": "2026-11", "since": WHEN, "position": 9},
    "policy": {
        "version": "2026-11",
        "text_sha256": SHA256,
        "url": "https://www.example.org/privacy/2026-11",
        "effective_at": "2026-11-01T00:00:00Z",
        "requires_reconsent": False,
    },
    "grant": LOGGED_EVENT | {"command_id": "kc1:0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
    "deciding_event": LOGGED_EVENT | {"event_type": "UnsubscribeClicked", "source": "one_click"},
    "DecisionAt.deciding_event": LOGGED_EVENT
    | {"event_type": "UnsubscribeClicked", "source": "one_click"},
    # The sender's side: feedback reports and webhooks.
    "report_sha256": SHA256,
    "FeedbackAnswer.kind": "complaint",
    "FeedbackAnswer.status": "recorded",
    "FeedbackAnswer.reason": None,
    "subjects": [SUBJECT],
    "webhook_id": WEBHOOK_ID,
    "NewWebhook.url": "https://crm.example.org/hooks/consent",
    "WebhookAnswer.url": "https://crm.example.org/hooks/consent",
    "CreatedWebhook.url": "https://crm.example.org/hooks/consent",
    "event_types": ["ConsentWithdrawn", "UnsubscribeClicked"],
    "WebhookAnswer.status": "active",
    "CreatedWebhook.status": "active",
    "disabled_reason": None,
    "created_at": WHEN,
    "retrying": False,
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "delivery_id": "msg_0c7a1b2d3e4f5a6b7c8d9e0f1a2b3c4d_5b8e2d1c0f3a4e6b9c7d1a2b3c4d5e6f",
    "event_id": "5b8e2d1c-0f3a-4e6b-9c7d-1a2b3c4d5e6f",
    "event_type": "ConsentWithdrawn",
    "DeliveryAnswer.status": "delivered",
    "attempts": 1,
    "response_status": 200,
    "error": None,
    "last_attempt_at": WHEN,
    "from_position": 17,
    # The catalog's wording for recipients.
    "wording": {
        "fr": {"label": "La lettre mensuelle", "description": "Nos nouveautés, une fois par mois"},
        "en": {"label": "The monthly newsletter", "description": "Our news, once a month"},
    },
    "label": "The monthly newsletter",
    "PurposeWording.description": "Our news, once a month",
    # Problem details.
    "type": "https://consent-ledger.invalid/problems/invalid-field",
    "title": "A field of the request is invalid",
    "Problem.status": 422,
    "detail": "purpose: String should match pattern '^[a-z][a-z0-9_]{1,63}$'",
    "field": "purpose",
    "errors": [
        {"field": "purpose", "reason": "String should match pattern '^[a-z][a-z0-9_]{1,63}$'"}
    ],
    "ProblemField.reason": "String should match pattern '^[a-z][a-z0-9_]{1,63}$'",
}
"""Examples by field name, or by ``Schema.field``."""

PARAMETER_EXAMPLES: dict[str, Any] = {
    "purpose": "newsletter",
    "subject": SUBJECT,
    "address": "ann@example.org",
    "channel": "email",
    "min_position": 17,
    "input": "addresses",
    "overdue": True,
    "at": WHEN,
    "position": 17,
    "size": 42,
    "from": 40,
    "to": 42,
    "token": "AQ.eyJzIjoiM2YxYyJ9.3n9Xc2Vh",
    "webhook_id": WEBHOOK_ID,
    "limit": 100,
    "Idempotency-Key": "signup-42",
    "version": "2026-11",
}
"""Examples of the query, path and header parameters, by name."""


def example_of(schema_name: str, field: str) -> tuple[bool, Any]:
    """Whether the table has an example for ``field`` of ``schema_name``, and which."""
    for key in (f"{schema_name}.{field}", field):
        if key in FIELD_EXAMPLES:
            return True, FIELD_EXAMPLES[key]
    return False, None
