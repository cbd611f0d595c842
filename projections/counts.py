"""The aggregate counts behind the business gauges, from whichever projection store is wired.

Each is one grouped count (opted-in consents, active suppressions, open rights requests): the
rows never leave the database, and `projections.metrics.BusinessMetrics` caches the answer.
"""

from collections.abc import Callable
from contextlib import closing

from projections.metrics import Query, Rows
from projections.store.base import ProjectionStore


def store_counts(open_store: Callable[[], ProjectionStore]) -> Query:
    """The counts from a store opened for each refresh (one short connection) and closed."""

    def query() -> tuple[Rows, Rows, Rows]:
        with closing(open_store()) as store:
            return store.counts()

    return query
