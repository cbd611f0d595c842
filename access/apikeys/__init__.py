"""API keys and their scopes: one store interface, a SQLite and a PostgreSQL adapter."""

from access.apikeys.base import ApiKey, ApiKeyStore, Scope
from access.apikeys.postgres import PostgresApiKeyStore
from access.apikeys.sqlite import SQLiteApiKeyStore

__all__ = ["ApiKey", "ApiKeyStore", "PostgresApiKeyStore", "SQLiteApiKeyStore", "Scope"]
