"""A Kafka broker of one test's own, from the jars scripts/services.sh fetched: tests kill it."""

import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from tests.helpers import kill_session

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "scripts" / "kafka" / "server.properties.template"
LOG_CONFIG = ROOT / "scripts" / "kafka" / "log4j2.xml"
READY_TIMEOUT_S = 90.0


class PrivateBroker:
    """A single-node KRaft broker on fixed ports and its own data directory.

    `kill` and `start` keep the ports and the data, as a broker restarted in place does.
    """

    def __init__(self, *, libs: Path, home: Path, port: int, controller_port: int) -> None:
        self.bootstrap = f"127.0.0.1:{port}"
        self._home = home
        self._libs = libs
        self._process: subprocess.Popen[bytes] | None = None
        (home / "data").mkdir(parents=True)
        (home / "logs").mkdir()
        self._config = home / "server.properties"
        self._config.write_text(
            TEMPLATE.read_text(encoding="utf-8")
            .replace("@BROKER_PORT@", str(port))
            .replace("@CONTROLLER_PORT@", str(controller_port))
            .replace("@DATA_DIR@", str(home / "data")),
            encoding="utf-8",
        )
        cluster = self._java("kafka.tools.StorageTool", "random-uuid").strip()
        self._java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(self._config))

    def _command(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            "-Xms128m",
            "-Xmx512m",
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            f"-Dkafka.logs.dir={self._home / 'logs'}",
            "-cp",
            f"{self._libs}/*",
            main,
            *args,
        ]

    def _java(self, main: str, *args: str) -> str:
        return subprocess.run(
            self._command(main, *args), check=True, capture_output=True, text=True, timeout=120
        ).stdout

    def start(self) -> None:
        log = (self._home / "logs" / "stdout.log").open("ab")
        self._process = subprocess.Popen(
            self._command("kafka.Kafka", str(self._config)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                msg = f"private broker did not start; see {self._home / 'logs'}"
                raise RuntimeError(msg)
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3_000)
        except KafkaError:
            return False
        try:
            admin.describe_cluster()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crashed broker."""
        kill_session(self._process)
        self._process = None
