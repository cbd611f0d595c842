"""Kafka brokers of one test's own, from the jars scripts/services.sh fetched: tests kill them.

`PrivateBroker` is one KRaft node (broker and controller); `PrivateCluster` is three (or N) of
them, one quorum of voters, as `scripts/services.sh up --brokers 3` starts.
"""

import subprocess
import time
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from tests.helpers import kill_session

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "scripts" / "kafka" / "server.properties.template"
LOG_CONFIG = ROOT / "scripts" / "kafka" / "log4j2.xml"
READY_TIMEOUT_S = 120.0


def _answers(bootstrap: str, *, brokers: int = 1) -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3_000)
    except KafkaError:
        return False
    try:
        return len(admin.describe_cluster()["brokers"]) >= brokers
    except KafkaError:
        return False
    finally:
        admin.close()


class PrivateBroker:
    """One KRaft node on fixed ports and its own data directory.

    `kill` and `start` keep the ports and the data, as a broker restarted in place does.
    """

    def __init__(
        self,
        *,
        libs: Path,
        home: Path,
        port: int,
        controller_port: int,
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        heap: str = "512m",
    ) -> None:
        self.node_id = node_id
        self.bootstrap = f"127.0.0.1:{port}"
        self._home = home
        self._libs = libs
        self._heap = heap
        self._process: subprocess.Popen[bytes] | None = None
        (home / "data").mkdir(parents=True)
        (home / "logs").mkdir()
        self._config = home / "server.properties"
        nodes = 1 if voters is None else voters.count("@")
        replication = min(3, nodes)
        fills = {
            "@NODE_ID@": str(node_id),
            "@VOTERS@": voters or f"{node_id}@127.0.0.1:{controller_port}",
            "@BROKER_PORT@": str(port),
            "@CONTROLLER_PORT@": str(controller_port),
            "@REPLICATION@": str(replication),
            "@MIN_ISR@": "2" if replication >= 3 else "1",
            "@DATA_DIR@": str(home / "data"),
        }
        text = TEMPLATE.read_text(encoding="utf-8")
        for placeholder, value in fills.items():
            text = text.replace(placeholder, value)
        self._config.write_text(text, encoding="utf-8")
        cluster = cluster_id or self._java("kafka.tools.StorageTool", "random-uuid").strip()
        self._java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(self._config))

    def _command(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            "-Xms64m",
            f"-Xmx{self._heap}",
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

    def launch(self) -> None:
        """Start the JVM without waiting for it to answer (a quorum's nodes start together)."""
        log = (self._home / "logs" / "stdout.log").open("ab")
        self._process = subprocess.Popen(
            self._command("kafka.Kafka", str(self._config)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def wait_ready(self, *, brokers: int = 1) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _answers(self.bootstrap, brokers=brokers):
            if not self.running or time.monotonic() > deadline:
                msg = f"private broker did not start; see {self._home / 'logs'}"
                raise RuntimeError(msg)
            time.sleep(0.5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crashed broker."""
        kill_session(self._process)
        self._process = None


class PrivateCluster:
    """N KRaft nodes, each a broker and a controller voter, with small heaps (2 cores for all)."""

    def __init__(self, *, libs: Path, home: Path, nodes: int = 3) -> None:
        from tests.conftest import free_port  # noqa: PLC0415 - conftest imports this module

        ports = [(free_port(), free_port()) for _ in range(nodes)]
        voters = ",".join(f"{n + 1}@127.0.0.1:{c}" for n, (_, c) in enumerate(ports))
        home.mkdir(parents=True, exist_ok=True)
        cluster_id = subprocess.run(
            [
                "java",
                f"-Dlog4j2.configurationFile={LOG_CONFIG}",
                f"-Dkafka.logs.dir={home}",
                "-cp",
                f"{libs}/*",
                "kafka.tools.StorageTool",
                "random-uuid",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.strip()
        self.brokers = [
            PrivateBroker(
                libs=libs,
                home=home / f"node-{n + 1}",
                port=port,
                controller_port=controller,
                node_id=n + 1,
                voters=voters,
                cluster_id=cluster_id,
                heap="256m",
            )
            for n, (port, controller) in enumerate(ports)
        ]
        self.bootstrap = ",".join(b.bootstrap for b in self.brokers)

    def start(self) -> None:
        for broker in self.brokers:
            broker.launch()
        for broker in self.brokers:
            broker.wait_ready(brokers=len(self.brokers))

    def node(self, node_id: int) -> PrivateBroker:
        return self.brokers[node_id - 1]

    def _admin(self) -> KafkaAdminClient:
        live = ",".join(b.bootstrap for b in self.brokers if b.running)
        return KafkaAdminClient(bootstrap_servers=live, request_timeout_ms=5_000)

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The node leading ``partition`` of ``topic`` now."""
        admin = self._admin()
        try:
            partitions = admin.describe_topics([topic])[0]["partitions"]
        finally:
            admin.close()
        leader: int = next(p["leader_id"] for p in partitions if p["partition_index"] == partition)
        return leader

    def active_controller(self) -> int:
        """The quorum's leader: the node acting as the cluster's controller."""
        admin = self._admin()
        try:
            quorum: dict[str, Any] = admin.describe_metadata_quorum()
        finally:
            admin.close()
        leader: int = quorum["topics"][0]["partitions"][0]["leader_id"]
        return leader

    def wait_in_sync(self, topics: list[str], *, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Wait until every partition of ``topics`` has all its replicas in sync."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                admin = self._admin()
                try:
                    described = admin.describe_topics(topics)
                finally:
                    admin.close()
                if all(
                    set(p["isr_nodes"]) == set(p["replica_nodes"])
                    for topic in described
                    for p in topic["partitions"]
                ):
                    return True
            except KafkaError:
                pass
            time.sleep(0.5)
        return False

    def kill(self) -> None:
        for broker in self.brokers:
            broker.kill()
