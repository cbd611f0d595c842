"""The relay's position store contract, written once and run against SQLite and PostgreSQL."""

import sqlite3
from abc import ABC, abstractmethod
from contextlib import closing
from typing import Any

import psycopg
import pytest
from psycopg import sql

from relay.positions import PostgresPositions, SQLitePositions
from relay.publisher import PositionStore
from tests.contract.opened import ClosesWhatItOpens, OnPostgresSchema, OnSQLiteFile


class PositionStoreContract(ClosesWhatItOpens, ABC):
    """What every `PositionStore` adapter must do; subclasses say how to open one."""

    @abstractmethod
    def new_store(self) -> PositionStore:
        """A new store over this test's storage (shared by every instance); creates its tables."""

    @abstractmethod
    def watermarks(self) -> set[tuple[int, int, int]]:
        """Every stored (position, partition, next offset), read from the tables."""

    def open_store(self) -> PositionStore:
        return self.kept(self.new_store())

    @pytest.fixture
    def positions(self) -> PositionStore:
        return self.open_store()

    def test_an_unknown_follower_starts_at_zero(self, positions: PositionStore) -> None:
        assert positions.load("kafka") == 0

    def test_a_saved_position_is_loaded_by_another_instance(self, positions: PositionStore) -> None:
        positions.save("kafka", 42)

        assert positions.load("kafka") == 42
        assert self.open_store().load("kafka") == 42

    def test_each_follower_has_its_own_position(self, positions: PositionStore) -> None:
        positions.save("kafka", 10)
        positions.save("other", 3)
        positions.save("kafka", 25)

        assert (positions.load("kafka"), positions.load("other")) == (25, 3)

    def test_a_watermark_is_kept_per_position_and_partition(self, positions: PositionStore) -> None:
        positions.save("kafka", 10, {0: 4, 2: 7})
        positions.save("kafka", 20, {0: 9})

        assert self.watermarks() == {(10, 0, 4), (10, 2, 7), (20, 0, 9)}

    def test_saving_a_position_again_replaces_its_watermark_offsets(
        self, positions: PositionStore
    ) -> None:
        # A batch published again after a crash is saved again at the same position.
        positions.save("kafka", 10, {0: 4})
        positions.save("kafka", 10, {0: 6, 1: 2})

        assert positions.load("kafka") == 10
        assert self.watermarks() == {(10, 0, 6), (10, 1, 2)}

    def test_opening_again_keeps_what_was_saved(self, positions: PositionStore) -> None:
        positions.save("kafka", 7, {1: 3})

        again = self.open_store()

        assert again.load("kafka") == 7
        assert self.watermarks() == {(7, 1, 3)}


class TestSQLitePositions(OnSQLiteFile, PositionStoreContract):
    def new_store(self) -> PositionStore:
        return SQLitePositions(path=self.path)

    def watermarks(self) -> set[tuple[int, int, int]]:
        with closing(sqlite3.connect(self.path)) as conn:
            rows = conn.execute(
                "select position, partition, next_offset from relay_watermarks"
            ).fetchall()
        return {(int(p), int(k), int(o)) for p, k, o in rows}


@pytest.mark.integration
class TestPostgresPositions(OnPostgresSchema, PositionStoreContract):
    def new_store(self) -> PositionStore:
        return PostgresPositions(dsn=self.dsn, schema=self.schema)

    def watermarks(self) -> set[tuple[int, int, int]]:
        with psycopg.connect(self.dsn) as conn:
            rows: list[Any] = conn.execute(
                sql.SQL("select position, partition, next_offset from {}").format(
                    sql.Identifier(self.schema, "relay_watermarks")
                )
            ).fetchall()
        return {(int(p), int(k), int(o)) for p, k, o in rows}
