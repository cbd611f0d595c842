"""Many links at once, for a sender's mail merge: the same tokens `issue` makes, made faster.

A campaign's messages share their purpose or list and campaign id; only the person and the
message id change from one to the next. `LinkIssuer` validates each distinct shared part once
(as a whole claim, by the model's own rules) and each line's own fields by their schema types,
then packs and signs with the codec's precomputed key: the tokens are byte for byte those of
`UnsubscribeTokenCodec.issue` at the same second.
"""

from datetime import UTC, timedelta

from pydantic import TypeAdapter, ValidationError

from ledger.domain.errors import InvalidFieldError
from ledger.links.tokens import (
    FIELD_FLAGS,
    MAX_FIELD_BYTES,
    UnsubscribeClaim,
    UnsubscribeTokenCodec,
    optional_part,
    payload,
    subject_part,
)
from schemas import ShortText, SubjectId, error_reason

__all__ = ["LinkIssuer"]

_PURPOSE, _LIST, _CAMPAIGN, _MESSAGE = (
    FIELD_FLAGS[name] for name in ("purpose", "list_id", "campaign_id", "message_id")
)
_SUBJECT: TypeAdapter[str] = TypeAdapter(SubjectId)
_SHORT: TypeAdapter[str] = TypeAdapter(ShortText)
_MAX_SHARED = 4096
"""Distinct (purpose, list, campaign) parts remembered; a request with more starts again."""


class LinkIssuer:
    """Issues the links of one request with ``codec``'s newest key and clock."""

    def __init__(
        self, codec: UnsubscribeTokenCodec, *, expires_in: timedelta | None = None
    ) -> None:
        self._codec = codec
        self._expires_in = expires_in
        self._shared: dict[tuple[str | None, str | None, str | None], tuple[int, bytes]] = {}

    def _shared_part(
        self, purpose: str | None, list_id: str | None, campaign_id: str | None
    ) -> tuple[int, bytes]:
        key = (purpose, list_id, campaign_id)
        found = self._shared.get(key)
        if found is None:
            # The model's rules, once: a purpose or a list, not both; each field's own type.
            UnsubscribeClaim.build(
                subject="x",
                purpose=purpose,
                list_id=list_id,
                campaign_id=campaign_id,
                issued_at=self._codec.clock().astimezone(UTC).replace(microsecond=0),
            )
            if len(self._shared) >= _MAX_SHARED:
                self._shared.clear()
            found = optional_part(((_PURPOSE, purpose), (_LIST, list_id), (_CAMPAIGN, campaign_id)))
            self._shared[key] = found
        return found

    def issue(
        self,
        *,
        subject: str,
        purpose: str | None = None,
        list_id: str | None = None,
        campaign_id: str | None = None,
        message_id: str | None = None,
    ) -> str:
        """One token, as `UnsubscribeTokenCodec.issue` would make it; else `InvalidFieldError`."""
        shared_flags, shared = self._shared_part(purpose, list_id, campaign_id)
        _check("subject", _SUBJECT, subject)
        if message_id is not None:
            _check("message_id", _SHORT, message_id)
            if len(message_id.encode()) > MAX_FIELD_BYTES:
                raise InvalidFieldError(
                    "message_id", f"longer than {MAX_FIELD_BYTES} bytes in UTF-8"
                )
        subject_flag, subject_bytes = subject_part(subject)
        message_flag, message = optional_part(((_MESSAGE, message_id),))
        issued = int(self._codec.clock().timestamp())
        expires = (
            None if self._expires_in is None else issued + int(self._expires_in.total_seconds())
        )
        flags = subject_flag | shared_flags | message_flag
        return self._codec.sign(payload(flags, issued, expires, subject_bytes + shared + message))


def _check(field: str, adapter: TypeAdapter[str], value: str) -> None:
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        raise InvalidFieldError(field, error_reason(error.errors()[0])) from None
