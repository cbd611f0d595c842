"""`consent-ledger audit ...`: sealing, checkpoints, proofs and bundles for auditors."""

import base64
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from entrypoints.bootstrap import Audit, build_audit, serve_metrics
from entrypoints.cli.console import err, load_settings, progress_bar
from entrypoints.cli.opening import once_the_database_answers, starting
from entrypoints.metrics import Part
from ledger.audit.check import verify_ledger
from ledger.audit.export import export_bundle
from ledger.audit.tlog.bundle import load_bundle, verify_bundle
from ledger.audit.tlog.merkle import consistency_proof, inclusion_proof
from ledger.audit.tlog.verify import AuditError
from ledger.domain.errors import LedgerError
from ledger.privacy.files import write_private_text

audit_app = typer.Typer(
    help="Prove history: seal events into a Merkle tree, sign checkpoints, prove, verify.",
    no_args_is_help=True,
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextmanager
def _audit(*, following: bool = False) -> Iterator[Audit]:
    settings = load_settings()
    with starting():
        audit = (
            once_the_database_answers(lambda: build_audit(settings), what="audit seal")
            if following
            else build_audit(settings)
        )
    try:
        yield audit
    except (LedgerError, AuditError) as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        audit.close()


@audit_app.command()
def seal(
    follow: Annotated[
        bool, typer.Option(help="Keep following the ledger, cutting checkpoints as configured.")
    ] = False,
) -> None:
    """Seal every stored event not yet in the tree, then cut a checkpoint if one is due."""
    with _audit(following=follow) as audit:
        if follow:
            stop = threading.Event()
            # Ctrl-C or SIGTERM ends the round in hand, then the loop: never mid-transaction.
            for stopping in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stopping, lambda *_: stop.set())
            serve_metrics(load_settings(), Part.AUDITOR)
            err.print("sealing; Ctrl-C or SIGTERM to stop")
            audit.sealer.follow(stop)
            return
        backlog = audit.store.head() - audit.tree.last_position()
        with progress_bar("sealing") as progress:
            task = progress.add_task("seal", total=max(backlog, 0))
            sealed = audit.sealer.seal_all(progress=lambda n: progress.advance(task, n))
        audit.sealer.checkpoint_if_due()
        typer.echo(json.dumps({"sealed": sealed, "tree_size": audit.tree.size()}))


@audit_app.command()
def checkpoint() -> None:
    """Seal what is new, cut a signed checkpoint now and print it (a C2SP signed note)."""
    with _audit() as audit:
        audit.sealer.seal_all()
        typer.echo(audit.sealer.checkpoint().note, nl=False)


@audit_app.command()
def key() -> None:
    """Print the verifier key (C2SP note format) that checks this ledger's checkpoints."""
    with _audit() as audit:
        typer.echo(audit.signer.verifier_key())


@audit_app.command()
def verify() -> None:
    """Recompute every leaf from the store and every checkpoint from them; check signatures.

    Exits 1 naming the first position where the store, the tree or a checkpoint differ.
    """
    with _audit() as audit:
        total = audit.store.head()
        with progress_bar("verifying") as progress:
            task = progress.add_task("verify", total=total)
            report = verify_ledger(
                store=audit.store,
                tree=audit.tree,
                verifier=audit.signer.verifier(),
                progress=lambda n: progress.advance(task, n),
            )
        summary: dict[str, object] = {
            "ok": report.ok,
            "events": report.events,
            "sealed": report.leaves,
            "unsealed": report.unsealed,
            "checkpoints": report.checkpoints,
        }
        if report.problem is not None:
            summary |= {
                "position": report.problem.position,
                "leaf": report.problem.leaf,
                "problem": report.problem.what,
            }
            typer.echo(json.dumps(summary))
            err.print(f"[red]verification failed:[/red] {report.problem.what}")
            raise typer.Exit(code=1)
        typer.echo(json.dumps(summary))


@audit_app.command()
def prove(
    position: Annotated[int, typer.Option(help="The ledger position of the event.")],
    size: Annotated[
        int | None, typer.Option(help="Tree size to prove in (default: latest checkpoint).")
    ] = None,
) -> None:
    """Print the RFC 9162 inclusion proof of one event, hashes in base64."""
    with _audit() as audit:
        index = audit.tree.leaf_indices([position]).get(position)
        if index is None:
            err.print(f"[red]position {position} is not sealed[/red]")
            raise typer.Exit(code=1)
        latest = audit.tree.latest_checkpoint()
        tree_size = size if size is not None else (latest.size if latest else audit.tree.size())
        proof = inclusion_proof(index=index, size=tree_size, store=audit.tree)
        typer.echo(
            json.dumps(
                {
                    "position": position,
                    "leaf_index": index,
                    "tree_size": tree_size,
                    "inclusion_proof": [_b64(h) for h in proof],
                }
            )
        )


@audit_app.command()
def consistency(
    first: Annotated[int, typer.Option("--from", help="The older tree size.")],
    second: Annotated[int, typer.Option("--to", help="The newer tree size.")],
) -> None:
    """Print the RFC 9162 consistency proof between two tree sizes, hashes in base64."""
    with _audit() as audit:
        proof = consistency_proof(first=first, second=second, store=audit.tree)
        typer.echo(
            json.dumps({"from": first, "to": second, "consistency_proof": [_b64(h) for h in proof]})
        )


@audit_app.command()
def export(
    subject: Annotated[str, typer.Option(help="The person whose events to prove.")],
    out: Annotated[Path, typer.Option(help="Where to write the bundle (JSON).")],
) -> None:
    """Write a proof bundle: the person's events, each with its proof in a signed checkpoint."""
    with _audit() as audit:
        audit.sealer.seal_all()
        checkpoint_ = audit.sealer.checkpoint()
        bundle = export_bundle(
            subject=subject,
            store=audit.store,
            tree=audit.tree,
            checkpoint=checkpoint_,
            verifier=audit.signer.verifier(),
        )
        write_private_text(out, json.dumps(bundle, indent=2, sort_keys=True) + "\n")
        err.print(f"{len(bundle['entries'])} events proven in tree size {checkpoint_.size}: {out}")


@audit_app.command("verify-bundle")
def verify_bundle_command(
    file: Annotated[Path, typer.Argument(help="A proof bundle.", exists=True, dir_okay=False)],
    key: Annotated[
        str | None,
        typer.Option(help="The verifier key you trust (default: the bundle's own, weaker)."),
    ] = None,
) -> None:
    """Check a proof bundle offline: no database, only the bundle and a verifier key."""
    try:
        report = verify_bundle(load_bundle(file.read_text(encoding="utf-8")), verifier_key=key)
    except AuditError as error:
        err.print(f"[red]bundle rejected:[/red] {error}")
        raise typer.Exit(code=1) from None
    if report.trusted_key_from_bundle:
        err.print(
            "[yellow]checked with the bundle's own key: pass --key to know who signed[/yellow]"
        )
    typer.echo(
        json.dumps(
            {
                "ok": True,
                "origin": report.origin,
                "tree_size": report.tree_size,
                "entries": report.entries,
            }
        )
    )
