"""``GET /audit/policies/{version}``: a privacy-policy version as published, for auditors."""

import difflib
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from access.apikeys import ApiKey, Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.services import ApiServices
from schemas import policy_text_sha256

__all__ = ["changes", "policy_router"]

VERSION = Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="A policy version label.")
UNKNOWN = N_("No privacy policy version has this name.")


def changes(old: str, new: str | None) -> list[tuple[str, str]]:
    """Line by line, what ``new`` adds to ``old`` and removes from it, and what stays."""
    kinds = {"+ ": "added", "- ": "removed", "  ": "same"}
    return [
        (kinds[line[:2]], line[2:])
        for line in difflib.ndiff(old.splitlines(), (new or "").splitlines())
        if line[:2] in kinds
    ]


def policy_router(services: ApiServices, auth: Authenticator, pages: Pages) -> APIRouter:
    router = APIRouter()
    auditor = Depends(auth.require(Scope.AUDIT, browser=True))

    @router.get(
        "/audit/policies/{version}",
        response_class=HTMLResponse,
        summary="A privacy-policy version: its hash, its text when kept (HTML)",
    )
    def policy(
        request: Request,
        version: Annotated[str, VERSION],
        key: Annotated[ApiKey, auditor],
        compare: Annotated[
            str | None,
            Query(
                alias="from",
                max_length=64,
                description="Compare with this version (a label).",
                examples=["2026-10"],
            ),
        ] = None,
    ) -> HTMLResponse:
        published = services.ledger.catalog().policies.get(version)
        if published is None:
            message = pages.gettext(pages.language(request), UNKNOWN)
            return pages.render(request, "audit/search.html", {"message": message}, status_code=404)
        catalog = services.ledger.catalog()
        ordered = sorted(catalog.policies.values(), key=lambda p: (p.effective_at, p.version))
        before = [p for p in ordered if p.effective_at < published.effective_at and p.text]
        chosen = catalog.policies.get(compare) if compare else (before[-1] if before else None)
        previous = chosen if chosen is not None and chosen.text and published.text else None
        context = {
            "policy": published,
            "text": published.text,
            "text_matches": published.text is not None
            and policy_text_sha256(published.text) == published.text_sha256,
            "previous": None if previous is None else previous.version,
            "diff": None if previous is None else changes(previous.text or "", published.text),
            "others": [p.version for p in ordered if p.version != version],
            "announcements": [a for a in catalog.state.announcements if version in a.versions],
        }
        return pages.render(request, "audit/policy.html", context)

    return router
