"""Small tables beside the event store (feedback rejects, bounce counts, webhooks), both modes.

Not events: operational state that no proof depends on. One query text runs on both databases:
tables are written ``{name}``, parameters ``%s``; `SQLiteTables` and `PostgresTables` run it.
"""

from ledger.sidecar.tables import PostgresTables, SideStore, SQLiteTables, Tables, as_text

__all__ = ["PostgresTables", "SQLiteTables", "SideStore", "Tables", "as_text"]
