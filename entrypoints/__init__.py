"""Wiring only: settings, bootstrap, the HTTP app, the CLI and the process mains."""
