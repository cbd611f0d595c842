"""Sending the ledger's events to the registered endpoints: signed, at least once, in order.

Each endpoint is served from its cursor, one event after the other: an event is sent until the
endpoint answers 2xx, and no later event goes to it before. A failure is retried with
exponential backoff and jitter; an endpoint failing for longer than ``retry_for`` is disabled
(and ``consent_ledger_webhook_endpoints_disabled`` rises, which an alert rule watches).
Endpoints are served side by side, on threads of their own.
"""

import json
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks import Webhook

from ledger.domain.backoff import Stop, follow
from ledger.sidecar import as_text
from ledger.webhooks import metrics
from ledger.webhooks.store import (
    DELIVERED,
    FAILED,
    RETRYING,
    Delivery,
    Endpoint,
    WebhookStore,
)
from schemas import EventBase, dump_event

Source = Callable[[int, int], Sequence[tuple[int, EventBase]]]
"""The events stored after a position, at most so many, with their positions, in order."""
FAILING_TOO_LONG = "failing_for_longer_than_the_retry_period"
_ERROR_MAX = 200


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch: int = 500
    """Events sent to one endpoint per step before the others get their turn."""
    timeout_s: float = 5.0
    retry_start_s: float = 1.0
    retry_max_s: float = 3600.0
    retry_for: timedelta = timedelta(hours=24)
    """How long an endpoint may fail before it is disabled."""
    workers: int = 8
    poll_s: float = 0.05


def payload(event: EventBase, position: int) -> str:
    """The Standard Webhooks body: ``type``, ``timestamp`` and ``data``, the event with its
    position. The subject names the person; sealed personal data stays out."""
    data = dump_event(event)
    data.pop("personal", None)
    data["position"] = position
    body = {"type": event.event_type, "timestamp": data["recorded_at"], "data": data}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def concerns(endpoint: Endpoint, event: EventBase) -> bool:
    """Whether the endpoint asked for this event: its type, and a purpose it names (an event
    without a purpose, such as an unsubscribe from everything, concerns every purpose)."""
    if event.catalog and not endpoint.event_types:
        return False
    if endpoint.event_types and event.event_type not in endpoint.event_types:
        return False
    if not endpoint.purposes:
        return True
    named: set[str] = set()
    purpose = getattr(event, "purpose", None)
    if isinstance(purpose, str):
        named.add(purpose)
    named.update(getattr(event, "purposes", None) or ())
    return not named or bool(named & set(endpoint.purposes))


def delivery_id(endpoint: Endpoint, event: EventBase) -> str:
    """The ``webhook-id``: the same on every attempt, so a receiver can drop a repeat."""
    return f"msg_{endpoint.webhook_id.removeprefix('wh_')}_{event.event_id.hex}"


class Dispatcher:
    """Serves every active endpoint from its cursor (`step`), or until stopped (`follow`)."""

    def __init__(
        self,
        *,
        store: WebhookStore,
        source: Source,
        head: Callable[[], int],
        config: DispatchConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self._source = source
        self._head = head
        self._config = config
        self._clock = clock
        self._client = httpx.Client(timeout=config.timeout_s, transport=transport)
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="webhooks")
        self._random = random.Random()  # noqa: S311 - jitter, not a secret

    def close(self) -> None:
        self._pool.shutdown()
        self._client.close()

    def step(self) -> int:
        """Serve each active endpoint once; how many deliveries succeeded."""
        endpoints = self.store.endpoints(active_only=True)
        head = self._head()
        delivered = sum(self._pool.map(self._serve, endpoints))
        served = self.store.endpoints(active_only=True)
        metrics.RETRYING.set(sum(1 for e in served if e.attempts))
        metrics.LAG.set(max((head - e.cursor for e in served), default=0))
        return delivered

    def follow(self, stop: Stop) -> None:
        """`step` until ``stop`` is set; a database that does not answer is waited out."""
        follow(
            self.step,
            stop,
            transient=(OSError,),
            on_failure=lambda _error, _pause: None,
            backoff_max_s=5.0,
            poll_s=self._config.poll_s,
        )

    def _serve(self, endpoint: Endpoint) -> int:
        now = self._clock()
        if endpoint.next_attempt_at is not None and now < endpoint.next_attempt_at:
            return 0
        cursor, delivered = endpoint.cursor, 0
        attempts, failing_since, next_attempt_at = endpoint.attempts, endpoint.failing_since, None
        made: list[Delivery] = []
        give_up = False
        webhook = Webhook(endpoint.secret)
        for position, event in self._source(endpoint.cursor, self._config.batch):
            if not concerns(endpoint, event):
                cursor = position
                continue
            status, error = self._send(webhook, endpoint, event, position)
            at = self._clock()
            attempts += 1
            if error is None:
                outcome = DELIVERED
                metrics.DELIVERY_DELAY.observe(max(0.0, (at - event.recorded_at).total_seconds()))
            else:
                failing_since = failing_since or at
                give_up = at - failing_since >= self._config.retry_for
                outcome = FAILED if give_up else RETRYING
            metrics.DELIVERIES.labels(outcome).inc()
            made.append(
                self._delivery(
                    endpoint,
                    event,
                    position,
                    status=outcome,
                    attempts=attempts,
                    response_status=status,
                    error=error,
                    at=at,
                )
            )
            if error is not None:
                if not give_up:
                    next_attempt_at = at + timedelta(seconds=self._pause(attempts))
                break
            cursor, delivered, attempts, failing_since = position, delivered + 1, 0, None
        self.store.progress(
            endpoint,
            cursor=cursor,
            deliveries=made,
            failing_since=failing_since,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
        )
        if give_up:
            metrics.DISABLED.inc()
            self.store.disable(endpoint.webhook_id, reason=FAILING_TOO_LONG)
        return delivered

    def _pause(self, attempts: int) -> float:
        """Exponential backoff with full jitter over its upper half: never all at once."""
        ceiling = min(self._config.retry_max_s, self._config.retry_start_s * 2 ** (attempts - 1))
        return float(ceiling * self._random.uniform(0.5, 1.0))

    def _send(
        self, webhook: Webhook, endpoint: Endpoint, event: EventBase, position: int
    ) -> tuple[int | None, str | None]:
        body = payload(event, position)
        message_id = delivery_id(endpoint, event)
        sent_at = self._clock()
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": webhook.sign(message_id, sent_at, body),
        }
        try:
            response = self._client.post(endpoint.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as error:
            return None, type(error).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    @staticmethod
    def _delivery(
        endpoint: Endpoint,
        event: EventBase,
        position: int,
        *,
        status: str,
        attempts: int,
        response_status: int | None,
        error: str | None,
        at: datetime,
    ) -> Delivery:
        return Delivery(
            delivery_id=delivery_id(endpoint, event),
            webhook_id=endpoint.webhook_id,
            position=position,
            event_id=str(event.event_id),
            event_type=event.event_type,
            status=status,
            attempts=attempts,
            response_status=response_status,
            error=None if error is None else error[:_ERROR_MAX],
            last_attempt_at=as_text(at),
        )


def start(dispatcher: Dispatcher, stop: threading.Event) -> threading.Thread:
    """Follow in a daemon thread of its own."""
    thread = threading.Thread(
        target=dispatcher.follow, args=(stop,), name="webhook-dispatcher", daemon=True
    )
    thread.start()
    return thread


__all__ = ["DispatchConfig", "Dispatcher", "Source", "concerns", "payload", "start"]
