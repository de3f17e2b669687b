"""What a step reports, and the two ways a step stops short: hold (a person decides) and defer
(a transient problem: try again later, with back-off, a bounded number of times)."""
from __future__ import annotations

import enum
import logging
import random
from datetime import timedelta

from ..holds import HoldReason
from ..ledger import OrderRecord
from ..model import utcnow
from .runtime import Runtime

log = logging.getLogger("connector.engine")


class Outcome(enum.Enum):
    PROGRESS = "progress"  # the state moved: the next step may run now
    REST = "rest"          # nothing more to do (verified, held, cancelled)
    DEFER = "defer"        # a transient problem: try again later


def hold(rt: Runtime, order_id: str, reason: HoldReason, message: str) -> Outcome:
    """HOLD the order with a machine-readable reason and a message for a person (no PII)."""
    rt.ledger.hold(order_id, reason.value, message)
    rt.counters.add("held")
    log.warning("order %s held: %s: %s", order_id, reason.value, message)
    return Outcome.REST


def defer(rt: Runtime, record: OrderRecord, error: str) -> Outcome:
    """Try the step again later (jittered exponential back-off); hold after ``max_attempts``."""
    attempts = record.attempts + 1
    if attempts >= rt.engine.max_attempts:
        return hold(rt, record.order_id, HoldReason.RETRIES_EXHAUSTED,
                    f"gave up after {attempts} attempts in state {record.state.value}: {error}")
    base = rt.engine.retry_delay_seconds
    delay = min(base * (2 ** (attempts - 1)), rt.engine.retry_delay_max_seconds)
    delay = delay * (0.5 + random.random() / 2)  # jitter: spread retries of many orders
    rt.ledger.defer(record.order_id, utcnow() + timedelta(seconds=delay), error)
    log.info("order %s deferred %.1fs (attempt %d): %s", record.order_id, delay, attempts, error)
    return Outcome.DEFER
