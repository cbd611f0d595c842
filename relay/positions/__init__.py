"""Tracked positions of the ledger's followers (the relay), stored next to the events.

With its position the relay records a watermark per published batch: for each Kafka partition
the batch wrote to, the offset after its last record. A reader that knows how far consumers got
in each partition can then tell which ledger position the projections cover.

The eventsourcing library's own tracking records (``Tracking``, a ``ProcessRecorder``'s
``insert_tracking``) do not fit: they keep one notification id per application in the
library's tracking table, in a transaction of their own (or of events a process application
writes), and refuse (IntegrityError) a position not above the stored one. The relay writes
no events, must write its watermarks in the same transaction as its position, and deployments
already hold their positions in ``follower_positions``.
"""

from relay.positions.postgres import PostgresPositions
from relay.positions.sqlite import SQLitePositions

__all__ = ["PostgresPositions", "SQLitePositions"]
