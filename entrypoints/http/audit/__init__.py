"""The auditors' pages: search, a person's dossier and its downloads, policy versions."""

from entrypoints.http.audit.routes import auditor_router

__all__ = ["auditor_router"]
