"""The ``consent-ledger`` command line: serving, operating and auditing the ledger."""

import csv
import gc
import hashlib
import io
import json
import signal
import sys
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
import uvicorn
from kafka.errors import KafkaError
from prometheus_client import REGISTRY
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consumers.runner import ConsumerConfig, ConsumerRunner
from entrypoints.bootstrap import (
    build_api,
    build_audit,
    build_business_metrics,
    build_hasher,
    build_relay,
    build_store,
    checker_config,
    serve_metrics,
)
from entrypoints.cli.audit import audit_app
from entrypoints.cli.console import err, load_settings
from entrypoints.cli.keys import keys_app
from entrypoints.cli.opening import open_ledger
from entrypoints.cli.replay import replay
from entrypoints.cli.rights import rights_cli
from entrypoints.cli.unsubscribe import unsubscribe_headers
from entrypoints.health import health_check
from entrypoints.http import create_app
from entrypoints.settings import Mode
from ledger.domain.commands import (
    Command,
    GrantConsent,
    PublishPolicyVersion,
    RegisterPurpose,
    Unsubscribe,
    WithdrawConsent,
    build,
)
from ledger.domain.errors import LedgerError
from ledger.domain.rules import Decision
from ledger.write.importer import FileFormat, ImportOptions, detect_format, read_rows, run_import
from ledger.write.service import CommandResult
from projections.checker import Checker, SendChecker, StaleProjectionError
from projections.embedded import EmbeddedChecker, EmbeddedProjection
from relay.publisher import ensure_topics
from schemas import (
    Channel,
    DoubleOptIn,
    LegalBasis,
    Source,
    UnsubscribeMethod,
    WithdrawalReason,
    dead_letter_topic_for,
)

app = typer.Typer(
    name="consent-ledger",
    help="Record, enforce and prove every consent decision (GDPR / CNIL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Record, enforce and prove every consent decision (GDPR / CNIL).

    Settings come from CONSENT_* environment variables; see the README.
    """


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the HTTP API (embedded SQLite by default, PostgreSQL in production mode)."""
    settings = load_settings()
    listen_host = host or settings.http_host
    listen_port = settings.http_port if port is None else port
    if settings.mode is Mode.EMBEDDED:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        where = f"embedded mode, data in {settings.sqlite_path.resolve()}"
    else:
        where = "production mode, data in PostgreSQL (CONSENT_PG_DSN)"
    try:
        check = health_check(settings)
        services = build_api(settings)
    except (ValueError, LedgerError) as error:
        err.print(f"[red]cannot start:[/red] {error}")
        raise typer.Exit(code=2) from None
    REGISTRY.register(build_business_metrics(settings))
    stop = threading.Event()
    if settings.mode is Mode.EMBEDDED:
        # No Kafka and no separate processes in embedded mode: the projection is fed from the
        # store itself, and a sealer of its own (own connections) follows the ledger.
        store = build_store(settings)
        projection = EmbeddedProjection(path=settings.sqlite_path)
        sealing = build_audit(settings)
        for name, target, args in (
            ("embedded-feed", projection.follow, (store, stop)),
            ("embedded-sealer", sealing.sealer.follow, (stop,)),
        ):
            threading.Thread(target=target, args=args, name=name, daemon=True).start()
    # What is built by now lives as long as the process: frozen out of the cyclic collector's
    # reach, full collections walk only what requests allocate (else pauses of tens of ms).
    gc.freeze()
    err.print(f"consent-ledger listening on http://{listen_host}:{listen_port} ({where})")
    try:
        uvicorn.run(
            create_app(health=check, services=services),
            host=listen_host,
            port=listen_port,
            log_level=settings.log_level,
            access_log=False,
        )
    finally:
        stop.set()
        services.close()


def _record(command_type: type[Command], fields: dict[str, Any]) -> None:
    with open_ledger() as ledger:
        command = build(command_type, {k: v for k, v in fields.items() if v is not None})
        _print_result(ledger.execute(command))


def _print_result(result: CommandResult) -> None:
    typer.echo(
        json.dumps(
            {
                "command_id": result.command_id,
                "subject": result.subject,
                "event_ids": [str(e) for e in result.event_ids],
                "position": result.position,
                "duplicate": result.duplicate,
            }
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)


SubjectOption = Annotated[
    str | None, typer.Option(help="The person's own id (give this or --address).")
]
AddressOption = Annotated[
    str | None, typer.Option(help="The person's email address (keyed-hashed into the subject).")
]
CommandIdOption = Annotated[
    str | None,
    typer.Option("--command-id", help="Idempotency key: the same id twice records once."),
]
OccurredOption = Annotated[
    datetime | None,
    typer.Option(
        help="When it happened, with a time zone (default: now).", formats=["%Y-%m-%dT%H:%M:%S%z"]
    ),
]

purpose_app = typer.Typer(help="The catalog of processing purposes.", no_args_is_help=True)
policy_app = typer.Typer(help="Privacy-policy versions.", no_args_is_help=True)
app.add_typer(purpose_app, name="purpose")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.command()(replay)
app.command()(unsubscribe_headers)
app.add_typer(rights_cli)


@purpose_app.command("register")
def purpose_register(
    purpose: Annotated[str, typer.Argument(help="Machine name, e.g. marketing_email.")],
    legal_basis: Annotated[LegalBasis, typer.Option(help="GDPR art. 6 ground.")],
    description: Annotated[str, typer.Option(help="What the processing is, for people.")],
    max_age_days: Annotated[
        int | None, typer.Option(help="Re-consent after this many days without interaction.")
    ] = None,
    direct_marketing: Annotated[
        bool, typer.Option(help="Covered by an objection to all direct marketing.")
    ] = False,
    command_id: CommandIdOption = None,
) -> None:
    """Register a processing purpose (once; its meaning never changes)."""
    _record(
        RegisterPurpose,
        {
            "purpose": purpose,
            "legal_basis": legal_basis,
            "description": description,
            "max_age_days": max_age_days,
            "direct_marketing": direct_marketing,
            "occurred_at": _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@policy_app.command("publish")
def policy_publish(
    version: Annotated[str, typer.Argument(help="Version label, e.g. 2026-11.")],
    text: Annotated[
        Path,
        typer.Argument(
            help="The policy text; its SHA-256 is recorded.", exists=True, dir_okay=False
        ),
    ],
    effective_at: Annotated[
        datetime | None, typer.Option(help="When it takes effect (default: now).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Where people read it.")] = None,
    purpose: Annotated[
        list[str] | None, typer.Option("--purpose", help="A purpose it covers (repeatable).")
    ] = None,
    requires_reconsent: Annotated[
        bool, typer.Option(help="Consents under older versions must be given again.")
    ] = False,
    command_id: CommandIdOption = None,
) -> None:
    """Publish a privacy-policy version from its text file."""
    digest = hashlib.sha256(text.read_bytes()).hexdigest()
    _record(
        PublishPolicyVersion,
        {
            "version": version,
            "text_sha256": digest,
            "url": url,
            "effective_at": effective_at or _now(),
            "purposes": tuple(purpose or ()),
            "requires_reconsent": requires_reconsent,
            "occurred_at": _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@app.command()
def grant(
    purpose: Annotated[str, typer.Option(help="A registered purpose.")],
    policy_version: Annotated[str, typer.Option(help="The policy version the person saw.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    double_opt_in: Annotated[DoubleOptIn, typer.Option()] = DoubleOptIn.NOT_APPLICABLE,
    occurred_at: OccurredOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record that a person gave consent for a purpose on a channel."""
    _record(
        GrantConsent,
        {
            "subject": subject,
            "address": address,
            "purpose": purpose,
            "channel": channel,
            "policy_version": policy_version,
            "double_opt_in": double_opt_in,
            "occurred_at": occurred_at or _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@app.command()
def withdraw(
    purpose: Annotated[str, typer.Option(help="The purpose consent is withdrawn from.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    reason: Annotated[WithdrawalReason, typer.Option()] = WithdrawalReason.USER_REQUEST,
    occurred_at: OccurredOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record a withdrawal of consent (always accepted)."""
    _record(
        WithdrawConsent,
        {
            "subject": subject,
            "address": address,
            "purpose": purpose,
            "channel": channel,
            "reason": reason,
            "occurred_at": occurred_at or _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@app.command()
def unsubscribe(
    subject: SubjectOption = None,
    address: AddressOption = None,
    purpose: Annotated[
        str | None, typer.Option(help="Only this purpose (default: every marketing message).")
    ] = None,
    list_id: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
    campaign_id: Annotated[str | None, typer.Option(help="The campaign it came from.")] = None,
    occurred_at: OccurredOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Record an unsubscribe (always accepted)."""
    _record(
        Unsubscribe,
        {
            "subject": subject,
            "address": address,
            "purpose": purpose,
            "list_id": list_id,
            "campaign_id": campaign_id,
            "method": UnsubscribeMethod.ADMIN,
            "occurred_at": occurred_at or _now(),
            "source": Source.ADMIN,
            "actor": "cli",
            "command_id": command_id,
        },
    )


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or NDJSON (.ndjson/.jsonl) export.", exists=True, dir_okay=False),
    ],
    purpose: Annotated[str, typer.Option(help="The purpose the list's consents are for.")],
    policy_version: Annotated[
        str | None, typer.Option(help="For lines without a policy_version of their own.")
    ] = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Default: from the file name.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where bad lines go (default: FILE.rejects.csv).")
    ] = None,
) -> None:
    """Import a subscriber base: address, status, opt_in_date, source, opt_in_ip, policy_version.

    Streams the file in bounded memory; a bad line goes to the reject file with its reason and
    never stops the import. Importing the same file twice records nothing new.
    """
    reject_path = rejects or file.with_name(file.name + ".rejects.csv")
    options = ImportOptions(purpose=purpose, channel=channel, policy_version=policy_version)
    size = file.stat().st_size
    with (
        open_ledger() as ledger,
        file.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as stream,
        reject_path.open("w", encoding="utf-8", newline="") as reject_stream,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[lines]} lines"),
            TimeElapsedColumn(),
            console=err,
            disable=not sys.stderr.isatty(),
        ) as progress,
    ):
        task = progress.add_task("import", total=size, lines=0)
        writer = csv.writer(reject_stream)
        writer.writerow(["line", "reason"])
        counted = 0

        def advance(lines: int) -> None:
            nonlocal counted
            counted += lines
            if counted % 1000 == 0:
                progress.update(task, completed=raw.tell(), lines=counted)

        summary = run_import(
            ledger,
            read_rows(stream, file_format or detect_format(file)),
            options=options,
            reject=lambda number, reason: writer.writerow([number, reason]),
            progress=advance,
        )
        progress.update(task, completed=size, lines=counted)
    table = Table(title=f"import of {file.name}")
    table.add_column("lines", justify="right")
    table.add_column("recorded", justify="right")
    table.add_column("already there", justify="right")
    table.add_column("rejected", justify="right")
    table.add_row(
        *(str(n) for n in (summary.lines, summary.recorded, summary.duplicates, summary.rejected))
    )
    err.print(table)
    if summary.rejected:
        err.print(f"rejected lines and reasons: {reject_path}")
    typer.echo(
        json.dumps(
            {
                "lines": summary.lines,
                "recorded": summary.recorded,
                "duplicates": summary.duplicates,
                "rejected": summary.rejected,
                "position": summary.last_position,
                "rejects": str(reject_path),
            }
        )
    )


@app.command()
def relay(
    once: Annotated[bool, typer.Option(help="Publish what is waiting, then exit.")] = False,
) -> None:
    """Publish every stored event, in ledger order, to Kafka (CONSENT_KAFKA_TOPIC).

    Creates the topics if missing; while the broker is down it backs off and resumes where the
    broker last acknowledged. Ctrl-C or SIGTERM stops it cleanly.
    """
    settings = load_settings()
    try:
        relay_ = build_relay(settings)
        ensure_topics(relay_.config)
    except (LedgerError, KafkaError) as error:
        err.print(f"[red]cannot start:[/red] {error}")
        raise typer.Exit(code=2) from None
    try:
        if once:
            published = 0
            while batch := relay_.publish_once():
                published += batch
            typer.echo(json.dumps({"published": published, "position": relay_.position}))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        serve_metrics(settings)
        err.print(f"relaying to {settings.kafka_bootstrap}; {relay_.backlog()} events waiting")
        try:
            relay_.run(stop)
        except KeyboardInterrupt:
            stop.set()
    finally:
        relay_.close()


@app.command()
def consume(
    group: Annotated[
        str, typer.Option(help="Consumer group: one per set of projection tables.")
    ] = "consent-ledger-projections",
    topic: Annotated[
        str | None, typer.Option(help="The event topic (default: CONSENT_KAFKA_TOPIC).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Records per transaction at most.")] = 2_000,
) -> None:
    """Apply the event topic to the projection tables in PostgreSQL (production mode).

    Offsets are kept with the rows, in one transaction per batch; undecodable records go to
    the topic's dead-letter topic. SIGTERM or Ctrl-C finishes the batch in hand, then exits.
    """
    settings = load_settings()
    if not (settings.pg_dsn and settings.kafka_bootstrap):
        err.print(
            "[red]cannot start:[/red] consume needs CONSENT_PG_DSN and CONSENT_KAFKA_BOOTSTRAP"
        )
        raise typer.Exit(code=2)
    try:
        runner = ConsumerRunner(
            ConsumerConfig(
                bootstrap=settings.kafka_bootstrap,
                dsn=settings.pg_dsn,
                schema=settings.pg_schema,
                group=group,
                topic=topic or settings.kafka_topic,
                dead_letter_topic=dead_letter_topic_for(topic or settings.kafka_topic),
                max_records=batch,
            )
        )
    except (KafkaError, psycopg.Error) as error:
        err.print(f"[red]cannot start:[/red] {type(error).__name__}")
        raise typer.Exit(code=2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    serve_metrics(settings)
    err.print(f"consuming into schema {settings.pg_schema} as group {group}")
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        runner.close()


@app.command()
def check(
    purpose: Annotated[str, typer.Option(help="The purpose of the message.")],
    subject: SubjectOption = None,
    address: AddressOption = None,
    channel: Annotated[Channel, typer.Option()] = Channel.EMAIL,
    min_position: Annotated[
        int | None, typer.Option(help="Answer only once the projection covers this position.")
    ] = None,
    bulk: Annotated[
        Path | None,
        typer.Option(help="A file (or - for stdin) of subjects, one per line; NDJSON answers."),
    ] = None,
    addresses: Annotated[
        bool, typer.Option(help="With --bulk: the lines are email addresses, not subjects.")
    ] = False,
) -> None:
    """May we send? From the projection (production mode), refusing when it is stale (exit 3)."""
    settings = load_settings()
    if settings.mode is Mode.PRODUCTION and not settings.pg_dsn:
        err.print("[red]cannot start:[/red] check needs CONSENT_PG_DSN in production mode")
        raise typer.Exit(code=2)
    hasher = build_hasher(settings) if (address or addresses) else None
    store = build_store(settings)
    config = checker_config(settings)
    try:
        with ExitStack() as resources:
            checker: Checker
            if settings.mode is Mode.EMBEDDED:
                projection = EmbeddedProjection(path=settings.sqlite_path)
                resources.callback(projection.close)
                # A command-line check feeds the embedded projection itself first.
                while projection.feed_once(store):
                    pass
                checker = EmbeddedChecker(projection, store=store, config=config)
            else:
                conn = resources.enter_context(
                    psycopg.connect(str(settings.pg_dsn), autocommit=True)
                )
                checker = SendChecker(conn, head=store.head, config=config)
            if bulk is None:
                who = hasher.subject_for(address) if (hasher and address) else subject
                if not who:
                    err.print("[red]give --subject or --address[/red]")
                    raise typer.Exit(code=2)
                result = checker.check(who, purpose, channel, min_position=min_position)
                typer.echo(json.dumps(_answer(who, result.decision) | {"covered": result.covered}))
                return
            stream = sys.stdin if str(bulk) == "-" else bulk.open(encoding="utf-8")
            with stream:
                lines = (line.strip() for line in stream if line.strip())
                keys = (hasher.subject_for(line) if hasher else line for line in lines)
                for who, decision in checker.bulk_check(
                    keys, purpose, channel, min_position=min_position
                ):
                    typer.echo(json.dumps(_answer(who, decision)))
    except StaleProjectionError as error:
        err.print(f"[red]stale:[/red] {error}")
        raise typer.Exit(code=3) from None
    except LedgerError as error:
        err.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        store.close()


def _answer(subject: str, decision: Decision) -> dict[str, object]:
    return {
        "subject": subject,
        "allowed": decision.allowed,
        "reason": None if decision.reason is None else decision.reason.value,
    }


def main() -> None:
    """Console-script entry point."""
    app()
