"""The Grafana dashboard as its users read it: one row per user, variables for the data source
and the purpose, one unit per kind of quantity, and a layout Grafana can place."""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.monitoring import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "consent-ledger.json"
ROWS = ("Recipients", "Sender", "Auditors", "Operations")
UNITS = {"s", "ops", "short", "percentunit"}
COMPOSE = ROOT / "docker-compose.yml"
NODE_MODULES = ROOT / "node_modules"
TSC = NODE_MODULES / ".bin" / "tsc"


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def _rows() -> dict[str, list[dict[str, Any]]]:
    """Each row's title, with the panels below it up to the next row."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for panel in _dashboard()["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], [])
        else:
            assert current is not None, f"{panel['title']!r} is above every row"
            current.append(panel)
    return rows


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def test_one_row_per_user_in_order() -> None:
    titles = [title.split(":")[0] for title in _rows()]
    assert titles == list(ROWS)


def test_each_row_shows_what_its_user_watches() -> None:
    rows = {title.split(":")[0]: panels for title, panels in _rows().items()}
    shown = {row: " ".join(e for p in panels for e in _exprs(p)) for row, panels in rows.items()}
    assert "unsubscribe_enforced_seconds" in shown["Recipients"]
    assert "consent_ledger_checks_total" in shown["Sender"]
    assert 'decision="denied"' in shown["Sender"]
    assert 'kind="bulk"' in shown["Sender"]
    assert "audit_checkpoint_age_seconds" in shown["Auditors"]
    assert "audit_verification_failures_total" in shown["Auditors"]
    for series in ("consumer_lag_records", "dead_letters_total", "rights_requests_overdue"):
        assert series in shown["Operations"], series


def test_the_data_source_and_the_purpose_are_variables() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["purpose"]["type"] == "query"
    assert (
        "label_values(consent_ledger_persons_opted_in, purpose)"
        in (variables["purpose"]["query"]["query"])
    )
    panels = [p for panels in _rows().values() for p in panels]
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert any('purpose=~"$purpose"' in e for p in panels for e in _exprs(p))


def test_units_are_consistent_by_kind_of_quantity() -> None:
    for panel in (p for panels in _rows().values() for p in panels):
        unit = panel["fieldConfig"]["defaults"]["unit"]
        exprs = _exprs(panel)
        assert unit in UNITS, panel["title"]
        timed = [e for e in exprs if "_seconds" in e and "vector(" not in e]
        if timed and all("histogram_quantile" in e or "age_seconds" in e for e in timed):
            assert unit == "s", panel["title"]
        if all(
            e.startswith(("sum by", "sum(rate")) and "rate(" in e and "/" not in e for e in exprs
        ):
            assert unit == "ops", panel["title"]


def test_panels_are_placed_without_overlap_and_ids_are_unique() -> None:
    panels = _dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def _pinned_grafana() -> str:
    found = re.search(r"image: grafana/grafana:([0-9.]+)", COMPOSE.read_text(encoding="utf-8"))
    assert found is not None, "docker-compose.yml pins no Grafana image"
    return found.group(1)


def _schema_check(dashboard: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """TypeScript's verdict on the dashboard as a literal of Grafana's own ``Dashboard`` type
    (``@grafana/schema``, generated from Grafana's CUE kinds): unknown fields, wrong types and
    values outside an enumeration are errors."""
    source = tmp_path / "dashboard.ts"
    source.write_text(
        "import type { Dashboard } from '@grafana/schema';\n"
        f"export const dashboard: Dashboard = {dashboard};\n",
        encoding="utf-8",
    )
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    return subprocess.run(
        [
            str(TSC),
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "--target",
            "es2022",
            source.name,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_dashboard_is_valid_against_the_schema_of_the_grafana_compose_pins(
    tmp_path: Path,
) -> None:
    installed = json.loads((NODE_MODULES / "@grafana" / "schema" / "package.json").read_text())
    assert installed["version"] == _pinned_grafana()
    checked = _schema_check(DASHBOARD.read_text(encoding="utf-8"), tmp_path)
    assert checked.returncode == 0, checked.stdout


def test_the_schema_check_refuses_a_field_grafana_does_not_know(tmp_path: Path) -> None:
    broken = _dashboard()
    broken["panels"][1]["gridPos"]["width"] = 12
    broken["graphTooltip"] = "shared"
    checked = _schema_check(json.dumps(broken), tmp_path)
    assert checked.returncode != 0
    assert """'"width"' does not exist in type 'GridPos'""" in checked.stdout
    assert "not assignable to type 'DashboardCursorSync | undefined'" in checked.stdout
