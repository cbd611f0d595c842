"""``consent-ledger webhooks deliver``: send the ledger's events to the registered endpoints."""

import json
import signal
import threading
from typing import Annotated

import typer

from entrypoints.bootstrap import build_store, serve_metrics
from entrypoints.bootstrap_sender import build_dispatcher
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import starting
from entrypoints.metrics import Part

webhooks_app = typer.Typer(
    name="webhooks", help="Webhooks: endpoints told of every consent change (register over HTTP)."
)


@webhooks_app.command("deliver")
def deliver(
    once: Annotated[
        bool, typer.Option(help="Serve each endpoint once, print what was sent, and exit.")
    ] = False,
) -> None:
    """Send every stored event to the endpoints that asked for it, signed, in the ledger's order,
    retrying failures with backoff; runs until SIGTERM or Ctrl-C unless --once."""
    settings = load_settings()
    with starting():
        events = build_store(settings)
        dispatcher = build_dispatcher(settings, events)
    try:
        if once:
            typer.echo(json.dumps({"delivered": dispatcher.step()}))
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        serve_metrics(settings, Part.WEBHOOKS)
        err.print("webhooks: delivering (SIGTERM or Ctrl-C stops)")
        dispatcher.follow(stop)
    finally:
        dispatcher.close()
        dispatcher.store.close()
        events.close()
