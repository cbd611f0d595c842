"""The sender's client of the consent ledger's HTTP API: typed, sync and async, on httpx.

It speaks HTTP only and imports nothing of the server, so it may ship on its own::

    from client import ConsentClient

    with ConsentClient("https://ledger.example", api_key="clk_...") as ledger:
        ledger.grant_consent(address="kim@example.org", purpose="newsletter", policy_version="v1")
        if ledger.check(address="kim@example.org", purpose="newsletter").allowed:
            ...
        for answer in ledger.check_many(addresses, purpose="newsletter", input="addresses"):
            ...
"""

from client.api import (
    AsyncConsentClient,
    CheckAnswer,
    ConsentClient,
    ConsentError,
    ConsentUnavailableError,
    Recorded,
)

__all__ = [
    "AsyncConsentClient",
    "CheckAnswer",
    "ConsentClient",
    "ConsentError",
    "ConsentUnavailableError",
    "Recorded",
]
