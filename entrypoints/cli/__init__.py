"""The command-line interface, ``consent-ledger``: one module per group of commands."""

from entrypoints.cli.main import main

__all__ = ["main"]
