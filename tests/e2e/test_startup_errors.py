"""A production process that cannot start says, in one line, which setting to fix, and exits 2.

The followers are the exception: they wait for PostgreSQL at start, as they wait out an outage.
"""

import base64
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli import CLI, clean_env, run_cli
from tests.conftest import free_port

SECRET = base64.b64encode(b"s" * 32).decode()
FOLLOWER_WAIT_S = 3.0


def _production(pg_dsn: str, **overrides: str) -> dict[str, str]:
    settings = {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": pg_dsn,
        "CONSENT_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CONSENT_SUBJECT_SECRET": SECRET,
        "CONSENT_MASTER_KEY": SECRET,
        "CONSENT_AUDIT_SIGNING_KEY": SECRET,
        "CONSENT_UNSUBSCRIBE_KEYS": f"k1:{SECRET}",
        "CONSENT_TOPIC_KEYS": f"t1:{SECRET}",
        "CONSENT_PUBLIC_URL": "https://mail.example.org",
    }
    return settings | overrides


def _unreachable() -> str:
    return f"postgresql://nobody:hunter2@127.0.0.1:{free_port()}/consent"


@pytest.mark.parametrize(
    ("command", "setting", "value"),
    [
        (("serve", "--port", "0"), "CONSENT_PG_DSN", None),
        (("grant", "--subject", "p1", "--purpose", "n", "--policy-version", "v"),
         "CONSENT_PG_DSN", None),
        (("keys", "list"), "CONSENT_PG_DSN", None),
        (("serve", "--port", "0"), "CONSENT_PG_SCHEMA", "no_such_schema"),
        (("audit", "checkpoint"), "CONSENT_PG_SCHEMA", "no_such_schema"),
        (("serve", "--port", "0"), "CONSENT_MASTER_KEY", base64.b64encode(b"k" * 16).decode()),
        # kafka-python's own lines about its failed bootstrap came before ours.
        (("relay",), "CONSENT_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}"),
    ],
)  # fmt: skip
def test_a_process_that_cannot_start_says_which_setting_in_one_line_and_exits_2(
    tmp_path: Path, pg_dsn: str, command: tuple[str, ...], setting: str, value: str | None
) -> None:
    env = _production(pg_dsn, **{setting: _unreachable() if value is None else value})

    result = run_cli(tmp_path, *command, **env)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cannot start: ")
    assert setting in lines[0]
    assert "hunter2" not in result.stderr


def test_a_follower_waits_for_the_database_at_start_instead_of_stopping(
    tmp_path: Path, pg_dsn: str
) -> None:
    env = clean_env(
        CONSENT_DATA_DIR=str(tmp_path), **_production(pg_dsn, CONSENT_PG_DSN=_unreachable())
    )
    with subprocess.Popen(
        [CLI, "consume"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as follower:
        try:
            time.sleep(FOLLOWER_WAIT_S)
            assert follower.poll() is None
        finally:
            follower.terminate()
            _, stderr = follower.communicate(timeout=30)
    assert "database unavailable at start" in stderr
