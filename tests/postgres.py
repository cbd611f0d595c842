"""A PostgreSQL cluster of one test's own, from Debian's binaries: tests restart it."""

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

READY_TIMEOUT_S = 60


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        msg = "PostgreSQL is not installed (scripts/services.sh up installs Debian's postgresql)"
        raise RuntimeError(msg)
    return found[-1].parent


class PrivatePostgres:
    """A throwaway cluster on a fixed port; `restart` keeps the port and the data.

    PostgreSQL refuses to run as root: as root its tools run as the ``postgres`` user, and
    ``home`` must be a directory that user can reach.
    """

    def __init__(self, *, home: Path, port: int) -> None:
        self.port = port
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._bin = _bindir()
        self._data = home / "data"
        self._log = home / "postgres.log"
        self._socket = home / "socket"
        self._socket.mkdir(parents=True)
        self._data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(home, "postgres")
            for path in (self._data, self._socket):
                shutil.chown(path, "postgres")
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=READY_TIMEOUT_S + 30
        )
        if done.returncode != 0:
            msg = f"{tool} exited {done.returncode}: {done.stderr[-1000:]}"
            raise RuntimeError(msg)

    def _ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self._socket} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=on"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-l",
            str(self._log),
            "-w",
            "-t",
            str(READY_TIMEOUT_S),
            "-o",
            options,
            *extra,
            action,
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """Stop (every client disconnected, as a crash-free restart does) and start again."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._ctl("stop", "-m", "fast")

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True
