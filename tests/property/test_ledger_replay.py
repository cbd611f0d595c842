"""Random command sequences: the replayed person equals a small reference model of the rules."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.commands import (
    AcceptPolicy,
    Command,
    ConfirmConsent,
    GrantConsent,
    LiftRestriction,
    RecordInteraction,
    RecordObjection,
    RestrictProcessing,
    Unsubscribe,
    WithdrawConsent,
)
from ledger.domain.errors import ConsentNotPendingError, LedgerError
from ledger.write.service import CommandResult, Ledger
from tests.helpers import sqlite_ledger

PURPOSES = ("newsletter", "offers")
CHANNELS = ("email", "sms")
LISTS = ("weekly", "daily")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
SHA = "c" * 64
TIMEOUT_S = 30.0


@dataclass
class Model:
    """The rules restated from the issue, independently of the aggregate's code."""

    consents: dict[tuple[str, str], str] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)
    lists: set[str] = field(default_factory=set)
    objections: set[str] = field(default_factory=set)
    restrictions: set[str] = field(default_factory=set)
    accepted: dict[str, str] = field(default_factory=dict)
    last_interaction: datetime | None = None

    def apply(self, step: dict[str, Any], when: datetime) -> bool:  # noqa: PLR0912
        """Apply one step; False when the ledger must refuse it."""
        kind = step["kind"]
        if kind == "grant":
            key = (step["purpose"], step["channel"])
            self.consents[key] = "pending" if step["pending"] else "granted"
            self.unsubscribed.discard(step["purpose"])
        elif kind == "confirm":
            key = (step["purpose"], step["channel"])
            if self.consents.get(key) != "pending":
                return False
            self.consents[key] = "granted"
        elif kind == "withdraw":
            self.consents[(step["purpose"], step["channel"])] = "withdrawn"
        elif kind == "unsubscribe":
            if step["purpose"]:
                self.unsubscribed.add(step["purpose"])
                # It ends the email consent on file, if any; it invents none.
                if (step["purpose"], "email") in self.consents:
                    self.consents[(step["purpose"], "email")] = "withdrawn"
            elif step["list"]:
                self.lists.add(step["list"])
            else:
                self.unsubscribed.add("*")
                for key in self.consents:
                    if key[1] == "email":
                        self.consents[key] = "withdrawn"
        elif kind == "object":
            self.objections.add(step["purpose"] or "*")
        elif kind == "restrict":
            self.restrictions |= set(step["purposes"]) or {"*"}
        elif kind == "lift":
            if step["purposes"]:
                self.restrictions -= set(step["purposes"])
            else:
                self.restrictions.clear()
        elif kind == "accept":
            self.accepted["v1"] = SHA
        elif kind == "interaction":
            self.last_interaction = when
        return True


purpose = st.sampled_from(PURPOSES)
channel = st.sampled_from(CHANNELS)
steps = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("grant"), "purpose": purpose, "channel": channel, "pending": st.booleans()}
    ),
    st.fixed_dictionaries({"kind": st.just("confirm"), "purpose": purpose, "channel": channel}),
    st.fixed_dictionaries({"kind": st.just("withdraw"), "purpose": purpose, "channel": channel}),
    st.fixed_dictionaries(
        {
            "kind": st.just("unsubscribe"),
            "purpose": st.none() | purpose,
            "list": st.none() | st.sampled_from(LISTS),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("object"), "purpose": st.none() | purpose}),
    st.fixed_dictionaries(
        {"kind": st.just("restrict"), "purposes": st.lists(purpose, max_size=2, unique=True)}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("lift"), "purposes": st.lists(purpose, max_size=2, unique=True)}
    ),
    st.fixed_dictionaries({"kind": st.just("accept")}),
    st.fixed_dictionaries({"kind": st.just("interaction")}),
)


def _command(subject: str, step: dict[str, Any], when: datetime) -> Command:  # noqa: PLR0911
    common: dict[str, Any] = {"subject": subject, "occurred_at": when}
    kind = step["kind"]
    if kind == "grant":
        return GrantConsent(
            **common,
            purpose=step["purpose"],
            channel=step["channel"],
            policy_version="v1",
            double_opt_in="pending" if step["pending"] else "not_applicable",
        )
    if kind == "confirm":
        return ConfirmConsent(**common, purpose=step["purpose"], channel=step["channel"])
    if kind == "withdraw":
        return WithdrawConsent(**common, purpose=step["purpose"], channel=step["channel"])
    if kind == "unsubscribe":
        scope = {"purpose": step["purpose"]} if step["purpose"] else {"list_id": step["list"]}
        return Unsubscribe(**common, **scope)
    if kind == "object":
        if step["purpose"]:
            return RecordObjection(**common, purpose=step["purpose"])
        return RecordObjection(**common, all_direct_marketing=True)
    if kind == "restrict":
        return RestrictProcessing(**common, purposes=tuple(step["purposes"]))
    if kind == "lift":
        return LiftRestriction(**common, purposes=tuple(step["purposes"]))
    if kind == "accept":
        return AcceptPolicy(**common, version="v1")
    return RecordInteraction(**common, kind="click")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    path: Path = tmp_path_factory.mktemp("replay") / "ledger.sqlite3"
    ledger = sqlite_ledger(path, purposes=PURPOSES, policy_sha256=SHA)
    yield ledger
    ledger.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(steps, min_size=1, max_size=12))
def test_replayed_person_matches_the_reference_model(
    ledger: Ledger, sequence: list[dict[str, Any]]
) -> None:
    subject = f"prop-{uuid4().hex}"
    model = Model()
    commands = []
    expected_ok = []
    for n, step in enumerate(sequence):
        when = T0 + timedelta(minutes=n)
        commands.append(_command(subject, step, when))
        expected_ok.append(model.apply(step, when))

    # Submitted together, as concurrent callers would: they share group-commit batches.
    futures = [ledger.submit(command) for command in commands]
    results: list[CommandResult | LedgerError] = []
    for future in futures:
        try:
            results.append(future.result(timeout=TIMEOUT_S))
        except LedgerError as error:
            results.append(error)

    for result, ok in zip(results, expected_ok, strict=True):
        if ok:
            assert isinstance(result, CommandResult), result
        else:
            assert isinstance(result, ConsentNotPendingError)
    assert not any(
        isinstance(r, LedgerError) and ok for r, ok in zip(results, expected_ok, strict=True)
    )
    person = ledger.person(subject)
    if not any(expected_ok):
        assert person is None
        return
    assert person is not None
    assert {k: v.status.value for k, v in person.consents.items()} == model.consents
    assert person.unsubscribed == model.unsubscribed
    assert person.unsubscribed_lists == model.lists
    assert person.objections == model.objections
    assert person.restrictions == model.restrictions
    assert person.accepted_policies == model.accepted
    assert person.last_interaction_at == model.last_interaction
    assert person.version == sum(expected_ok)
