"""``GET /audit/policies/{version}``: a privacy-policy version as published, for auditors."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse

from access.apikeys import ApiKey, Scope
from entrypoints.http.auth import Authenticator
from entrypoints.http.pages import Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.services import ApiServices

__all__ = ["policy_router"]

VERSION = Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="A policy version label.")
UNKNOWN = N_("No privacy policy version has this name.")


def policy_router(services: ApiServices, auth: Authenticator, pages: Pages) -> APIRouter:
    router = APIRouter()
    auditor = Depends(auth.require(Scope.AUDIT, browser=True))

    @router.get(
        "/audit/policies/{version}",
        response_class=HTMLResponse,
        summary="A privacy-policy version: its hash, its text when kept (HTML)",
    )
    def policy(
        request: Request, version: Annotated[str, VERSION], key: Annotated[ApiKey, auditor]
    ) -> HTMLResponse:
        published = services.ledger.catalog().policies.get(version)
        if published is None:
            message = pages.gettext(pages.language(request), UNKNOWN)
            return pages.render(request, "audit/search.html", {"message": message}, status_code=404)
        context = {"policy": published, "text": None, "text_matches": False, "diff": None}
        return pages.render(request, "audit/policy.html", context)

    return router
