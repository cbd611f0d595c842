"""`consent-ledger init` in production, as the compose stack's one-shot `init` runs it: the
tables in PostgreSQL, and one admin key however often it runs."""

import json
import subprocess

import psycopg
import pytest
from psycopg import sql

from tests.cli import CLI, production_env
from tests.topics import TOPIC_KEYS_SETTING

pytestmark = pytest.mark.integration


def test_init_in_production_makes_the_tables_and_one_admin_key(
    pg_dsn: str, kafka_bootstrap: str, schema: str
) -> None:
    env = production_env(pg_dsn, kafka_bootstrap, schema, TOPIC_KEYS_SETTING)
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
