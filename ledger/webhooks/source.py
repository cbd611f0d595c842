"""The events webhooks send: the store's notification log, in the ledger's order."""

from collections.abc import Sequence

from ledger.store.events import LedgerStore
from ledger.webhooks.dispatcher import Source
from schemas import EventBase, parse_event


def store_source(store: LedgerStore) -> Source:
    """Reads the events stored after a position, in order, from ``store``."""

    def read(after: int, limit: int) -> Sequence[tuple[int, EventBase]]:
        return [
            (row.id, parse_event(row.state))
            for row in store.notifications(after=after, limit=limit)
        ]

    return read
