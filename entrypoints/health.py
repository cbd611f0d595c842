"""Health of the storage a process depends on, as reported by ``GET /healthz``."""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from entrypoints.settings import Mode, Settings

PG_CONNECT_TIMEOUT_S = 2


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Whether the process can serve, with non-personal details for operators."""

    ok: bool
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A named probe of the store; ``report`` never raises."""

    mode: Mode
    probe: Callable[[], None]

    def report(self) -> HealthReport:
        try:
            self.probe()
        except (OSError, sqlite3.Error, psycopg.Error) as error:
            return HealthReport(
                ok=False, details={"mode": self.mode.value, "store": type(error).__name__}
            )
        return HealthReport(ok=True, details={"mode": self.mode.value, "store": "ok"})


def sqlite_probe(path: Path) -> Callable[[], None]:
    def probe() -> None:
        with sqlite3.connect(path, timeout=PG_CONNECT_TIMEOUT_S) as connection:
            connection.execute("select 1").fetchone()

    return probe


def postgres_probe(dsn: str) -> Callable[[], None]:
    def probe() -> None:
        with psycopg.connect(dsn, connect_timeout=PG_CONNECT_TIMEOUT_S) as connection:
            connection.execute("select 1").fetchone()

    return probe


def health_check(settings: Settings) -> HealthCheck:
    if settings.mode is Mode.PRODUCTION:
        if not settings.pg_dsn:
            msg = "production mode needs CONSENT_PG_DSN"
            raise ValueError(msg)
        return HealthCheck(mode=settings.mode, probe=postgres_probe(settings.pg_dsn))
    return HealthCheck(mode=settings.mode, probe=sqlite_probe(settings.sqlite_path))
