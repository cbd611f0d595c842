"""docker-compose.yml cannot drift from the code: its commands and settings must exist."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import typer
import typer.main
import yaml

from entrypoints.cli.main import app
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


PROMETHEUS = COMPOSE.parent / "deploy" / "prometheus" / "prometheus.yml"


def _scrape_targets() -> dict[str, tuple[str, str]]:
    """Every scraped host:port, with its job's metrics path."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    return {
        target: (job["job_name"], job.get("metrics_path", "/metrics"))
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }


def _serve_port(service: dict[str, Any]) -> int:
    command = [str(part) for part in service["command"]]
    return int(command[command.index("--port") + 1])


@pytest.mark.parametrize("service", sorted(_ledger_services()))
def test_prometheus_scrapes_every_ledger_service_where_it_serves_metrics(service: str) -> None:
    definition = _ledger_services()[service]
    if definition.get("restart") == "no":
        return  # a one-shot step (init) serves nothing to scrape
    if definition["command"][0] == "serve":
        # The API serves its metrics on its own port, at the app's own /metrics.
        port = _serve_port(definition)
        assert _scrape_targets()[f"{service}:{port}"][1] == "/metrics"
        assert f"{port}:{port}" in definition["ports"] or str(port) in definition.get("expose", [])
        return
    port = int(definition["environment"]["CONSENT_METRICS_PORT"])
    assert port > 0, f"{service} serves no metrics"
    assert f"{service}:{port}" in _scrape_targets(), f"{service}:{port} is not scraped"
    assert str(port) in [str(p) for p in definition.get("expose", [])]
    assert definition["environment"]["CONSENT_METRICS_HOST"] == "0.0.0.0"  # noqa: S104


def test_every_scrape_target_is_a_service_of_the_compose_file() -> None:
    services = set(_compose()["services"])
    hosts = {target.split(":", 1)[0] for target in _scrape_targets()}
    assert hosts <= services, f"scraped but not in docker-compose.yml: {sorted(hosts - services)}"


def _mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    volumes = _compose()["services"][service].get("volumes", [])
    binds = [v.split(":") for v in volumes if v.startswith("./")]
    return {inside: COMPOSE.parent / host for host, inside, *_ in binds}


@pytest.mark.parametrize("service", ["prometheus", "grafana"])
def test_every_mounted_file_exists(service: str) -> None:
    for host in _mounts(service).values():
        assert host.exists(), f"{service} mounts {host}, which does not exist"


def test_prometheus_loads_the_alert_rules_it_is_given() -> None:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    mounts = _mounts("prometheus")
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        assert rule_file in mounts, f"{rule_file} is not mounted into the prometheus service"
        assert mounts[rule_file].name == "alerts.yml"


def test_grafana_provisions_the_dashboard_from_a_mounted_folder() -> None:
    mounts = _mounts("grafana")
    provisioning = mounts["/etc/grafana/provisioning"]
    provider = yaml.safe_load(
        (provisioning / "dashboards" / "consent-ledger.yml").read_text(encoding="utf-8")
    )
    folder = provider["providers"][0]["options"]["path"]
    assert folder in mounts, f"the dashboards folder {folder} is not mounted"
    assert list(mounts[folder].glob("*.json")), f"no dashboard JSON in {mounts[folder]}"


COMPOSE_SPEC = Path(__file__).resolve().parents[1] / "schemas" / "compose-spec.json"
"""The Compose Specification's JSON Schema (compose-spec/compose-spec, schema/compose-spec.json
at 170098ba07d9, Apache-2.0), vendored: no container engine runs where the tests do."""
ENV_EXAMPLE = COMPOSE.parent / ".env.example"
REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?")


def _spec_errors(document: Any) -> list[str]:
    validator = jsonschema_rs.Draft7Validator(json.loads(COMPOSE_SPEC.read_text(encoding="utf-8")))
    return [str(error) for error in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert _spec_errors(_compose()) == []


def test_the_specification_check_finds_a_mistake() -> None:
    broken = _compose()
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    broken["services"]["relay"]["healthcheck"]["interval"] = 10
    errors = _spec_errors(broken)
    assert any("'helthcheck' was unexpected" in error for error in errors)
    assert any('["relay"]["healthcheck"]["interval"]' in error for error in errors)


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy() -> None:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"init"}
    for name, service in services.items():
        if name in one_shot:
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service["healthcheck"]["test"], name
        assert not service["healthcheck"].get("disable"), name


def test_the_ledger_starts_after_init_made_the_tables_and_the_first_key() -> None:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    assert services["init"]["command"][0] == "init"
    for name in _ledger_services().keys() - {"init"}:
        assert services[name]["depends_on"]["init"] == {
            "condition": "service_completed_successfully"
        }, name


def test_kafka_keeps_its_log_on_the_volume() -> None:
    kafka = _compose()["services"]["kafka"]
    mounts = {volume.split(":")[1] for volume in kafka["volumes"]}
    assert kafka["environment"]["KAFKA_LOG_DIRS"] in mounts
    assert set(_compose()["volumes"]) >= {v.split(":")[0] for v in kafka["volumes"]}


def test_env_example_names_every_required_secret_and_how_to_make_it() -> None:
    required = set(REQUIRED.findall(COMPOSE.read_text(encoding="utf-8")))
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    named = {
        line.split("=", 1)[0]: n
        for n, line in enumerate(lines)
        if "=" in line and not line.startswith("#")
    }
    assert required, "the compose file requires no secret"
    assert required <= set(named), sorted(required - set(named))
    for name in required - {"CONSENT_PUBLIC_URL"}:
        recipe = lines[named[name] - 1]
        assert recipe.startswith("# "), name
        assert "/dev/urandom" in recipe, name
