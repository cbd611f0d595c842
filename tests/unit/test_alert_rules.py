"""The alert rules, unit-tested by promtool: each alert fires on its cause and stays silent
otherwise, and the 48-hour rule fires on one slow unsubscribe among fast ones."""

import subprocess
from typing import Any

import yaml

from tests.monitoring import ROOT, promtool

RULES = ROOT / "deploy" / "prometheus"
TESTS = RULES / "alerts.test.yml"


def _alerts() -> set[str]:
    document = yaml.safe_load((RULES / "alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"] for group in document["groups"] for rule in group["rules"]}


def _cases() -> list[dict[str, Any]]:
    document = yaml.safe_load(TESTS.read_text(encoding="utf-8"))
    return [case for test in document["tests"] for case in test["alert_rule_test"]]


def test_promtool_passes_the_alert_rules_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", TESTS.name],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing = {case["alertname"] for case in _cases() if case.get("exp_alerts")}
    silent = {case["alertname"] for case in _cases() if not case.get("exp_alerts")}
    assert firing == _alerts()
    assert silent == _alerts()


def test_the_48_hour_alert_is_tested_on_one_slow_unsubscribe() -> None:
    document = yaml.safe_load(TESTS.read_text(encoding="utf-8"))
    (case,) = [test for test in document["tests"] if "48 hours" in test["name"]]
    series = {item["series"].split("{")[0]: item["values"] for item in case["input_series"]}
    fired = [c for c in case["alert_rule_test"] if c.get("exp_alerts")]
    assert [c["alertname"] for c in fired] == ["ConsentUnsubscribeOver48Hours"]
    # One observation more in the count than in the 48-hour bucket: the one slow unsubscribe.
    assert series["consent_ledger_unsubscribe_enforced_seconds_count"].startswith("0 5 10 15 20 26")
