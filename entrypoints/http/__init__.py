"""The HTTP edge: the only place where errors become status codes."""

from entrypoints.http.app import create_app

__all__ = ["create_app"]
