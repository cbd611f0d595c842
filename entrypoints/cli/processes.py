"""The long-running processes: ``serve`` the API, ``relay`` to Kafka, ``consume`` into tables."""

import gc
import json
import signal
import threading
from collections.abc import Callable
from typing import Annotated

import typer
import uvicorn

from entrypoints.bootstrap import (
    build_api,
    build_business_metrics,
    build_health,
    build_relay,
    serve_metrics,
)
from entrypoints.bootstrap_cli import build_consumer, start_embedded_followers
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.opening import once_the_database_answers, starting
from entrypoints.cli.options import TopicOption
from entrypoints.http import create_app
from entrypoints.http.protocol import HeaderLimits, bounded_protocol
from entrypoints.metrics import API_PARTS, EMBEDDED_PARTS, Part, process_registry
from entrypoints.settings import Mode, Settings
from relay.topics import ensure_topics


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the HTTP API (embedded SQLite by default, PostgreSQL in production mode)."""
    settings = load_settings()
    listen_host = host or settings.http_host
    listen_port = settings.http_port if port is None else port
    try:
        with starting():
            check = build_health(settings)
            services = build_api(settings)
    except ValueError as error:
        err.print(f"[red]cannot start:[/red] {error}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    parts = API_PARTS + (EMBEDDED_PARTS if settings.mode is Mode.EMBEDDED else ())
    metrics = process_registry(parts, build_business_metrics(settings))
    stop = threading.Event()
    where = start_embedded_followers(settings, stop)
    # What is built by now lives as long as the process: frozen out of the cyclic collector's
    # reach, full collections walk only what requests allocate (else pauses of tens of ms).
    gc.freeze()
    err.print(f"consent-ledger listening on http://{listen_host}:{listen_port} ({where})")
    try:
        uvicorn.run(
            create_app(health=check, services=services, metrics=metrics),
            host=listen_host,
            port=listen_port,
            log_level=settings.log_level,
            access_log=False,
            http=bounded_protocol(header_limits(settings)),
        )
    finally:
        stop.set()
        services.close()


def header_limits(settings: Settings) -> HeaderLimits:
    return HeaderLimits(
        max_header_bytes=settings.http_max_header_bytes,
        header_timeout_s=settings.http_header_timeout_s,
    )


def relay(
    once: Annotated[bool, typer.Option(help="Publish what is waiting, then exit.")] = False,
) -> None:
    """Publish every stored event, in ledger order, to Kafka (CONSENT_KAFKA_TOPIC).

    Creates the topics if missing and corrects their settings to the cluster's (min(3, brokers)
    copies, two in sync on three); refuses to start (exit 2) on a topic that would still lose
    acknowledged events. While the broker is down it backs off and resumes where the broker
    last acknowledged. Ctrl-C or SIGTERM stops it cleanly.
    """
    settings = load_settings()
    with starting():
        relay_ = once_the_database_answers(lambda: build_relay(settings), what="relay")
        ensure_topics(relay_.config)
    try:
        if once:
            published = 0
            while batch := relay_.publish_once():
                published += batch
            typer.echo(json.dumps({"published": published, "position": relay_.position}))
            return
        # The backlog is read from the database, which may be restarting just now too.
        waiting = once_the_database_answers(relay_.backlog, what="relay")
        _follow(
            settings,
            Part.RELAY,
            relay_.run,
            lambda: f"relaying to {settings.kafka_bootstrap}; {waiting} events waiting",
        )
    finally:
        relay_.close()


def consume(
    group: Annotated[
        str, typer.Option(help="Consumer group: one per set of projection tables.")
    ] = "consent-ledger-projections",
    topic: TopicOption = None,
    batch: Annotated[int, typer.Option(min=1, help="Records per transaction at most.")] = 2_000,
) -> None:
    """Apply the event topic to the projection tables in PostgreSQL (production mode).

    Offsets are kept with the rows, in one transaction per batch; undecodable records go to
    the topic's dead-letter topic. SIGTERM or Ctrl-C finishes the batch in hand, then exits.
    """
    settings = load_settings()
    with starting():
        runner = once_the_database_answers(
            lambda: build_consumer(
                settings, group=group, topic=topic or settings.kafka_topic, batch=batch
            ),
            what="consume",
        )
    try:
        _follow(
            settings,
            Part.CONSUMER,
            runner.run,
            lambda: f"consuming into schema {settings.pg_schema} as group {group}",
        )
    finally:
        runner.close()


def _follow(
    settings: Settings,
    part: Part,
    run: Callable[[threading.Event], None],
    banner: Callable[[], str],
) -> None:
    """Run a follower with this process's metrics served, until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    serve_metrics(settings, part)
    err.print(banner())
    try:
        run(stop)
    except KeyboardInterrupt:
        stop.set()
