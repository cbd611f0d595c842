"""What the contract suites share: every store a test opens is closed after it."""

from collections.abc import Iterator
from typing import Protocol

import pytest


class Closable(Protocol):
    def close(self) -> None: ...


class ClosesWhatItOpens:
    """Mixin: ``self.opened`` holds the stores a test opened; each is closed after it."""

    opened: list[Closable]

    @pytest.fixture(autouse=True)
    def _closed_after(self) -> Iterator[None]:
        self.opened = []
        yield
        for store in self.opened:
            store.close()
