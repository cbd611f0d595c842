"""Metrics that mean what they say: no ``_created`` series, enforcement times of live requests
only (10 ms to 72 h), and each process exporting the series of the parts it runs."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from entrypoints.metrics import API_PARTS, EMBEDDED_PARTS, Part, process_registry
from ledger.domain.commands import GrantConsent, Unsubscribe, WithdrawConsent
from ledger.metrics import COMMANDS
from ledger.write.importer import FileFormat, ImportOptions, read_rows, run_import
from ledger.write.service import Ledger
from projections.embedded import EmbeddedProjection
from projections.metrics import ENFORCEMENT, UNSUBSCRIBE_ENFORCED
from schemas import Source, WithdrawalReason
from tests.monitoring import EVERY_PART
from tests.unit.test_embedded_projection import world  # noqa: F401  (the fixture)

ENFORCED = "consent_ledger_unsubscribe_enforced_seconds"
PART_GAUGES = {
    Part.RELAY: "consent_ledger_relay_backlog_events",
    Part.CONSUMER: "consent_ledger_projection_position",
    Part.AUDITOR: "consent_ledger_audit_checkpoint_age_seconds",
}


def _names(parts: tuple[Part, ...]) -> set[str]:
    return {family.name for family in process_registry(parts).collect()}


def _timed() -> float:
    return ENFORCEMENT.get_sample_value(f"{ENFORCED}_count") or 0.0


def _feed(ledger: Ledger, projection: EmbeddedProjection) -> None:
    while projection.feed_once(ledger.store):
        pass


def test_no_series_is_a_created_timestamp() -> None:
    COMMANDS.labels("GrantConsent", "recorded").inc()
    UNSUBSCRIBE_ENFORCED.observe(0.2)
    exposition = generate_latest(EVERY_PART).decode()

    assert "consent_ledger_commands_total" in exposition
    assert "_created" not in exposition


def test_enforcement_buckets_run_from_10_ms_to_72_hours() -> None:
    bounds = [
        float(sample.labels["le"])
        for family in ENFORCEMENT.collect()
        for sample in family.samples
        if sample.name == f"{ENFORCED}_bucket" and sample.labels["le"] != "+Inf"
    ]
    assert bounds[0] == 0.01
    assert bounds[-1] == 72 * 3600
    assert {1.0, 3600.0, 48 * 3600.0} <= set(bounds)
    # The 48-hour alert names this bucket by its label as exposed.
    assert f'{ENFORCED}_bucket{{le="172800.0"}}' in generate_latest(ENFORCEMENT).decode()


def test_an_imported_history_of_unsubscribes_and_complaints_is_not_timed(
    world: tuple[Ledger, EmbeddedProjection],  # noqa: F811
) -> None:
    ledger, projection = world
    before = _timed()
    history = (
        "address,status,opt_in_date,source\n"
        "ann@example.org,unsubscribed,2019-05-01,one_click\n"
        "bob@example.org,complained,2020-02-03,web_form\n"
    )
    summary = run_import(
        ledger,
        read_rows(io.StringIO(history), FileFormat.CSV),
        options=ImportOptions(purpose="newsletter"),
        reject=lambda number, reason: pytest.fail(f"line {number}: {reason}"),
    )
    _feed(ledger, projection)

    assert summary.recorded == 2
    assert _timed() == before
    sources = {
        event.source for event in ledger.history(ledger.hasher.subject_for("ann@example.org"))
    }
    assert sources == {Source.IMPORT}


def test_a_live_click_and_a_live_complaint_are_timed_a_plain_withdrawal_is_not(
    world: tuple[Ledger, EmbeddedProjection],  # noqa: F811
) -> None:
    ledger, projection = world
    now = datetime.now(UTC)
    ledger.execute(
        GrantConsent(
            address="cy@example.org", purpose="newsletter", policy_version="v1", occurred_at=now
        )
    )
    _feed(ledger, projection)
    before = _timed()
    fast = ENFORCEMENT.get_sample_value(f"{ENFORCED}_bucket", {"le": "60.0"}) or 0.0
    ledger.execute(Unsubscribe(address="cy@example.org", source=Source.ONE_CLICK, occurred_at=now))
    for reason in (WithdrawalReason.COMPLAINT, WithdrawalReason.USER_REQUEST):
        ledger.execute(
            WithdrawConsent(
                address="cy@example.org",
                purpose="newsletter",
                reason=reason,
                source=Source.COMPLAINT_LOOP,
                occurred_at=now + timedelta(seconds=1),
            )
        )
    _feed(ledger, projection)

    assert _timed() == before + 2
    assert ENFORCEMENT.get_sample_value(f"{ENFORCED}_bucket", {"le": "60.0"}) == fast + 2


def test_each_process_exports_the_series_of_the_parts_it_runs() -> None:
    production_serve = _names(API_PARTS)
    embedded_serve = _names(API_PARTS + EMBEDDED_PARTS)

    for part, gauge in PART_GAUGES.items():
        assert gauge in _names((part,)), part
        assert gauge not in production_serve, gauge
    assert PART_GAUGES[Part.AUDITOR] in embedded_serve
    assert ENFORCED in embedded_serve
    assert ENFORCED in _names((Part.CONSUMER,))
    assert "consent_ledger_relay_backlog_events" not in embedded_serve
    assert "consent_ledger_commands" not in _names((Part.RELAY,))
