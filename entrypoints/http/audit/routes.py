"""The auditors' pages: find a person, read their dossier, download it (audit scope).

``GET /audit/`` shows three forms; each ``POST /audit/`` finds a person by address (hashed
here, so it never reaches a URL or a log), by subject or by rights-request id, and answers
``303`` to their dossier. ``GET /audit/persons/{subject}`` is the dossier; its downloads are
``timeline.csv``, ``bundle.zip`` (the proof bundle and a verifier) and ``dossier.pdf``.
"""

import re
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from access.apikeys import ApiKey, Scope
from entrypoints.http.audit.dossier import Dossier, build_dossier
from entrypoints.http.audit.downloads import bundle_zip, timeline_csv
from entrypoints.http.audit.pdf import dossier_pdf
from entrypoints.http.audit.policies import policy_router
from entrypoints.http.auth import Authenticator
from entrypoints.http.forms import Form
from entrypoints.http.history import SUBJECT, SUBJECT_PATTERN
from entrypoints.http.pages import PAGE_HEADERS, Pages
from entrypoints.http.pages.i18n import N_
from entrypoints.http.problems import documented
from entrypoints.http.services import ApiServices
from ledger.domain.errors import InvalidAddressError

__all__ = ["auditor_router"]

_SUBJECT = re.compile(SUBJECT_PATTERN)
NOT_FOUND = N_("No event was ever recorded for this person.")


def auditor_router(services: ApiServices, auth: Authenticator, pages: Pages) -> APIRouter:
    router = APIRouter(
        tags=["auditor"],
        responses=documented(401, 403, 404, 422, 503),
    )
    auditor = Depends(auth.require(Scope.AUDIT, browser=True))

    def search_page(request: Request, message: str | None, status: int) -> HTMLResponse:
        lang = pages.language(request)
        text = None if message is None else pages.gettext(lang, message)
        return pages.render(request, "audit/search.html", {"message": text}, status_code=status)

    @router.get("/audit/", response_class=HTMLResponse, summary="Find a person (HTML)")
    def search(request: Request, key: Annotated[ApiKey, auditor]) -> HTMLResponse:
        return search_page(request, None, 200)

    @router.post(
        "/audit/",
        response_class=HTMLResponse,
        summary="Find a person by address, subject or rights-request id (HTML form)",
        responses={303: {"description": "The person's dossier"}},
    )
    async def find(
        request: Request,
        key: Annotated[ApiKey, auditor],
        fields: Form,
    ) -> Response:
        form = dict(fields)
        subject, problem = await run_in_threadpool(_subject_of, services, form)
        asked = form.get("lang", "")
        lang = asked if asked in pages.catalogs.languages else pages.language(request)
        if subject is None:
            message = pages.gettext(lang, problem or NOT_FOUND)
            page = pages.render_text(
                lang, "audit/search.html", {"message": message}, path="/audit/"
            )
            status = 404 if problem is None else 422
            return HTMLResponse(
                page, status_code=status, headers={**PAGE_HEADERS, "Content-Language": lang}
            )
        return RedirectResponse(
            f"/audit/persons/{quote(subject)}?lang={quote(lang)}",
            status_code=303,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    def of_a_person(
        suffix: str,
        summary: str,
        answer: Callable[[Request, str, Dossier, ApiKey], Response],
        media: str | None = None,
    ) -> None:
        """``GET /audit/persons/{subject}<suffix>``: ``answer`` from the person's dossier, or
        the search page saying nobody is known by that subject."""

        @router.get(
            f"/audit/persons/{{subject}}{suffix}",
            response_class=HTMLResponse if not suffix else Response,
            summary=summary,
            name=f"dossier{suffix.replace('/', '_').replace('.', '_')}",
            responses=(
                {}
                if media is None
                else {
                    200: {
                        "description": summary,
                        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
                    }
                }
            ),
        )
        async def route(
            request: Request, subject: Annotated[str, SUBJECT], key: Annotated[ApiKey, auditor]
        ) -> Response:
            lang = pages.language(request)
            found = await run_in_threadpool(
                build_dossier, services, pages, lang=lang, subject=subject
            )
            if found is None:
                return search_page(request, NOT_FOUND, 404)
            return await run_in_threadpool(answer, request, lang, found, key)

    of_a_person(
        "",
        "A person's dossier: status, timeline, evidence, proofs (HTML)",
        lambda request, _lang, found, _key: pages.render(
            request, "audit/dossier.html", {"d": found}
        ),
    )

    def download(
        name: str, media: str, make: Callable[[Pages, str, Dossier, ApiKey], bytes]
    ) -> None:
        def answer(request: Request, lang: str, found: Dossier, key: ApiKey) -> Response:
            return Response(
                make(pages, lang, found, key),
                media_type=media,
                headers={
                    **PAGE_HEADERS,
                    "Content-Language": lang,
                    "Content-Disposition": f'attachment; filename="{found.subject[:16]}-{name}"',
                },
            )

        of_a_person(f"/{name}", f"The person's dossier as {name}", answer, media.partition(";")[0])

    download("timeline.csv", "text/csv; charset=utf-8", timeline_csv)
    download("bundle.zip", "application/zip", bundle_zip(services))
    download("dossier.pdf", "application/pdf", dossier_pdf)
    router.include_router(policy_router(services, auth, pages))
    return router


def _subject_of(services: ApiServices, form: dict[str, str]) -> tuple[str | None, str | None]:
    """The subject the form names (None when nobody), or a message when the form is wrong."""
    address = form.get("address", "").strip()
    request_id = form.get("request_id", "").strip()
    subject: str | None = form.get("subject", "").strip()
    problem: str | None = None
    if address:
        try:
            subject = services.hasher.subject_for(address)
        except InvalidAddressError:
            problem = N_("This is not an email address the ledger can take.")
    elif request_id:
        subject, problem = _request_subject(services, request_id)
    elif not subject:
        problem = N_("Fill in one of the fields.")
    elif not _SUBJECT.match(subject):
        problem = N_("A subject is made of letters, digits and . _ : @ - only.")
    if problem is not None or not subject or not services.ledger.history(subject):
        return None, problem
    return subject, None


def _request_subject(services: ApiServices, request_id: str) -> tuple[str | None, str | None]:
    try:
        UUID(request_id)
    except ValueError:
        return None, N_("A rights request id looks like 8c7e0f2a-1b3d-4e5f-9a6b-7c8d9e0f1a2b.")
    return services.request_subject(request_id), None
