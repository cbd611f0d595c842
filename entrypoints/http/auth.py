"""API keys at the HTTP edge: who is calling, and may they call this endpoint."""

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from access.apikeys import ApiKey, ApiKeyStore, Scope
from entrypoints.http.problems import ApiProblemError

# Declared for the OpenAPI document; the header is read below, whichever form it takes.
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer clk_...`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def _token(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        # Browsers (the auditors' page) send the key as the Basic password, user name ignored.
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return headers.get("x-api-key")


class Authenticator:
    """Turns a request's key into an `ApiKey` holding the scope an endpoint needs."""

    def __init__(self, keys: ApiKeyStore) -> None:
        self.keys = keys

    def key_of(self, headers: Mapping[str, str]) -> ApiKey | None:
        """The active key the request's headers carry, if any (scopes not checked)."""
        token = _token(headers)
        return self.keys.authenticate(token) if token else None

    def require(self, *any_of: Scope, browser: bool = False) -> Callable[..., Awaitable[ApiKey]]:
        """A dependency: the caller's key, if it holds one of ``any_of``; else 401 or 403."""
        challenge = 'Basic realm="consent-ledger audit"' if browser else "Bearer"

        # Async: a key is answered from memory (see `ApiKeyStore.authenticate`) nearly always,
        # and a sync dependency would cost every request a hop to the thread pool.
        async def dependency(
            request: Request,
            _bearer: object = Depends(bearer),
            _header: object = Depends(api_key_header),
        ) -> ApiKey:
            key = self.key_of(request.headers)
            if key is None:
                raise ApiProblemError(
                    401,
                    "unauthenticated",
                    "A valid API key is needed",
                    detail="send Authorization: Bearer <key>",
                    headers={"WWW-Authenticate": challenge},
                )
            if not key.scopes & set(any_of):
                raise ApiProblemError(
                    403,
                    "forbidden",
                    "This API key lacks the scope of this endpoint",
                    detail="needs one of: " + ", ".join(sorted(any_of)),
                )
            return key

        return dependency
