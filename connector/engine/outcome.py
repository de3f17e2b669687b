"""What a step reports, and the ways a step stops short: hold (a person decides), defer (a
transient problem: try again later, with back-off, a bounded number of times) and wait (something
that comes late by design: look again later, for a bounded time)."""
from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import Iterable
from datetime import datetime, timedelta

from ..holds import HoldReason
from ..kit.schema import MAX_DURATION_SECONDS
from ..ledger import CorruptRecordError, OrderFinishedError, OrderRecord, OrderState, PackageChange
from ..ledger.crypto import PiiDecryptError
from ..model import Address, utcnow
from .runtime import Runtime

log = logging.getLogger("connector.engine")


class Outcome(enum.Enum):
    PROGRESS = "progress"  # the state moved: the next step may run now
    REST = "rest"          # nothing more to do (verified, held, cancelled)
    DEFER = "defer"        # a transient problem: try again later
    QUEUED = "queued"      # its turn has not come (the account's confirm lane is full): nothing done,
                           # handed out again as soon as the dispatcher sees room for it


def their_words(address: Address | None, said: object) -> str:
    """A carrier's or Amazon's words (an exception, a refusal) as they may go into a hold message,
    a retry's error or a log line: the order's buyer address (``order.ship_to``) taken out, since
    a refusal may quote the postcode or the street it refused. Only their words: the daemon's own
    (dates, weights, prices) would be mangled by a postcode of the same digits."""
    return address.redact(str(said)) if address is not None else str(said)


def orders_words(rt: Runtime, order_ids: Iterable[str], said: object) -> str:
    """A carrier's words about several orders at once (a handover, a tracking call of a batch of
    parcels), as :func:`their_words`: each order's buyer address taken out. An order whose address
    cannot be read (purged, or sealed with a key no longer configured) has none to take out."""
    text = str(said)
    for order_id in dict.fromkeys(order_ids):
        try:
            record = rt.ledger.get_order(order_id)
        except (PiiDecryptError, CorruptRecordError):
            continue
        if record is not None:
            text = their_words(record.order.ship_to, text)
    return text


def hold(rt: Runtime, order_id: str, reason: HoldReason, message: str, *,
         change: PackageChange | None = None) -> Outcome:
    """HOLD the order with a machine-readable reason and a message for a person (no PII: a
    carrier's or Amazon's words in it go through :func:`their_words`). An order that ended
    meanwhile (a person voided it, say) has nothing left to hold: it is left as it is. One a
    person held while the step ran keeps that hold, this one added to its message (as a refused
    feed line does): released for the step's reason, it would go on despite theirs. But for a
    refused void (an operator's ``orders void`` of a held order): ``--cancelled-elsewhere`` needs
    that reason.

    ``change``: what the step records of its package with the hold, in the same transaction (a
    kill between the two would leave the package moved on and the order taken on again)."""
    try:
        replaced = rt.ledger.hold(order_id, reason.value, message,
                                  keep_held=reason is not HoldReason.VOID_REFUSED, change=change)
    except OrderFinishedError as exc:
        log.info("not held (%s: %s): %s", reason.value, message, exc)
        return Outcome.REST
    if replaced is False:
        log.warning("order %s stays held for its reason; added: %s: %s", order_id, reason.value, message)
        return Outcome.REST
    rt.counters.add("held")
    log.warning("order %s held: %s: %s", order_id, reason.value, message)
    return Outcome.REST


def defer(rt: Runtime, record: OrderRecord, error: str) -> Outcome:
    """Try the step again later (jittered exponential back-off); hold after ``max_attempts``."""
    attempts = record.attempts + 1
    if attempts >= rt.engine.max_attempts:
        claimed = ("; a label may have been bought under its claim: `orders show` names the label "
                   "reference to look up at the carrier before any release with --replan"
                   if record.state is OrderState.LABEL_CLAIMED else "")
        return hold(rt, record.order_id, HoldReason.RETRIES_EXHAUSTED,
                    f"gave up after {attempts} attempts in state {record.state.value}: {error}{claimed}")
    base = rt.engine.retry_delay_seconds
    doubled = base * 2.0 ** min(attempts - 1, _MAX_DOUBLINGS)  # 2 ** 5000 is no float
    delay = _jittered(_capped(min(doubled, rt.engine.retry_delay_max_seconds)))
    rt.ledger.defer(record.order_id, utcnow() + timedelta(seconds=delay), error)
    log.info("order %s deferred %.1fs (attempt %d): %s", record.order_id, delay, attempts, error)
    return Outcome.DEFER


def wait(rt: Runtime, record: OrderRecord, waiting_for: str, *, since: datetime,
         patience: timedelta) -> Outcome | None:
    """Look again later for something that comes late by design (a carrier's tracking number
    assigned after the label): not a failure, so no attempt is counted and ``max_attempts`` does
    not apply. The looks thin out as defer's retries do, by the time waited since ``since``
    instead of a count (retry_delay_seconds + the time waited, at most retry_delay_max_seconds).
    None once ``patience`` has passed since ``since``: the caller holds the order."""
    now = utcnow()
    waited = max(now - since, timedelta(0))
    if waited >= patience:
        return None
    delay = _jittered(_capped(min(rt.engine.retry_delay_seconds + waited.total_seconds(),
                                  rt.engine.retry_delay_max_seconds)))
    rt.ledger.snooze(record.order_id, now + timedelta(seconds=delay), note=waiting_for)
    log.info("order %s waits %.1fs more: %s", record.order_id, delay, waiting_for)
    return Outcome.DEFER


_MAX_DOUBLINGS = 64  # 30 s doubled 64 times is far past any cap


def _capped(delay: float) -> float:
    """A delay a date can hold: at most :data:`MAX_DURATION_SECONDS` (what the configuration allows),
    an infinite or NaN one (settings built around the configuration's check) made that too, so
    ``now + delay`` never overflows in the per-order error handler."""
    if math.isnan(delay) or delay > MAX_DURATION_SECONDS:
        return float(MAX_DURATION_SECONDS)
    return max(delay, 0.0)


def _jittered(delay: float) -> float:
    return delay * (0.5 + random.random() / 2)  # spread the retries of many orders
