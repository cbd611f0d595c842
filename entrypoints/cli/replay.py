"""``consent-ledger replay``: rebuild a projection into fresh tables and swap them in."""

from enum import StrEnum
from typing import Annotated

import psycopg
import typer
from kafka.errors import KafkaError

from consumers.topic_rebuild import rebuild_from_kafka, skip_dead_letters
from entrypoints.bootstrap import build_embedded_projection, build_store
from entrypoints.bootstrap_keys import build_topic_keys
from entrypoints.cli.console import err, load_settings, progress_bar
from entrypoints.cli.opening import starting
from entrypoints.cli.options import TopicOption
from projections.rebuild import (
    ProjectionName,
    RebuildResult,
    RebuildTarget,
    rebuild_from_store,
    swap,
)
from schemas import dead_letter_topic_for


class Source(StrEnum):
    STORE = "store"
    KAFKA = "kafka"


def replay(
    projection: Annotated[
        ProjectionName, typer.Option(help="Which projection to rebuild.")
    ] = ProjectionName.CONSENT,
    source: Annotated[
        Source,
        typer.Option(
            "--from", help="Rebuild from the event store (the record) or from the event topic."
        ),
    ] = Source.STORE,
    group: Annotated[
        str, typer.Option(help="The consumer group that keeps the projection current.")
    ] = "consent-ledger-projections",
    topic: TopicOption = None,
) -> None:
    """Rebuild a projection from scratch into fresh tables, then swap them in atomically.

    The live projection keeps answering checks and its consumers keep applying meanwhile;
    after the swap, the consumers continue from the offsets the rebuild reached. In embedded
    mode the tables in the SQLite file are rebuilt in one transaction, from the store.
    """
    settings = load_settings()
    with starting():
        store = build_store(settings)
    try:
        with starting():
            head = store.head()
        embedded = build_embedded_projection(settings)
        if embedded is not None:
            if source is not Source.STORE:
                embedded.close()
                err.print("[red]embedded mode has no Kafka:[/red] use --from store")
                raise typer.Exit(code=2)
            try:
                with progress_bar(f"rebuilding {projection}") as progress:
                    task = progress.add_task("rebuild", total=head)
                    applied = embedded.rebuild(store, progress=lambda n: progress.advance(task, n))
            finally:
                embedded.close()
            err.print(f"rebuilt {projection}: {applied} events, swapped in")
            return
        if source is Source.KAFKA and not settings.kafka_bootstrap:
            err.print("[red]cannot start:[/red] --from kafka needs CONSENT_KAFKA_BOOTSTRAP")
            raise typer.Exit(code=2)
        topic = topic or settings.kafka_topic
        target = RebuildTarget(
            dsn=str(settings.pg_dsn), schema=settings.pg_schema, group=group, topic=topic
        )
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            with progress_bar(f"rebuilding {projection} from {source}") as progress:
                task = progress.add_task("rebuild", total=None if source is Source.KAFKA else head)
                result: RebuildResult
                if source is Source.STORE:
                    result = rebuild_from_store(
                        conn,
                        target,
                        store,
                        up_to=head,
                        progress=lambda n: progress.advance(task, n),
                        past_dead_letters=skip_dead_letters(
                            bootstrap=str(settings.kafka_bootstrap),
                            topic=topic,
                            keys=build_topic_keys(settings),
                            up_to=head,
                        )
                        if settings.kafka_bootstrap
                        else None,
                    )
                else:
                    result = rebuild_from_kafka(
                        conn,
                        target,
                        bootstrap=str(settings.kafka_bootstrap),
                        keys=build_topic_keys(settings),
                        dead_letter_topic=dead_letter_topic_for(topic),
                        progress=lambda n: progress.advance(task, n),
                    )
            tables = swap(conn, target)
    except (KafkaError, psycopg.Error) as error:
        err.print(
            f"[red]replay failed, the live projection is unchanged:[/red] {error}", soft_wrap=True
        )
        raise typer.Exit(code=1) from None
    finally:
        store.close()
    err.print(
        f"rebuilt {projection} from {source}: {result.events} events into {len(tables)} tables, "
        f"swapped in; consumers continue at offsets {dict(sorted(result.offsets.items()))}"
    )
