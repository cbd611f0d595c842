"""Complaint (ARF) and bounce (DSN) reports as providers send them, for the feedback tests.

Layouts follow RFC 5965 appendix B (and the file ``tests/samples/feedback/rfc5965-abuse.eml``,
its example B.2 verbatim), RFC 3464 appendix, and the layouts providers document for their
feedback loops: Yahoo's CFL (``Received-Date``, a redacted ``Original-Rcpt-To``), Microsoft's
JMRP (``User-Agent: Hotmail FBL``, no ``Reporting-MTA``), AOL's (``User-Agent: AOL SComp``) and
the headers-only variant (``text/rfc822-headers``, as Comcast and others send).
"""

from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "samples" / "feedback"
RFC5965_EXAMPLE = SAMPLES / "rfc5965-abuse.eml"
BOUNDARY = "part1_13d.2e68ed54_boundary"

LAYOUTS: dict[str, dict[str, Any]] = {
    "rfc5965": {
        "from": "<abusedesk@example.com>",
        "fields": [
            "User-Agent: SomeGenerator/1.0",
            "Version: 1",
            "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT",
            "Reporting-MTA: dns; mail.example.com",
            "Source-IP: 192.0.2.1",
        ],
        "original": "message/rfc822",
    },
    "yahoo": {
        "from": "<feedback@arf.mail.yahoo.com>",
        "fields": [
            "User-Agent: Yahoo!-Mail-Feedback/2.0",
            "Version: 0.1",
            "Original-Rcpt-To: 3f2a9c@redacted.yahoo.com",
            "Received-Date: Mon, 7 Dec 2026 09:12:00 +0000",
            "Reported-Domain: sender.example",
        ],
        "original": "message/rfc822",
    },
    "microsoft": {
        "from": "<staff@hotmail.com>",
        "fields": ["User-Agent: Hotmail FBL", "Version: 0.1"],
        "original": "message/rfc822",
    },
    "aol": {
        "from": "<scomp@aol.net>",
        "fields": [
            "User-Agent: AOL SComp",
            "Version: 0.1",
            "Received-Date: Mon, 7 Dec 2026 09:12:00 -0500",
            "Reporting-MTA: dns; aol.com",
        ],
        "original": "message/rfc822",
    },
    "headers-only": {
        "from": "<fbl@comcast.example>",
        "fields": ["User-Agent: FBL/1.0", "Version: 1", "Reporting-MTA: dns; mx.comcast.example"],
        "original": "text/rfc822-headers",
    },
}


def original_message(
    *, list_unsubscribe: str | None = None, subject_header: str | None = None, to: str | None = None
) -> str:
    lines = [
        "From: <news@sender.example>",
        f"To: <{to or 'redacted@example.invalid'}>",
        "Subject: Our spring offers",
        "Message-ID: <spring-2026.42@sender.example>",
        "X-Campaign-ID: spring-2026",
        "Date: Mon, 7 Dec 2026 08:00:00 +0000",
    ]
    if list_unsubscribe is not None:
        lines.append(f"List-Unsubscribe: {list_unsubscribe}")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if subject_header is not None:
        lines.append(f"X-Consent-Subject: {subject_header}")
    return "\r\n".join(lines)


def arf(
    feedback_type: str | None,
    original: str | None,
    *,
    layout: str = "rfc5965",
    rcpt_to: str | None = None,
    report_type: str = "feedback-report",
    nonce: str = "1",
) -> bytes:
    """A complaint report; ``feedback_type`` None leaves the field out, ``original`` None the
    original message; ``nonce`` makes otherwise equal reports different ones."""
    shape = LAYOUTS[layout]
    fields = [f"Feedback-Type: {feedback_type}"] if feedback_type is not None else []
    fields += shape["fields"]
    if rcpt_to is not None:
        fields.append(f"Original-Rcpt-To: <{rcpt_to}>")
    parts = [
        "\r\n".join(
            [
                'Content-Type: text/plain; charset="US-ASCII"',
                "",
                f"This is an email abuse report (report {nonce}).",
            ]
        ),
        "\r\n".join(["Content-Type: message/feedback-report", "", *fields]),
    ]
    if original is not None:
        body = "\r\n\r\nOur offers this spring." if shape["original"] == "message/rfc822" else ""
        parts.append(f"Content-Type: {shape['original']}\r\n\r\n{original}{body}")
    return _multipart(shape["from"], report_type, parts)


def dsn(recipients: list[tuple[str, str, str]], original: str | None, *, nonce: str = "1") -> bytes:
    """A delivery status notification (RFC 3464): (address, action, status) per recipient."""
    blocks = [
        "Reporting-MTA: dns; mx.receiver.example\r\n"
        f"Arrival-Date: Mon, 7 Dec 2026 08:00:0{nonce[-1]} +0000"
    ]
    for address, action, status in recipients:
        blocks.append(
            f"Final-Recipient: rfc822; {address}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; 550 {status} <{address}>: Recipient address rejected"
        )
    parts = [
        f"Content-Type: text/plain\r\n\r\nDelivery to the following recipients failed ({nonce}).",
        "Content-Type: message/delivery-status\r\n\r\n" + "\r\n\r\n".join(blocks),
    ]
    if original is not None:
        parts.append(f"Content-Type: text/rfc822-headers\r\n\r\n{original}")
    return _multipart("<MAILER-DAEMON@mx.receiver.example>", "delivery-status", parts)


def _multipart(sender: str, report_type: str, parts: list[str]) -> bytes:
    head = "\r\n".join(
        [
            f"From: {sender}",
            "Date: Mon, 7 Dec 2026 09:30:00 +0000",
            "Subject: report",
            "To: <fbl@sender.example>",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type={report_type}; boundary="{BOUNDARY}"',
        ]
    )
    body = "".join(f"--{BOUNDARY}\r\n{part}\r\n" for part in parts)
    return f"{head}\r\n\r\n{body}--{BOUNDARY}--\r\n".encode()
