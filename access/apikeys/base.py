"""API keys of the HTTP API: scoped, stored hashed, revocable; the database-free part.

A key reads ``clk_<key id>_<secret>``. Only SHA-256 of the 256-bit random secret is stored: a
slow password hash buys nothing for a secret nobody chose, and checking stays cheap at
thousands of requests per second. The key id, which is not secret, finds the row.
"""

import base64
import hashlib
import hmac
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["DDL", "ApiKey", "ApiKeyStore", "Scope"]

PREFIX = "clk"
CACHE_TTL_S = 5.0
CACHE_MAX = 10_000
"""How long an answer about a key is reused: a revocation takes effect within this time."""

DDL = """
create table if not exists {table} (
    key_id text primary key,
    name text not null,
    scopes text not null,
    secret_sha256 text not null,
    created_at text not null,
    revoked_at text
)
"""
"""The key table, the same on both databases (times as ISO 8601 text)."""


class Scope(StrEnum):
    """What a key may do; a request needs a key holding the scope of its endpoint."""

    WRITE = "write"
    CHECK = "check"
    AUDIT = "audit"
    ADMIN = "admin"
    LINKS = "links"
    """Issue the unsubscribe and preference links of messages (``POST /v1/links``)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeyStore(ABC):
    """The operations; subclasses run the statements on their database."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _run(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run ``query`` (``{table}`` and ``%s`` placeholders); its rows, if any."""

    @abstractmethod
    def migrate(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def create(self, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
        """A new key and its token; the token is shown once and never stored."""
        wanted = frozenset(scopes)
        if not wanted:
            msg = "a key needs at least one scope"
            raise ValueError(msg)
        key_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        now = datetime.now(UTC)
        self._run(
            "insert into {table} (key_id, name, scopes, secret_sha256, created_at) "
            "values (%s, %s, %s, %s, %s)",
            (key_id, name, ",".join(sorted(wanted)), _digest(secret), now.isoformat()),
        )
        return ApiKey(key_id, name, wanted, now), f"{PREFIX}_{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        rows = self._run(
            "select key_id, name, scopes, created_at, revoked_at from {table} "
            "order by created_at, key_id",
            (),
        )
        return [_key(*row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when no active key has that id."""
        rows = self._run(
            "update {table} set revoked_at = %s where key_id = %s and revoked_at is null "
            "returning key_id",
            (datetime.now(UTC).isoformat(), key_id),
        )
        with self._lock:
            self._cache.clear()
        return bool(rows)

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key this token is, or None (unknown, malformed, wrong secret, revoked)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now - hit[0] < CACHE_TTL_S:
            return hit[1]
        key = self._lookup(token)
        with self._lock:
            if len(self._cache) > CACHE_MAX:
                self._cache.clear()
            self._cache[token] = (now, key)
        return key

    def _lookup(self, token: str) -> ApiKey | None:
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        rows = self._run(
            "select key_id, name, scopes, created_at, revoked_at, secret_sha256 from {table} "
            "where key_id = %s",
            (key_id,),
        )
        if not rows:
            return None
        *fields, stored = rows[0]
        if not hmac.compare_digest(str(stored), _digest(secret)):
            return None
        key = _key(*fields)
        return key if key.active else None


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _key(key_id: Any, name: Any, scopes: Any, created_at: Any, revoked_at: Any) -> ApiKey:
    return ApiKey(
        key_id=str(key_id),
        name=str(name),
        scopes=frozenset(Scope(s) for s in str(scopes).split(",") if s),
        created_at=_time(created_at),
        revoked_at=None if revoked_at is None else _time(revoked_at),
    )
