"""Shared fixtures: the real servers started by scripts/services.sh, named by the environment."""

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.broker import PrivateBroker

SERVICES_HINT = (
    "start them with `scripts/services.sh up && source var/services/env`, or `make test`"
)


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: integration tests need the real server ({SERVICES_HINT})")
    return value


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the real PostgreSQL server the test command started (never skipped)."""
    return _required_env("CONSENT_PG_DSN")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of the real Kafka broker the test command started (never skipped)."""
    return _required_env("CONSENT_KAFKA_BOOTSTRAP")


@pytest.fixture
def schema(pg_dsn: str) -> Iterator[str]:
    """A new PostgreSQL schema for this test; dropped after it, with every schema whose name
    starts with it (a rebuild's staging schema, a test's reference tables)."""
    name = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select nspname from pg_namespace where starts_with(nspname, %s)", (name,)
        ).fetchall()
        for (found,) in rows:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(found)))


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses: topics, groups and schemas are shared across a run."""
    return f"t_{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """A broker only this test uses, so that it may kill and restart it."""
    libs = Path(_required_env("KAFKA_TEST_LIBS"))
    controller = free_port()
    port = free_port()
    while port == controller:
        port = free_port()
    broker = PrivateBroker(
        libs=libs, home=tmp_path_factory.mktemp("broker"), port=port, controller_port=controller
    )
    broker.start()
    yield broker
    broker.kill()
