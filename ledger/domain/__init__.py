"""The ledger's domain, pure (no I/O): commands, the aggregates, the rule book, identity."""
