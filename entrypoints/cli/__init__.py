"""The command-line interface, consent-ledger: one module per group of commands."""
