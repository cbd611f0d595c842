"""docker-compose.yml cannot drift from the code: its commands and settings must exist."""

from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml

from entrypoints.cli import app
from entrypoints.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
LEDGER_IMAGE_BUILD = "."


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def _ledger_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return {name: s for name, s in services.items() if s.get("build") == LEDGER_IMAGE_BUILD}


def _is_group(command: Any) -> bool:
    return isinstance(command, typer.core.TyperGroup)


def _resolve(root: Any, argv: list[str]) -> tuple[Any, list[str]]:
    """Walk subcommands as the CLI parser would; return the command reached and its arguments."""
    command = root
    rest = list(argv)
    while _is_group(command) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.get_command(typer.Context(command), name)
        assert sub is not None, f"`consent-ledger {' '.join(argv)}`: no subcommand {name!r}"
        command = sub
    return command, rest


def test_compose_runs_the_ledger_image() -> None:
    assert set(_ledger_services()) >= {"api"}


@pytest.mark.parametrize("service", sorted(_ledger_services()))
def test_every_command_is_a_real_subcommand(service: str) -> None:
    argv = [str(part) for part in _ledger_services()[service]["command"]]
    command, rest = _resolve(typer.main.get_command(app), argv)
    assert not _is_group(command), f"{service}: `{argv}` stops at a command group"
    known = {opt for param in command.params for opt in param.opts}
    given = {part.split("=", 1)[0] for part in rest if part.startswith("--")}
    assert given <= known, f"{service}: unknown options {sorted(given - known)}"


@pytest.mark.parametrize("service", sorted(_ledger_services()))
def test_every_consent_variable_is_a_setting(service: str) -> None:
    environment: dict[str, Any] = _ledger_services()[service].get("environment", {})
    names = {
        key.removeprefix("CONSENT_").lower() for key in environment if key.startswith("CONSENT_")
    }
    assert names, f"{service} sets no CONSENT_* variable"
    assert names <= set(Settings.model_fields), (
        f"{service}: unknown {sorted(names - set(Settings.model_fields))}"
    )


def test_resolve_rejects_a_command_that_does_not_exist() -> None:
    with pytest.raises(AssertionError, match="no subcommand"):
        _resolve(typer.main.get_command(app), ["no-such-command"])
