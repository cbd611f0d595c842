"""A consent is given under a policy version that covers its purpose, by the pure rules alone."""

from datetime import UTC, datetime

import pytest

from ledger.domain import commands
from ledger.domain.aggregates import Catalog, Person
from ledger.domain.commands import Command
from ledger.domain.errors import PurposeNotCoveredError
from ledger.domain.handlers import Context, handle
from schemas import CATALOG_SUBJECT, EventBase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SHA = "0" * 64


def _handle(catalog: Catalog, command: Command, subject: str = CATALOG_SUBJECT) -> list[EventBase]:
    person = None if subject == CATALOG_SUBJECT else Person.new(subject)
    context = Context(subject, catalog, person, T0, None, command.command_id or "c")
    return handle(command, context)


def _catalog(*policies: tuple[str, tuple[str, ...]]) -> Catalog:
    catalog = Catalog.new()
    for purpose in ("newsletter", "partners"):
        register = commands.RegisterPurpose(
            purpose=purpose, legal_basis="consent", description=purpose, occurred_at=T0
        )
        catalog.trigger(_handle(catalog, register))
    for version, purposes in policies:
        publish = commands.PublishPolicyVersion(
            version=version, text_sha256=SHA, effective_at=T0, purposes=purposes, occurred_at=T0
        )
        catalog.trigger(_handle(catalog, publish))
    return catalog


def _grant(purpose: str, version: str) -> commands.GrantConsent:
    return commands.GrantConsent(
        subject="p1", purpose=purpose, policy_version=version, occurred_at=T0
    )


def test_a_grant_for_a_purpose_its_policy_version_does_not_cover_is_refused() -> None:
    catalog = _catalog(("v1", ("newsletter",)))

    with pytest.raises(PurposeNotCoveredError) as refused:
        _handle(catalog, _grant("partners", "v1"), "p1")

    assert refused.value.field == "purpose"
    assert (refused.value.purpose, refused.value.version) == ("partners", "v1")
    assert str(refused.value) == 'purpose: policy version "v1" does not cover purpose "partners"'


def test_a_grant_for_a_covered_purpose_is_recorded() -> None:
    catalog = _catalog(("v1", ("newsletter",)))

    recorded = _handle(catalog, _grant("newsletter", "v1"), "p1")

    assert [event.event_type for event in recorded] == ["ConsentGranted"]


def test_a_policy_version_listing_no_purpose_covers_every_purpose() -> None:
    # As for re-consent (rules.renews): a version that names no purpose is about all of them.
    catalog = _catalog(("v1", ()))

    assert [e.event_type for e in _handle(catalog, _grant("partners", "v1"), "p1")] == [
        "ConsentGranted"
    ]
