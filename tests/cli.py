"""The `consent-ledger` command run as a user runs it: a process of its own, settings explicit."""

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "consent-ledger")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without its ``CONSENT_*`` settings, then ``settings``.

    The developer's own settings (a DSN, a mode) must not leak into what a test runs.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env.update(settings)
    return env


def run_cli(data_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`consent-ledger ARGS` on the embedded ledger in ``data_dir``, its output captured."""
    return subprocess.run(
        [CLI, *args],
        env=clean_env(CONSENT_DATA_DIR=str(data_dir), **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_output(data_dir: Path, *args: str) -> str:
    """What `consent-ledger ARGS` prints; it must succeed (a failure shows its stderr)."""
    result = run_cli(data_dir, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def api_key_headers(env: dict[str, str], *scopes: str) -> dict[str, str]:
    """The headers of a new API key with ``scopes``, made by `consent-ledger keys create`."""
    created = subprocess.run(
        [CLI, "keys", "create", "--name", "test"]
        + [arg for scope in scopes for arg in ("--scope", scope)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}
