"""Metrics, dashboard and alert rules agree: every series shown or alerted on is one the code
defines, promtool accepts the rules and the exposition, and no label can carry a person."""

import json
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from prometheus_client import generate_latest

from ledger.audit.check import verify_ledger
from ledger.audit.sealer import Sealer, SealerConfig
from ledger.audit.store import SQLiteTreeStore
from ledger.audit.tlog.note import signer_from_seed
from ledger.domain.commands import GrantConsent
from ledger.domain.errors import LedgerError
from ledger.domain.rules import Reason
from ledger.metrics import checkpoint_seen
from projections.metrics import SINGLE_CHECKS, BusinessMetrics, observe_unsubscribes
from schemas import UnsubscribeClicked
from tests.helpers import sqlite_ledger
from tests.monitoring import (
    EVERY_PART,
    METRIC_NAME,
    ROOT,
    defined_series,
    promtool,
    promtool_check_metrics,
)

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "consent-ledger.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# Labels are bounded sets of the code's own values: never a subject, address, id or token.
ALLOWED_LABELS = {
    "command",
    "outcome",
    "partition",
    "kind",
    "decision",
    "reason",
    "purpose",
    "channel",
    "right",
}
KEY_SERIES = {
    "consent_ledger_commands_total",
    "consent_ledger_command_duration_seconds_bucket",
    "consent_ledger_group_commit_batch_size_bucket",
    "consent_ledger_relay_backlog_events",
    "consent_ledger_relay_published_events_total",
    "consent_ledger_consumer_lag_records",
    "consent_ledger_projection_position",
    "consent_ledger_dead_letters_total",
    "consent_ledger_unsubscribe_enforced_seconds_bucket",
    "consent_ledger_checks_total",
    "consent_ledger_check_duration_seconds_bucket",
    "consent_ledger_audit_checkpoint_age_seconds",
    "consent_ledger_audit_tree_size",
    "consent_ledger_audit_verification_failures_total",
    "consent_ledger_persons_opted_in",
    "consent_ledger_persons_suppressed",
    "consent_ledger_rights_requests_open",
    "consent_ledger_rights_requests_overdue",
    "consent_ledger_rights_requests_due_soon",
}


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    return panels


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in _panels() for target in panel.get("targets", [])]


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return EVERY_PART.get_sample_value(name, labels or {}) or 0.0


def test_the_dashboard_queries_only_series_the_code_defines() -> None:
    used = {name for expr in _dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert used, "no consent_ledger_* series in the dashboard"
    assert used <= defined_series(), f"undefined: {sorted(used - defined_series())}"


def test_the_dashboard_shows_every_key_series() -> None:
    used = {name for expr in _dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert used >= KEY_SERIES, f"not on the dashboard: {sorted(KEY_SERIES - used)}"
    assert defined_series() >= KEY_SERIES


def test_the_dashboard_has_the_48_hour_rule_and_the_rights_deadline_panels() -> None:
    by_title = {panel["title"]: panel for panel in _panels()}
    unsubscribe = [p for t, p in by_title.items() if "48-hour" in t]
    assert unsubscribe, "no panel against the 48-hour unsubscribe rule"
    exprs = [t["expr"] for t in unsubscribe[0]["targets"]]
    assert any("unsubscribe_enforced_seconds_bucket" in e for e in exprs)
    assert "vector(172800)" in exprs
    deadline = [p for t, p in by_title.items() if "deadline" in t]
    assert deadline, "no panel for rights requests near their deadline"
    assert any("rights_requests_due_soon" in t["expr"] for t in deadline[0]["targets"])


def test_alert_rules_use_defined_series_and_cover_the_issue() -> None:
    rules = _alert_rules()
    used = {name for rule in rules for name in METRIC_NAME.findall(rule["expr"])}
    assert used <= defined_series(), f"undefined: {sorted(used - defined_series())}"
    assert {rule["alert"] for rule in rules} >= {
        "ConsentRelayBacklogGrowing",
        "ConsentConsumerLag",
        "ConsentDeadLetters",
        "ConsentAuditCheckpointTooOld",
        "ConsentUnsubscribeSlow",
        "ConsentUnsubscribeOver48Hours",
        "ConsentRightsRequestOverdue",
        "ConsentWebhookEndpointDisabled",
    }


def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x[5m]\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [promtool(), "check", "rules", str(broken)], capture_output=True, check=False, timeout=60
    )
    assert result.returncode != 0


def test_promtool_accepts_the_exposition_and_no_label_names_a_person(tmp_path: Path) -> None:
    ledger = sqlite_ledger(tmp_path / "l.sqlite3")
    try:
        ledger.execute(
            GrantConsent(
                address="ann@example.org",
                purpose="newsletter",
                policy_version="v1",
                occurred_at=datetime.now(UTC),
            )
        )
    finally:
        ledger.close()
    SINGLE_CHECKS.decided(Reason.UNSUBSCRIBED)
    exposition = generate_latest(EVERY_PART).decode()
    promtool_check_metrics(exposition)
    assert "ann@example.org" not in exposition
    for family in EVERY_PART.collect():
        if family.name.startswith("consent_ledger_"):
            for sample in family.samples:
                assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, (family.name, sample.labels)


def test_commands_are_counted_by_type_and_outcome(tmp_path: Path) -> None:
    labels = {"command": "GrantConsent"}
    before = {
        o: _sample("consent_ledger_commands_total", labels | {"outcome": o})
        for o in ("recorded", "duplicate", "refused")
    }
    batches = _sample("consent_ledger_group_commit_batch_size_count")
    timed = _sample("consent_ledger_command_duration_seconds_count", labels)
    ledger = sqlite_ledger(tmp_path / "l.sqlite3")
    command_id = str(uuid4())
    grant = {"address": "bo@example.org", "purpose": "newsletter", "policy_version": "v1"}
    try:
        ledger.execute(GrantConsent(**grant, command_id=command_id, occurred_at=datetime.now(UTC)))
        ledger.execute(GrantConsent(**grant, command_id=command_id, occurred_at=datetime.now(UTC)))
        with pytest.raises(LedgerError):
            ledger.execute(
                GrantConsent(**grant | {"purpose": "unknown"}, occurred_at=datetime.now(UTC))
            )
    finally:
        ledger.close()
    after = {o: _sample("consent_ledger_commands_total", labels | {"outcome": o}) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "recorded": 1,
        "duplicate": 1,
        "refused": 1,
    }
    assert _sample("consent_ledger_command_duration_seconds_count", labels) == timed + 3
    assert _sample("consent_ledger_group_commit_batch_size_count") >= batches + 3


def test_unsubscribe_latency_is_from_the_click_to_now() -> None:
    before = _sample("consent_ledger_unsubscribe_enforced_seconds_count")
    within_hour = _sample("consent_ledger_unsubscribe_enforced_seconds_bucket", {"le": "3600.0"})
    now = datetime.now(UTC)
    click = UnsubscribeClicked(
        event_id=uuid4(),
        command_id=str(uuid4()),
        subject="s" * 64,
        occurred_at=now - timedelta(hours=3),
        recorded_at=now - timedelta(hours=3),
        source="api",
        actor="t",
        method="one_click_post",
    )
    observe_unsubscribes([click], now=now)
    assert _sample("consent_ledger_unsubscribe_enforced_seconds_count") == before + 1
    # Three hours: counted above the one-hour bucket, within the 48-hour one.
    assert _sample("consent_ledger_unsubscribe_enforced_seconds_bucket", {"le": "3600.0"}) == (
        within_hour
    )


def test_checkpoint_age_is_computed_at_each_scrape() -> None:
    checkpoint_seen(size=7, created_at=datetime.now(UTC) - timedelta(seconds=100))
    first = _sample("consent_ledger_audit_checkpoint_age_seconds")
    time.sleep(0.05)
    second = _sample("consent_ledger_audit_checkpoint_age_seconds")
    assert 100 <= first < second < 110
    assert _sample("consent_ledger_audit_checkpoint_size") == 7


def test_a_verification_that_finds_tampering_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = sqlite_ledger(path)
    signer = signer_from_seed("ledger.test/audit", b"\x07" * 32)
    tree = SQLiteTreeStore(path=path)
    tree.migrate()
    try:
        sealer = Sealer(
            store=ledger.store, tree=tree, signer=signer, config=SealerConfig(origin=signer.name)
        )
        sealer.seal_all()
        sealer.checkpoint()
        assert _sample("consent_ledger_audit_tree_size") == ledger.store.head()

        def verify() -> bool:
            report = verify_ledger(store=ledger.store, tree=tree, verifier=signer.verifier())
            return report.ok

        failures = _sample("consent_ledger_audit_verification_failures_total")
        assert verify()
        assert _sample("consent_ledger_audit_verification_failures_total") == failures
        with sqlite3.connect(path) as conn:
            rowid, state = conn.execute(
                "select rowid, state from stored_events order by rowid desc limit 1"
            ).fetchone()
            altered = bytes(state).replace(b'"v1"', b'"v2"', 1)
            assert altered != bytes(state)
            conn.execute("update stored_events set state = ? where rowid = ?", (altered, rowid))
        assert not verify()
        assert _sample("consent_ledger_audit_verification_failures_total") == failures + 1
    finally:
        tree.close()
        ledger.close()


class _Counts:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def __call__(
        self,
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        self.calls += 1
        if self.fail:
            raise OSError("database away")
        return (
            [("newsletter", "email", 10 + self.calls)],
            [("unsubscribed", 2)],
            [("erasure", 3, 1, 2)],
        )


def _gauges(collector: BusinessMetrics) -> dict[str, float]:
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_business_gauges_are_cached_between_scrapes() -> None:
    counts = _Counts()
    now = [1000.0]
    collector = BusinessMetrics(counts, ttl_s=15, clock=lambda: now[0])
    opted_in = 'consent_ledger_persons_opted_in{"channel": "email", "purpose": "newsletter"}'
    assert _gauges(collector)[opted_in] == 11
    now[0] += 14
    assert _gauges(collector)[opted_in] == 11
    assert counts.calls == 1
    now[0] += 1
    assert _gauges(collector)[opted_in] == 12
    assert counts.calls == 2
    assert _sample("consent_ledger_rights_requests_open", {"right": "erasure"}) == 3
    assert _sample("consent_ledger_rights_requests_overdue", {"right": "erasure"}) == 1
    assert _sample("consent_ledger_rights_requests_due_soon", {"right": "erasure"}) == 2
    assert _sample("consent_ledger_rights_requests_open", {"right": "access"}) == 0


def test_business_gauges_keep_the_last_counts_when_the_database_fails() -> None:
    counts = _Counts()
    now = [0.0]
    collector = BusinessMetrics(counts, ttl_s=15, clock=lambda: now[0])
    first = _gauges(collector)
    counts.fail = True
    now[0] += 20
    assert _gauges(collector) == first
    assert counts.calls == 2
