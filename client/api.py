"""The client proper: one method per command, checks that see the client's own writes.

Every write carries an ``Idempotency-Key`` (a new UUID per call, the same on its retries), so a
retry after a lost answer records once. A 503 is retried, waiting what ``Retry-After`` says.
Each write's ledger position is kept as a consistency token: a later check passes it as
``min_position``, so a check after a write sees the write (or fails closed, never stale).
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, Self, TypeVar

import httpx

R = TypeVar("R")
Input = Literal["subjects", "addresses"]
_NDJSON = "application/x-ndjson"
_RETRY_AFTER_DEFAULT_S = 1.0


class ConsentError(Exception):
    """The ledger refused a request: ``status`` and its problem details (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('title', '')} {problem.get('detail', '')}")
        self.status = status
        self.problem = problem
        self.field: str | None = problem.get("field")


class ConsentUnavailableError(ConsentError):
    """Still 503 (a stale projection, a database down) after every retry."""


@dataclass(frozen=True, slots=True)
class Recorded:
    command_id: str
    subject: str
    event_ids: list[str]
    position: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    subject: str | None
    allowed: bool
    reason: str | None
    error: str | None = None
    """For one line of a bulk check that could not be checked (a bad address)."""


_COMMANDS = {
    "register_purpose": "/v1/purposes",
    "publish_policy_version": "/v1/policy-versions",
    "grant_consent": "/v1/consents/grant",
    "confirm_consent": "/v1/consents/confirm",
    "withdraw_consent": "/v1/consents/withdraw",
    "unsubscribe": "/v1/unsubscribes",
    "accept_policy": "/v1/policy-acceptances",
    "record_objection": "/v1/objections",
    "restrict_processing": "/v1/restrictions",
    "lift_restriction": "/v1/restrictions/lift",
    "open_rights_request": "/v1/rights-requests",
    "extend_rights_request": "/v1/rights-requests/extend",
    "close_rights_request": "/v1/rights-requests/close",
    "erase_subject": "/v1/erasures",
    "record_interaction": "/v1/interactions",
}
"""Each command's method name and path (the server's ``POST /v1/...`` routes)."""


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"title": response.reason_phrase}
    return body if isinstance(body, dict) else {"title": str(body)}


def _retry_after(response: httpx.Response, ceiling: float) -> float:
    try:
        wait = float(response.headers.get("Retry-After", _RETRY_AFTER_DEFAULT_S))
    except ValueError:
        wait = _RETRY_AFTER_DEFAULT_S
    return max(0.0, min(wait, ceiling))


def _answer(line: str) -> CheckAnswer:
    data = json.loads(line)
    if "allowed" not in data:
        return CheckAnswer(data.get("subject"), allowed=False, reason=None, error=data.get("error"))
    return CheckAnswer(data["subject"], allowed=data["allowed"], reason=data.get("reason"))


def _line(person: str) -> bytes:
    return (json.dumps(person) + "\n").encode()


class _Commands(Generic[R]):
    """One method per command; ``R`` is `Recorded`, or an awaitable of it (async)."""

    def record(self, path: str, fields: dict[str, Any]) -> R:
        raise NotImplementedError

    def register_purpose(self, **fields: Any) -> R:
        return self.record(_COMMANDS["register_purpose"], fields)

    def publish_policy_version(self, **fields: Any) -> R:
        return self.record(_COMMANDS["publish_policy_version"], fields)

    def grant_consent(self, **fields: Any) -> R:
        return self.record(_COMMANDS["grant_consent"], fields)

    def confirm_consent(self, **fields: Any) -> R:
        return self.record(_COMMANDS["confirm_consent"], fields)

    def withdraw_consent(self, **fields: Any) -> R:
        return self.record(_COMMANDS["withdraw_consent"], fields)

    def unsubscribe(self, **fields: Any) -> R:
        return self.record(_COMMANDS["unsubscribe"], fields)

    def accept_policy(self, **fields: Any) -> R:
        return self.record(_COMMANDS["accept_policy"], fields)

    def record_objection(self, **fields: Any) -> R:
        return self.record(_COMMANDS["record_objection"], fields)

    def restrict_processing(self, **fields: Any) -> R:
        return self.record(_COMMANDS["restrict_processing"], fields)

    def lift_restriction(self, **fields: Any) -> R:
        return self.record(_COMMANDS["lift_restriction"], fields)

    def open_rights_request(self, **fields: Any) -> R:
        return self.record(_COMMANDS["open_rights_request"], fields)

    def extend_rights_request(self, **fields: Any) -> R:
        return self.record(_COMMANDS["extend_rights_request"], fields)

    def close_rights_request(self, **fields: Any) -> R:
        return self.record(_COMMANDS["close_rights_request"], fields)

    def erase_subject(self, **fields: Any) -> R:
        return self.record(_COMMANDS["erase_subject"], fields)

    def record_interaction(self, **fields: Any) -> R:
        return self.record(_COMMANDS["record_interaction"], fields)


class _Session:
    """What both clients share: the key, the retry bounds and the consistency token."""

    def __init__(self, *, api_key: str, retries: int, max_wait_s: float) -> None:
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.retries = retries
        self.max_wait_s = max_wait_s
        self.position: int | None = None
        """The newest position this client wrote: what its checks must see."""

    def wrote(self, response: httpx.Response) -> Recorded:
        body = response.json()
        recorded = Recorded(**{k: body[k] for k in Recorded.__dataclass_fields__})
        self.position = max(self.position or 0, recorded.position)
        return recorded

    def check_params(
        self, purpose: str, channel: str, min_position: int | None, **person: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"purpose": purpose, "channel": channel}
        params.update({k: v for k, v in person.items() if v is not None})
        wanted = min_position if min_position is not None else self.position
        if wanted is not None:
            params["min_position"] = wanted
        return params

    @staticmethod
    def failed(response: httpx.Response) -> ConsentError:
        if response.status_code == 503:
            return ConsentUnavailableError(503, _problem(response))
        return ConsentError(response.status_code, _problem(response))


class ConsentClient(_Commands[Recorded]):
    """The synchronous client; close it (or use ``with``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout_s: float = 10.0,
        retries: int = 5,
        max_wait_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._session = _Session(api_key=api_key, retries=retries, max_wait_s=max_wait_s)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def position(self) -> int | None:
        return self._session.position

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        session = self._session
        headers = session.headers | kwargs.pop("headers", {})
        for attempt in range(session.retries + 1):
            response = self._http.request(method, path, headers=headers, **kwargs)
            if response.status_code != 503 or attempt == session.retries:
                break
            time.sleep(_retry_after(response, session.max_wait_s))
        if response.is_success:
            return response
        raise session.failed(response)

    def record(self, path: str, fields: dict[str, Any]) -> Recorded:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._session.wrote(self._send("POST", path, json=fields, headers=headers))

    def check(
        self,
        *,
        purpose: str,
        subject: str | None = None,
        address: str | None = None,
        channel: str = "email",
        min_position: int | None = None,
    ) -> CheckAnswer:
        params = self._session.check_params(
            purpose, channel, min_position, subject=subject, address=address
        )
        return _answer(self._send("GET", "/v1/check", params=params).text)

    def check_many(
        self,
        people: Iterable[str],
        *,
        purpose: str,
        input: Input = "subjects",  # noqa: A002 - the API's own name
        channel: str = "email",
        min_position: int | None = None,
    ) -> Iterator[CheckAnswer]:
        """Stream ``people`` in and their answers out, in order, as the server gives them."""
        params = self._session.check_params(purpose, channel, min_position) | {"input": input}
        headers = self._session.headers | {"Content-Type": _NDJSON, "Accept": _NDJSON}
        body = (_line(person) for person in people)
        with self._http.stream(
            "POST", "/v1/check", params=params, content=body, headers=headers
        ) as response:
            if not response.is_success:
                response.read()
                raise self._session.failed(response)
            for line in response.iter_lines():
                if line.strip():
                    yield _answer(line)


class AsyncConsentClient(_Commands[Awaitable[Recorded]]):
    """The asynchronous client; close it (or use ``async with``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout_s: float = 10.0,
        retries: int = 5,
        max_wait_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._session = _Session(api_key=api_key, retries=retries, max_wait_s=max_wait_s)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    @property
    def position(self) -> int | None:
        return self._session.position

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        session = self._session
        headers = session.headers | kwargs.pop("headers", {})
        for attempt in range(session.retries + 1):
            response = await self._http.request(method, path, headers=headers, **kwargs)
            if response.status_code != 503 or attempt == session.retries:
                break
            await asyncio.sleep(_retry_after(response, session.max_wait_s))
        if response.is_success:
            return response
        raise session.failed(response)

    async def record(self, path: str, fields: dict[str, Any]) -> Recorded:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._session.wrote(await self._send("POST", path, json=fields, headers=headers))

    async def check(
        self,
        *,
        purpose: str,
        subject: str | None = None,
        address: str | None = None,
        channel: str = "email",
        min_position: int | None = None,
    ) -> CheckAnswer:
        params = self._session.check_params(
            purpose, channel, min_position, subject=subject, address=address
        )
        return _answer((await self._send("GET", "/v1/check", params=params)).text)

    async def check_many(
        self,
        people: AsyncIterable[str] | Iterable[str],
        *,
        purpose: str,
        input: Input = "subjects",  # noqa: A002 - the API's own name
        channel: str = "email",
        min_position: int | None = None,
    ) -> AsyncIterator[CheckAnswer]:
        """Stream ``people`` in and their answers out, in order, as the server gives them."""
        params = self._session.check_params(purpose, channel, min_position) | {"input": input}
        headers = self._session.headers | {"Content-Type": _NDJSON, "Accept": _NDJSON}

        async def body() -> AsyncIterator[bytes]:
            if isinstance(people, AsyncIterable):
                async for person in people:
                    yield _line(person)
            else:
                for person in people:
                    yield _line(person)

        async with self._http.stream(
            "POST", "/v1/check", params=params, content=body(), headers=headers
        ) as response:
            if not response.is_success:
                await response.aread()
                raise self._session.failed(response)
            async for line in response.aiter_lines():
                if line.strip():
                    yield _answer(line)
