"""The event store: the eventsourcing library's recorders on PostgreSQL and SQLite, and DDL."""
