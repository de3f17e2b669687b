"""Calling a carrier from the engine: one timed log line per operation, bounded retries for
operations that buy nothing (lookups, label downloads), and the alert for a carrier that refuses
the configured credentials. Buying is retried only in buy.py, after a lookup by reference."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from .. import metrics
from ..kit.carrier import TransientCarrierError
from ..ledger import Package
from ..model import Shipment
from .runtime import Runtime

log = logging.getLogger("connector.engine")
T = TypeVar("T")


def timed(carrier_code: str, operation: str, fn: Callable[[], T]) -> T:
    """Run one carrier call and log its outcome and duration (never its payload)."""
    started = time.monotonic()
    outcome = "ok"
    try:
        return fn()
    except Exception as exc:
        outcome = f"{type(exc).__name__}"
        raise
    finally:
        elapsed = time.monotonic() - started
        metrics.carrier_call(carrier_code, operation, outcome, elapsed)
        # Each order's steps have their own INFO lines; a call that went well is detail (DEBUG).
        log.log(logging.DEBUG if outcome == "ok" else logging.INFO, "carrier call %s.%s %s in %.0f ms",
                carrier_code, operation, outcome, elapsed * 1000)


def backoff(attempt: int) -> None:
    """A short jittered pause between two tries of one carrier call."""
    time.sleep(min(0.2 * 2 ** attempt, 2.0) * random.random())


def retry_safe(rt: Runtime, carrier_code: str, operation: str, fn: Callable[[], T]) -> T:
    """Retry an operation that buys nothing on transient errors (``engine.carrier_attempts``)."""
    attempts = rt.engine.carrier_attempts
    for attempt in range(1, attempts + 1):
        try:
            return timed(carrier_code, operation, fn)
        except TransientCarrierError:
            if attempt == attempts:
                raise
            backoff(attempt)
    raise AssertionError("unreachable")


def shipment_of(package: Package) -> Shipment:
    """The carrier's view of a ledger package."""
    return Shipment(carrier=package.carrier, reference=package.idempotency_key,
                    carrier_shipment_id=package.carrier_shipment_id,
                    tracking_number=package.tracking_number or None, service=package.service)


def credentials_refused(rt: Runtime, code: str, refusal: str) -> None:
    """A carrier refused the configured credentials (a quote, or a label it was asked to buy): every
    order would be refused alike, so a person must hear of it (an alert, once, and an ERROR line),
    and the orders wait for it to be fixed instead of being held one by one. ``refusal``: the
    carrier's words without the order's address (``their_words``): the refused request may be
    quoted, and the alert is kept in the ledger and sent to the hooks and webhooks."""
    message = (f"{refusal}; orders that need {code} wait for it (no attempt counted): fix carriers.{code} "
               "and restart")
    if rt.credential_alerts.raise_once(rt, code, message):
        log.error("carrier %s: %s", code, message)  # once a run, not once per order


def credentials_accepted(rt: Runtime, code: str) -> None:
    """The carrier itself answered a call made with the credentials: an alert that it refused them
    (this run's, or one left open by an earlier run) is over."""
    rt.credential_alerts.clear(rt, code)


def tracking_subject(code: str) -> str:
    """The subject of the alert for a carrier's refused tracking credentials: apart from its label
    credentials' (``code``), which may differ (Yanwen's tracking Authorization, China Post's
    tracking_token), so a label bought does not close it while no parcel can be tracked."""
    return f"{code}:tracking"


def tracking_credentials_refused(rt: Runtime, code: str, refusal: str) -> None:
    """A carrier's tracking refused the configured credentials: no parcel of it is followed (no
    scan seen, no loss or delivery noticed) until a person fixes them. An alert, once, and an
    ERROR line, as for a refused quote; ``refusal`` without any buyer's address."""
    message = (f"{refusal}; no {code} parcel is tracked meanwhile (each is asked again after "
               f"tracking.retry_minutes): fix carriers.{code} and restart")
    if rt.credential_alerts.raise_once(rt, tracking_subject(code), message):
        log.error("carrier %s tracking: %s", code, message)


def tracking_credentials_accepted(rt: Runtime, code: str) -> None:
    """A tracking call of the carrier was answered: an alert that it refused the credentials is over."""
    rt.credential_alerts.clear(rt, tracking_subject(code))
