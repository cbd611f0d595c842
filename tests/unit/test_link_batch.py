"""The mail merge's issuer makes exactly the codec's tokens, and refuses what the codec refuses."""

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.errors import InvalidFieldError
from ledger.links.batch import LinkIssuer
from ledger.links.tokens import UnsubscribeTokenCodec

NOW = datetime(2026, 12, 7, 12, 0, 30, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "9f" * 32, "purpose": "newsletter", "campaign_id": "c1", "message_id": "<m@x>"},
        {"subject": "crm:42", "list_id": "weekly"},
        {"subject": "crm:43"},
        {"subject": "9f" * 32, "campaign_id": "été", "message_id": "m" * 200},
    ],
)
@pytest.mark.parametrize("expires_in", [None, timedelta(days=60)])
def test_the_issuer_makes_the_codecs_tokens(
    fields: dict[str, str], expires_in: timedelta | None
) -> None:
    codec = UnsubscribeTokenCodec({"k1": b"n" * 32, "k0": b"o" * 32}, clock=lambda: NOW)
    issuer = LinkIssuer(codec, expires_in=expires_in)
    for _ in range(2):  # the second time from the issuer's cache of shared parts
        assert issuer.issue(**fields) == codec.issue(**fields, expires_in=expires_in)
    assert codec.verify(issuer.issue(**fields)).subject == fields["subject"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subject": "no spaces allowed"}, "subject"),
        ({"subject": "p", "purpose": "Not A Slug"}, "purpose"),
        ({"subject": "p", "purpose": "newsletter", "list_id": "weekly"}, "command"),
        ({"subject": "p", "message_id": "x" * 201}, "message_id"),
        ({"subject": "p", "message_id": "é" * 150}, "message_id"),
        ({"subject": "p", "message_id": "a\nb"}, "message_id"),
    ],
)
def test_the_issuer_refuses_a_bad_field_by_name(fields: dict[str, str], field: str) -> None:
    issuer = LinkIssuer(UnsubscribeTokenCodec({"k1": b"n" * 32}))
    with pytest.raises(InvalidFieldError) as caught:
        issuer.issue(**fields)
    assert caught.value.field == field
