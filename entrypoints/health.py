"""Health of the storage a process depends on, as reported by ``GET /healthz``."""

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from entrypoints.settings import Mode, Settings

PG_CONNECT_TIMEOUT_S = 2
HEALTH_APPLICATION_NAME = "consent-ledger-health"
"""How the probe's connection shows in pg_stat_activity."""


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


def postgres_probe(
    dsn: str, *, application_name: str = HEALTH_APPLICATION_NAME
) -> Callable[[], None]:
    """Asks the server through one kept connection, opened again when it broke.

    A connection per probe made ``/healthz`` cost a PostgreSQL backend start, which a
    monitoring system polling often, or a load balancer, turns into real load.
    """
    held: list[psycopg.Connection[Any]] = []
    lock = threading.Lock()

    def probe() -> None:
        with lock:
            if held and not held[0].closed:
                try:
                    held[0].execute("select 1").fetchone()
                    return
                except psycopg.Error:
                    held[0].close()
            held.clear()
            held.append(
                psycopg.connect(
                    dsn,
                    connect_timeout=PG_CONNECT_TIMEOUT_S,
                    autocommit=True,
                    application_name=application_name,
                )
            )
            held[0].execute("select 1").fetchone()

    return probe


def health_check(settings: Settings) -> HealthCheck:
    if settings.mode is Mode.PRODUCTION:
        if not settings.pg_dsn:
            msg = "production mode needs CONSENT_PG_DSN"
            raise ValueError(msg)
        return HealthCheck(mode=settings.mode, probe=postgres_probe(settings.pg_dsn))
    return HealthCheck(mode=settings.mode, probe=sqlite_probe(settings.sqlite_path))
