"""The `consent-ledger` command run as a user runs it: a process of its own, settings explicit."""

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
