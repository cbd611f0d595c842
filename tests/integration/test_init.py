"""`consent-ledger init` in production, as the compose stack's one-shot `init` runs it: the
tables in PostgreSQL, and one admin key however often it runs."""

import base64
import json
import os
import subprocess

import psycopg
import pytest
from psycopg import sql

from tests.cli import CLI, clean_env
from tests.topics import TOPIC_KEYS_SETTING

pytestmark = pytest.mark.integration


def _secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_init_in_production_makes_the_tables_and_one_admin_key(
    pg_dsn: str, kafka_bootstrap: str, schema: str
) -> None:
    env = clean_env(
        CONSENT_MODE="production",
        CONSENT_PG_DSN=pg_dsn,
        CONSENT_PG_SCHEMA=schema,
        CONSENT_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CONSENT_SUBJECT_SECRET=_secret(),
        CONSENT_MASTER_KEY=_secret(),
        CONSENT_AUDIT_SIGNING_KEY=_secret(),
        CONSENT_UNSUBSCRIBE_KEYS=f"u1:{_secret()}",
        CONSENT_TOPIC_KEYS=TOPIC_KEYS_SETTING,
        CONSENT_PUBLIC_URL="https://mail.example.org",
    )
    outputs = [
        subprocess.run(
            [CLI, "init"], env=env, capture_output=True, text=True, check=True, timeout=120
        ).stdout
        for _ in range(2)
    ]

    assert json.loads(outputs[0])["key"].startswith("clk_")
    assert json.loads(outputs[1])["key"] is None
    with psycopg.connect(pg_dsn) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s",
                (schema,),
            )
        }
        keys = conn.execute(
            sql.SQL("select count(*) from {}.api_keys").format(sql.Identifier(schema))
        ).fetchone()
    assert {"ledger_events", "api_keys", "consent_state", "suppression"} <= tables
    assert keys == (1,)
