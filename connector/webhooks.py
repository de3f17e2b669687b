"""Signed webhooks from the outbox, following the Standard Webhooks conventions.

Each configured endpoint gets every event it subscribes to, at least once and in order per order
id: ``webhook-id`` (the event's id, the same on every retry and replay, so a receiver deduplicates
on it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,`` + base64 of
HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's ``whsec_`` secret). A failed delivery
(no answer, or any status but 2xx) is retried with exponential back-off; an event still undelivered
``dead_after_hours`` after it happened is given up (dead letter) and can be replayed
(``mfn-connector webhooks replay``). Delivery state lives in the ledger, so a daemon killed
mid-delivery sends the event again after a restart, with the same id.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from .kit.settings import URL, Secret, Settings
from .model import utcnow

if TYPE_CHECKING:
    import requests

    from .events import Event
    from .ledger import Ledger

log = logging.getLogger("connector.webhooks")

SECRET_PREFIX = "whsec_"


def _section(properties: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


@dataclass(frozen=True, kw_only=True)
class WebhookEndpoint(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "name": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$",
                 "x-format": "lower-case letters, digits, - and _"},
        "url": URL,
        "secret": {"type": "string", "x-secret": True,
                   "pattern": r"^whsec_(?:[A-Za-z0-9+/]{4}){6,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
                   "x-format": "whsec_ and the base64 (padded) of at least 18 random bytes"},
        "events": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                   "default": ["*"], "description": "event types or globs (package.*); * = all"},
    }, required=("name", "url", "secret"))
    name: str
    url: Secret  # a Slack, Discord or Teams URL carries its token in the path: '***' in a repr
    secret: Secret
    events: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class WebhookSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = {**_section({
        "endpoints": {"type": "array", "default": [], "items": WebhookEndpoint.SCHEMA},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
        "backoff_base_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                                 "description": "the first retry's delay; it doubles per attempt"},
        "backoff_max_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 3600},
        "dead_after_hours": {"type": "number", "exclusiveMinimum": 0, "default": 72,
                             "description": "an event undelivered this long after it happened is given "
                                          "up (dead letter; replay sends it again)"},
        "batch": {"type": "integer", "minimum": 1, "default": 100,
                  "description": "deliveries per endpoint per pass"},
    }), "default": {}}
    endpoints: tuple[WebhookEndpoint, ...]
    timeout_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float
    dead_after_hours: float
    batch: int

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure (1, 2, ...): base, 2 x base, ... up to the max."""
        # Doublings capped: 2 ** 1024 times a float raises, and a long dead_after_hours allows that many
        # failures. Long before the cap the product is past any maximum (or a float's inf).
        seconds = self.backoff_base_seconds * 2.0 ** min(attempts - 1, 1000)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a message (Standard Webhooks, scheme v1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


UNANSWERED_IN_A_ROW = 3  # posts an endpoint leaves unanswered in a row before it is left till the next pass


def deliver(ledger: Ledger, settings: WebhookSettings, session: requests.Session | None = None,
            *, now: datetime | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
    """One pass over every endpoint: queue new events, post the due ones, record each result.

    An endpoint that leaves :data:`UNANSWERED_IN_A_ROW` posts in a row unanswered (a timeout, no
    connection) is left until the next pass: waiting ``timeout_seconds`` for each of a batch would
    hold up the jobs after it (tracking, alerts) for many minutes. A stop request ends the pass
    before the next post."""
    import requests  # here, not at the top: every command loads this module with the configuration

    report = DeliveryReport()
    session = session or requests.Session()
    for endpoint in settings.endpoints:
        if should_stop():
            break
        ledger.enqueue_webhooks(endpoint.name, endpoint.events)
        sent = unanswered = 0
        while sent < settings.batch and unanswered < UNANSWERED_IN_A_ROW and not should_stop():
            # rounds: an order's next event is due once its previous is sent
            due = ledger.due_webhooks(endpoint.name, now or utcnow(), settings.batch - sent)
            if not due:
                break
            for event, attempts, since in due:  # a failure waits for its back-off, holds up its order only
                if should_stop() or unanswered >= UNANSWERED_IN_A_ROW:
                    break
                status = _attempt(ledger, settings, endpoint, session, event, attempts, since, now, report)
                unanswered = unanswered + 1 if _unanswered(status) else 0
            sent += len(due)
        if unanswered >= UNANSWERED_IN_A_ROW:
            log.warning("webhook %s: %d posts in a row unanswered; the rest wait for the next pass",
                        endpoint.name, unanswered)
    return report


def _unanswered(status: str) -> bool:
    return status == "timeout" or status.startswith("unreachable")


def _attempt(ledger: Ledger, settings: WebhookSettings, endpoint: WebhookEndpoint, session: requests.Session,
             event: Event, attempts: int, since: datetime, now: datetime | None,
             report: DeliveryReport) -> str:
    """Post one event and record the outcome (delivered, due again after a back-off, or dead:
    ``dead_after_hours`` after ``since``, the event's time or its latest replay); returns the
    status recorded."""
    status = _post(session, endpoint, event.webhook_id, event.body(), settings.timeout_seconds)
    at = now or utcnow()
    if status.startswith("2"):
        ledger.webhook_result(endpoint.name, event.id, status=status, delivered=True, next_attempt_at=None)
        report.delivered += 1
        return status
    if at - since >= timedelta(hours=settings.dead_after_hours):
        ledger.webhook_result(endpoint.name, event.id, status=status, delivered=False, next_attempt_at=None)
        report.dead += 1
        log.warning("webhook %s: event %s (%s) given up after %d attempts (%s)", endpoint.name,
                    event.webhook_id, event.type, attempts + 1, status)
    else:
        ledger.webhook_result(endpoint.name, event.id, status=status, delivered=False,
                              next_attempt_at=at + settings.retry_delay(attempts + 1))
        report.failed += 1
    return status


def _post(session: requests.Session, endpoint: WebhookEndpoint, webhook_id: str, body: bytes,
          timeout: float) -> str:
    """POST one signed message; the HTTP status as text, or the kind of failure (never the body)."""
    import requests

    from .engine.crashpoints import WEBHOOK_POINT, crashpoint  # the crash tests' kill point

    # The wall clock, not the daemon's (a simulation moves that days ahead): the receiver checks the
    # timestamp against its own clock and refuses one more than a few minutes off.
    timestamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": webhook_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(endpoint.secret, webhook_id, timestamp, body)}
    try:
        # Not followed: a redirected POST comes back as a GET without the body, whose 200 would
        # count the event delivered. A 3xx is a failure, retried like any other. Streamed, and closed
        # unread: the status is the answer, and a body sent slowly (timeout_seconds bounds each read,
        # not the whole) or without end would hold the pass.
        response = session.post(endpoint.url, data=body, headers=headers, timeout=timeout,
                                allow_redirects=False, stream=True)
        response.close()
    except requests.Timeout:
        return "timeout"
    except requests.RequestException as exc:
        return f"unreachable ({type(exc).__name__})"
    crashpoint(WEBHOOK_POINT)
    log.info("webhook %s %s -> %s", endpoint.name, webhook_id, response.status_code)
    return str(response.status_code)
