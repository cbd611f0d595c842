"""Every process of a deployment starting at once on an empty database: each creates its tables."""

import threading
from collections.abc import Callable

import psycopg
import pytest

from access.apikeys import PostgresApiKeyStore
from ledger.audit.store import PostgresTreeStore
from ledger.store.events import LedgerStore, PostgresStoreConfig
from projections.store.postgres import migrate
from relay.positions import PostgresPositions

pytestmark = pytest.mark.integration
PROCESSES = 6


def test_processes_starting_together_all_create_their_tables(pg_dsn: str, schema: str) -> None:
    def start() -> None:
        store = LedgerStore(PostgresStoreConfig(dsn=pg_dsn, pool_size=1, schema=schema))
        store.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            migrate(conn, schema=schema)
        PostgresPositions(dsn=pg_dsn, schema=schema).close()
        keys = PostgresApiKeyStore(dsn=pg_dsn, schema=schema)
        keys.migrate()
        keys.close()
        audit = PostgresTreeStore(dsn=pg_dsn, schema=schema)
        audit.migrate()
        audit.close()

    barrier = threading.Barrier(PROCESSES)
    failures: list[BaseException] = []

    def together(work: Callable[[], None]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - every failure is reported below
            failures.append(error)

    threads = [threading.Thread(target=together, args=(start,)) for _ in range(PROCESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
