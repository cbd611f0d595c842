"""PostgreSQL restarted, then down a while, under the relay, the consumer and the sealer.

Each worker must wait, connect again and carry on from its durable state: every stored event
reaches the topic, the projection equals a replay and the audit tree seals the whole ledger.
"""

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from uuid import uuid4

import httpx
import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql
from typer.testing import CliRunner

from consumers.runner import ConsumerConfig, ConsumerRunner
from entrypoints.cli.main import app as cli_app
from ledger.audit.check import verify_ledger
from ledger.audit.store import PostgresTreeStore
from ledger.audit.tlog.note import signer_from_seed
from ledger.domain.aggregates import aggregate_id
from ledger.domain.commands import (
    Command,
    GrantConsent,
    PublishPolicyVersion,
    Unsubscribe,
)
from ledger.domain.errors import StoreUnavailableError
from ledger.domain.identity import SubjectHasher
from ledger.privacy.keystore import PostgresDataKeyStore
from ledger.store.events import LedgerStore, PostgresStoreConfig
from ledger.write.service import Ledger, LedgerConfig
from relay.positions import PostgresPositions
from tests.cli import api_key_headers
from tests.conftest import free_port
from tests.helpers import (
    CATALOG_TIME,
    POLICY_SHA,
    marketing_purpose,
    projection_rows,
    replayed_rows,
    sqlite_ledger,
)
from tests.postgres import PrivatePostgres
from tests.topics import TOPIC_KEYS, TOPIC_KEYS_SETTING, publish_all, sqlite_relay, topic_positions

pytestmark = pytest.mark.integration
T0 = datetime(2026, 7, 1, tzinfo=UTC)
VAR = Path(__file__).resolve().parents[2] / "var"
CLI = str(Path(sys.executable).parent / "consent-ledger")
SEED = bytes(range(32))
ORIGIN = "ledger.test/pg-restart"
COMMANDS = 450
PEOPLE = 200
RESTART_AT = 150
DOWN_AT = 300
DOWN_S = 4.0
CATCH_UP_S = 60.0
WRITE_RETRY_S = 60.0


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    """A cluster of the test's own; its home is reachable by the ``postgres`` user (0755)."""
    home = VAR / f"pgrestart-{uuid4().hex[:8]}"
    home.mkdir(parents=True)
    home.chmod(0o755)
    server = PrivatePostgres(home=home, port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def _postgres_ledger(dsn: str, *, wait_s: float = 5.0) -> Ledger:
    keys = PostgresDataKeyStore(dsn=dsn, master_key=b"k" * 32, wait_s=wait_s)
    keys.migrate()
    ledger = Ledger(
        store=LedgerStore(PostgresStoreConfig(dsn=dsn, pool_size=2, read_wait_s=wait_s)),
        keys=keys,
        hasher=SubjectHasher(secret=b"h" * 32),
        config=LedgerConfig(command_timeout_s=5.0),
    )
    ledger.execute(marketing_purpose("newsletter"))
    ledger.execute(
        PublishPolicyVersion(
            version="v1",
            text_sha256=POLICY_SHA,
            effective_at=CATALOG_TIME,
            purposes=("newsletter",),
            occurred_at=CATALOG_TIME,
        )
    )
    return ledger


def _execute_until_stored(ledger: Ledger, command: Command) -> None:
    """Retry while the database is down; the command's id makes a retry of a write whose
    answer was lost a duplicate, not a second event."""
    deadline = time.monotonic() + WRITE_RETRY_S
    while True:
        try:
            ledger.execute(command)
        except (StoreUnavailableError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        else:
            return


def _commands(n: int) -> list[Command]:
    grant = GrantConsent(subject=f"p{n}", purpose="newsletter", policy_version="v1", occurred_at=T0)
    return [grant, Unsubscribe(subject=f"p{n}", occurred_at=T0)] if n % 4 == 0 else [grant]


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()]
    ends = {tp.partition: int(offset) for tp, offset in probe.end_offsets(partitions).items()}
    probe.close()
    return ends


def _stored_offsets(dsn: str, schema: str, group: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            sql.SQL("select partition, next_offset from {} where consumer_group = %s").format(
                sql.Identifier(schema, "consumer_offsets")
            ),
            (group,),
        ).fetchall()
    return {int(p): int(o) for p, o in rows}


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except psycopg.OperationalError:
            pass
        time.sleep(0.5)
    return False


def _worker(args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(name: str, worker: subprocess.Popen[bytes]) -> int | None:
    """Stop a worker as an operator would; its exit code (None: it had to be killed)."""
    # `audit seal --follow` stops on Ctrl-C; the relay and the consumer on SIGTERM too.
    worker.send_signal(signal.SIGINT if name == "seal" else signal.SIGTERM)
    try:
        return worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return None


def _checkpointed(tree: PostgresTreeStore) -> int:
    latest = tree.latest_checkpoint()
    return 0 if latest is None else latest.size


def _write_through_a_restart_and_an_outage(ledger: Ledger, postgres: PrivatePostgres) -> None:
    """Write on while PostgreSQL restarts, then while it is down ``DOWN_S`` seconds."""
    restart = threading.Thread(target=postgres.restart, name="pg-restart")
    back = threading.Timer(DOWN_S, postgres.start)
    try:
        for n in range(COMMANDS):
            if n == RESTART_AT:
                restart.start()
            if n == DOWN_AT:
                restart.join()
                postgres.stop()
                back.start()
            for command in _commands(n):
                _execute_until_stored(ledger, command)
            time.sleep(0.01)
    finally:
        if restart.is_alive():
            restart.join()
        if back.is_alive():
            back.join()


def _followers(
    postgres: PrivatePostgres, kafka_bootstrap: str, topic: str
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The environment and commands of the relay, a consumer (group ``g-<topic>``) and the
    sealer, as an operator runs them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")}
    env |= {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": postgres.dsn,
        "CONSENT_PG_POOL_SIZE": "2",
        "CONSENT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CONSENT_KAFKA_TOPIC": topic,
        "CONSENT_KAFKA_PARTITIONS": "3",
        "CONSENT_TOPIC_KEYS": TOPIC_KEYS_SETTING,
        "CONSENT_AUDIT_ORIGIN": ORIGIN,
        "CONSENT_AUDIT_SIGNING_KEY": base64.b64encode(SEED).decode(),
        "CONSENT_AUDIT_CHECKPOINT_EVERY_EVENTS": "100",
        "CONSENT_AUDIT_CHECKPOINT_EVERY_SECONDS": "1",
    }
    commands = {
        "relay": ["relay"],
        "consume": ["consume", "--group", f"g-{topic}", "--topic", topic, "--batch", "50"],
        "seal": ["audit", "seal", "--follow"],
    }
    return env, commands


def test_followers_started_while_postgres_is_down_wait_for_it(
    postgres: PrivatePostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}.v1"
    env, commands = _followers(postgres, kafka_bootstrap, topic)
    ledger = _postgres_ledger(postgres.dsn)
    for n in range(PEOPLE):
        ledger.record_many(_commands(n))
    head = ledger.store.head()
    ledger.close()
    postgres.stop()
    paths = {name: tmp_path / f"{name}.log" for name in commands}
    with ExitStack() as files:
        logs = {name: files.enter_context(path.open("wb")) for name, path in paths.items()}
        workers = {name: _worker(args, env, logs[name]) for name, args in commands.items()}
        try:
            # Each follower meets the database down, however long its start takes on a loaded
            # machine, before PostgreSQL comes back.
            _wait(
                lambda: all(
                    "database unavailable at start" in path.read_text() for path in paths.values()
                ),
                CATCH_UP_S,
            )
            time.sleep(DOWN_S)
            waiting = {name: worker.poll() is None for name, worker in workers.items()}
            postgres.start()
            tree = PostgresTreeStore(dsn=postgres.dsn)
            positions = PostgresPositions(dsn=postgres.dsn)
            try:
                caught_up = _wait(
                    lambda: positions.load("kafka") == head and tree.last_position() == head,
                    CATCH_UP_S,
                )
            finally:
                positions.close()
                tree.close()
        finally:
            codes = {name: _stop(name, worker) for name, worker in workers.items()}
    output = {name: path.read_text() for name, path in paths.items()}
    assert waiting == dict.fromkeys(commands, True), output
    assert caught_up, output
    assert codes == dict.fromkeys(commands, 0), output
    for name, text in output.items():
        assert "database unavailable at start" in text, (name, text)
        assert not _our_tracebacks(text), (name, text)


def test_relay_consumer_and_sealer_outlive_a_restart_and_an_outage(
    postgres: PrivatePostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"events-{uuid4().hex[:8]}.v1"
    env, commands = _followers(postgres, kafka_bootstrap, topic)
    group = f"g-{topic}"
    ledger = _postgres_ledger(postgres.dsn)
    tree = PostgresTreeStore(dsn=postgres.dsn)
    tree.migrate()
    positions = PostgresPositions(dsn=postgres.dsn)
    paths = {name: tmp_path / f"{name}.log" for name in commands}
    try:
        with ExitStack() as files:
            logs = {name: files.enter_context(path.open("wb")) for name, path in paths.items()}
            workers = {name: _worker(args, env, logs[name]) for name, args in commands.items()}
            try:
                _write_through_a_restart_and_an_outage(ledger, postgres)
                stored = [position for position, *_ in ledger.store.stream_rows()]
                head = stored[-1]
                expected = replayed_rows(postgres.dsn, "public", ledger.store)
                caught_up = _wait(
                    lambda: (
                        positions.load("kafka") == head
                        and tree.last_position() == head
                        and _checkpointed(tree) == len(stored)
                        and projection_rows(postgres.dsn, "public", tuple(expected)) == expected
                    ),
                    CATCH_UP_S,
                )
                alive = {name: worker.poll() is None for name, worker in workers.items()}
            finally:
                codes = {name: _stop(name, worker) for name, worker in workers.items()}
        output = {name: path.read_text() for name, path in paths.items()}

        assert alive == dict.fromkeys(commands, True), output
        assert codes == dict.fromkeys(commands, 0), output
        for name, text in output.items():
            # The outage reached every worker, and none of them let an error through.
            assert "database unavailable" in text, (name, text)
            assert not _our_tracebacks(text), (name, text)
        assert caught_up
        assert positions.load("kafka") == head
        assert set(topic_positions(kafka_bootstrap, topic)) == set(stored)
        assert projection_rows(postgres.dsn, "public", tuple(expected)) == expected
        assert _stored_offsets(postgres.dsn, "public", group) == _end_offsets(
            kafka_bootstrap, topic
        )
        report = verify_ledger(
            store=ledger.store, tree=tree, verifier=signer_from_seed(ORIGIN, SEED).verifier()
        )
        assert report.ok, report.problem
        assert (report.events, report.leaves, report.unsealed) == (len(stored), len(stored), 0)
    finally:
        positions.close()
        tree.close()
        ledger.close()


def test_a_rebalance_while_postgres_is_down_seeks_once_it_answers(
    postgres: PrivatePostgres,
    kafka_bootstrap: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    topic = f"events-{uuid4().hex[:8]}.v1"
    group = f"g-{topic}"
    ledger = sqlite_ledger(path)
    relay = sqlite_relay(path, bootstrap=kafka_bootstrap, topic=topic)
    runner = ConsumerRunner(
        ConsumerConfig(
            bootstrap=kafka_bootstrap,
            dsn=postgres.dsn,
            keys=TOPIC_KEYS,
            group=group,
            topic=topic,
            dead_letter_topic=f"{topic}.dlq",
            max_records=50,
        )
    )
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,), name="consumer")
    other = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        for n in range(PEOPLE):
            ledger.record_many(_commands(n))
        publish_all(relay)
        worker.start()
        assert _wait(
            lambda: (
                _stored_offsets(postgres.dsn, "public", group)
                == _end_offsets(kafka_bootstrap, topic)
            ),
            CATCH_UP_S,
        )

        postgres.stop()
        # A second member joins: the runner's partitions are assigned anew while it cannot
        # read the offsets its tables hold. Then it leaves, and they come back.
        other.subscribe([topic])
        deadline = time.monotonic() + CATCH_UP_S
        while not other.assignment() and time.monotonic() < deadline:
            other.poll(timeout_ms=500)
        assert other.assignment()
        other.close()
        for n in range(PEOPLE, 2 * PEOPLE):
            ledger.record_many(_commands(n))
        publish_all(relay)
        postgres.start()

        expected = replayed_rows(postgres.dsn, "public", ledger.store)
        assert _wait(
            lambda: (
                _stored_offsets(postgres.dsn, "public", group)
                == _end_offsets(kafka_bootstrap, topic)
                and projection_rows(postgres.dsn, "public", tuple(expected)) == expected
            ),
            CATCH_UP_S,
        )
        assert worker.is_alive()
    finally:
        stop.set()
        if worker.ident is not None:
            worker.join(timeout=30)
        other.close()
        runner.close()
        relay.close()
        ledger.close()
    assert "stored offsets unreadable on assignment" in caplog.text
    assert projection_rows(postgres.dsn, "public", tuple(expected)) == expected


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ (\S+?):", re.M)


def _our_tracebacks(log: str) -> list[str]:
    """Loggers of the records of ``log`` that carry a traceback, but for kafka-python's own.

    kafka-python logs a traceback when a socket it then reopens is reset; an error of ours let
    through, or logged with its traceback, shows under any other logger.
    """
    starts = list(LOG_RECORD.finditer(log))
    found = []
    for record, following in zip(starts, [*starts[1:], None], strict=True):
        text = log[record.start() : following.start() if following else len(log)]
        if "Traceback" in text and not record.group(1).startswith("kafka."):
            found.append(record.group(1))
    if "Traceback" in log[: starts[0].start() if starts else len(log)]:
        found.append("(before the first log record)")
    return found


CHECK_WAIT_S = 1.0
CHECK_MARGIN_S = 1.5


def test_checks_and_reads_fail_closed_within_the_check_wait_while_postgres_is_down(
    postgres: PrivatePostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, _ = _followers(postgres, kafka_bootstrap, f"events-{uuid4().hex[:8]}.v1")
    secret = base64.b64encode(bytes(32)).decode()
    port = free_port()
    env |= {
        "CONSENT_SUBJECT_SECRET": secret,
        "CONSENT_MASTER_KEY": secret,
        "CONSENT_UNSUBSCRIBE_KEYS": f"k1:{secret}",
        "CONSENT_PUBLIC_URL": "https://mail.example.org",
        "CONSENT_HTTP_PORT": str(port),
        "CONSENT_CHECK_WAIT_S": str(CHECK_WAIT_S),
    }
    headers = api_key_headers(env, "check", "write", "audit")
    # A key the server has not seen yet: its lookup meets the database down.
    unseen = api_key_headers(env, "check")
    # Nothing but the ledger has run: serve makes the tables its checks read.
    _postgres_ledger(postgres.dsn).close()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = _worker(["serve"], env, out)
        try:
            assert _wait(lambda: _answers(url), CATCH_UP_S), log.read_text()
            check = {"subject": "p1", "purpose": "newsletter"}
            # Served (the projection, fed by no consumer here, is behind: fail closed).
            answer = httpx.get(f"{url}/v1/check", params=check, headers=headers, timeout=30)
            assert answer.status_code == 503, answer.text
            assert answer.json()["type"].endswith("/stale-projection")
            postgres.stop()
            timings = []
            for path, params, key in [
                ("/v1/check", check, headers),
                ("/v1/check", check | {"min_position": "1"}, headers),
                ("/v1/check", check, headers),
                ("/v1/persons/p1", {}, headers),
                ("/v1/persons/p1/history", {}, headers),
                ("/v1/persons/p1/export", {}, headers),
                ("/v1/persons/p1/decision", {"purpose": "newsletter"}, headers),
                ("/v1/check", check, unseen),
                ("/v1/persons/p1", {}, unseen),
            ]:
                started = time.monotonic()
                answer = httpx.get(url + path, params=params, headers=key, timeout=30)
                timings.append((path, answer.status_code, time.monotonic() - started))
        finally:
            _stop("serve", server)
    assert all(status == 503 for _, status, _ in timings), timings
    assert all(took < CHECK_WAIT_S + CHECK_MARGIN_S for *_, took in timings), timings


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_reads_that_lose_the_database_fail_within_their_wait(
    postgres: PrivatePostgres,
) -> None:
    """The pool holds connections the server then ends: every read of the ledger is tried
    again only within its wait, then fails closed (the library's reads took 37 to 52 s)."""
    ledger = _postgres_ledger(postgres.dsn, wait_s=CHECK_WAIT_S)
    try:
        ledger.execute(
            GrantConsent(subject="p1", purpose="newsletter", policy_version="v1", occurred_at=T0)
        )
        assert ledger.person("p1") is not None
        postgres.stop()
        reads: dict[str, Callable[[], object]] = {
            "person": lambda: ledger.person("p1"),
            "history": lambda: ledger.history("p1", decrypt=True),
            "positions": lambda: ledger.store.positions_of(aggregate_id("p1")),
            "head": ledger.store.head,
        }
        timings = {}
        for name, read in reads.items():
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                read()
            timings[name] = time.monotonic() - started
        postgres.start()
        # Back up: once the pool connected again, reads are answered.
        assert _wait(lambda: ledger.person("p1") is not None, CATCH_UP_S)
    finally:
        ledger.close()
    assert all(took < CHECK_WAIT_S + CHECK_MARGIN_S for took in timings.values()), timings


CLI_READS = {
    "check": ["check", "--subject", "p1", "--purpose", "newsletter"],
    "export": ["export", "--subject", "p1", "--out", "{out}"],
    "decision-at": ["decision-at", "--subject", "p1", "--purpose", "newsletter"],
    "rights list": ["rights", "list"],
    "audit verify": ["audit", "verify"],
}


def test_cli_reads_fail_within_the_check_wait_while_postgres_is_down(
    postgres: PrivatePostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The commands run in this process, their modules already imported (a process's start
    on a busy machine took 1 to 10 s): what is timed is their wiring and their reads."""
    env, _ = _followers(postgres, kafka_bootstrap, f"events-{uuid4().hex[:8]}.v1")
    secret = base64.b64encode(bytes(32)).decode()
    env |= {
        "CONSENT_SUBJECT_SECRET": secret,
        "CONSENT_MASTER_KEY": secret,
        "CONSENT_CHECK_WAIT_S": str(CHECK_WAIT_S),
    }
    _postgres_ledger(postgres.dsn).close()
    postgres.stop()
    runner = CliRunner()
    answers = {}
    for name, args in CLI_READS.items():
        command = [arg.replace("{out}", str(tmp_path / "export.json")) for arg in args]
        started = time.monotonic()
        done = runner.invoke(cli_app, command, env=env)
        answers[name] = (done.exit_code, done.stderr.strip(), time.monotonic() - started)
    for name, (code, stderr, took) in answers.items():
        assert code != 0, (name, stderr)
        assert len(stderr.splitlines()) == 1, (name, stderr)
        assert "CONSENT_PG_DSN" in stderr, (name, stderr)
        assert took < CHECK_WAIT_S + CHECK_MARGIN_S, (name, took)


def test_cli_reads_give_up_on_a_database_that_never_answers(tmp_path: Path) -> None:
    """A server that takes connections and never answers (frozen, or behind a dead proxy):
    libpq's connect waited as long as the network does (psycopg's 130 s)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    env = {
        "CONSENT_MODE": "production",
        "CONSENT_PG_DSN": f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/postgres",
        "CONSENT_SUBJECT_SECRET": base64.b64encode(bytes(32)).decode(),
        "CONSENT_MASTER_KEY": base64.b64encode(bytes(32)).decode(),
        "CONSENT_CHECK_WAIT_S": str(CHECK_WAIT_S),
        "CONSENT_AUDIT_SIGNING_KEY": base64.b64encode(SEED).decode(),
        # Unset while the command runs, and as it was after: what the command sets is undone.
        "PGCONNECT_TIMEOUT": None,
    }
    answers: dict[str, tuple[int, str, float]] = {}
    try:
        for name, args in CLI_READS.items():
            command = [arg.replace("{out}", str(tmp_path / "export.json")) for arg in args]
            started = time.monotonic()
            # On a thread of its own: a command that hangs fails the test, not the session.
            worker = threading.Thread(
                target=lambda command=command, name=name, started=started: answers.__setitem__(
                    name, _invoked(command, env, started)
                ),
                daemon=True,
            )
            worker.start()
            worker.join(timeout=HUNG_S)
            assert name in answers, f"{name} still waits after {HUNG_S} s"
    finally:
        silent.close()
    for name, (code, stderr, took) in answers.items():
        assert code == 2, (name, stderr)
        assert stderr.startswith("cannot start: CONSENT_PG_DSN"), (name, stderr)
        assert len(stderr.splitlines()) == 1, (name, stderr)
        # libpq's connect_timeout counts whole seconds, 2 at least.
        assert took < max(2, CHECK_WAIT_S) + CHECK_MARGIN_S, (name, took)


HUNG_S = 30


def _invoked(
    command: list[str], env: dict[str, str | None], started: float
) -> tuple[int, str, float]:
    done = CliRunner().invoke(cli_app, command, env=env)
    return done.exit_code, done.stderr.strip(), time.monotonic() - started
