"""Rules of the rights commands that hold before anything is stored."""

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.commands import (
    PROSPECT_MAX_AGE_DAYS,
    OpenRightsRequest,
    RecordInteraction,
    RegisterPurpose,
    build,
)
from ledger.domain.errors import InvalidFieldError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("legal_basis", "direct_marketing", "given", "expected"),
    [
        ("consent", True, None, PROSPECT_MAX_AGE_DAYS),
        ("consent", True, 365, 365),
        ("consent", False, None, None),
        ("legitimate_interest", True, None, None),
        ("contract", False, 30, 30),
    ],
)
def test_a_prospects_consent_lasts_three_years_unless_the_purpose_says_otherwise(
    legal_basis: str, direct_marketing: bool, given: int | None, expected: int | None
) -> None:
    command = RegisterPurpose(
        purpose="offers",
        legal_basis=legal_basis,
        description="Offers",
        direct_marketing=direct_marketing,
        max_age_days=given,
        occurred_at=NOW,
    )
    assert command.max_age_days == expected


def test_a_rights_request_is_due_one_month_after_it_was_received() -> None:
    received = NOW - timedelta(days=3)
    request = OpenRightsRequest(subject="p", right="access", received_at=received, occurred_at=NOW)
    assert request.effective_due_at == received + timedelta(days=30)
    assert OpenRightsRequest(subject="p", right="access", occurred_at=NOW).effective_due_at == (
        NOW + timedelta(days=30)
    )


def test_an_email_open_is_no_interaction() -> None:
    # Mail clients open messages on their own: an open must never reset the inactivity clock.
    with pytest.raises(InvalidFieldError) as error:
        build(RecordInteraction, subject="p", kind="open", occurred_at=NOW)
    assert error.value.field == "kind"
    assert build(RecordInteraction, subject="p", kind="click", occurred_at=NOW).kind == "click"
