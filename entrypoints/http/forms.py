"""Forms posted to the recipients' pages and links: read within a small bound, either encoding."""

from email import policy
from email.parser import BytesParser
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from entrypoints.http.pages import PAGE_HEADERS
from entrypoints.http.problems import ApiProblemError

__all__ = ["MAX_BODY_BYTES", "Form", "read_form"]

MAX_BODY_BYTES = 4096
"""A page's form is a few dozen bytes; a few KiB leaves room for a client's multipart framing."""
MAX_FORM_FIELDS = 64
"""A preference centre posts a few fields per purpose; more is not a form of ours."""


def _form_fields(body: bytes, content_type: str) -> list[tuple[str, str]]:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise ValueError("multipart body without parts")
        fields = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.append((name, payload.decode().strip()))
        return fields[:MAX_FORM_FIELDS]
    # RFC 8058 names both form encodings; a client that labels the body otherwise (or not at
    # all) still sent the key/value pair, which is what the RFC requires.
    return parse_qsl(
        body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
    )


async def read_form(request: Request) -> list[tuple[str, str]]:
    """The POSTed form's fields in order, at most `MAX_BODY_BYTES` of it."""
    too_large = ApiProblemError(
        413,
        "body-too-large",
        "The request body is too large",
        detail=f"at most {MAX_BODY_BYTES} bytes",
        headers=PAGE_HEADERS,
    )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    try:
        return _form_fields(bytes(body), request.headers.get("content-type", ""))
    except (ValueError, UnicodeError, LookupError):
        raise ApiProblemError(
            400, "unreadable-form", "The request body is not a form", headers=PAGE_HEADERS
        ) from None


Form = Annotated[list[tuple[str, str]], Depends(read_form)]
"""A route's parameter: the POSTed form's fields, in order."""
