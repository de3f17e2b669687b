"""Pull MFN orders from Amazon into the ledger (searchOrders with a lastUpdatedAfter watermark)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..amazon.mapping import order_from_api, parse_api_time
from ..config import Account
from ..holds import HoldReason
from ..ledger import ACTIVE_ORDER_STATES, OrderState, PackageState, StaleStateError
from ..ledger.base import unstorable_text
from ..ledger.crypto import PiiDecryptError
from ..model import FulfillmentStatus, Order, utcnow
from ..ratelimit import QuotaWaitInterrupted
from .outcome import hold
from .runtime import Runtime
from .verify import verify_if_shown

log = logging.getLogger("connector.engine")

# SHIPPED brings back the orders we confirmed, with their packages: the poll verifies them in
# pages of 100 instead of one getOrder each. Unknown SHIPPED orders (shipped by hand) are ignored.
STATUSES = ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED")
# Held orders a cancellation on Amazon settles: nothing bought yet, or a label to void (one
# confirmed too: held because Amazon never showed it, say, and Amazon shows no shipment it cancels).
_CANCEL_RELEASES = (None, OrderState.NEW, OrderState.PLANNED, OrderState.LABEL_CLAIMED,
                    OrderState.LABELED, OrderState.CONFIRMING, OrderState.CONFIRMED)
# ... but not a label claim that needs a person (one who checks the carrier) or its carrier (no
# longer configured): released, it would only be held again, poll after poll.
_CLAIM_HOLDS = (HoldReason.LABEL_UNCERTAIN.value, HoldReason.CARRIER_UNAVAILABLE.value)

# RECIPIENT: the address; CANCELLATION: buyer cancel requests (check before buying a label);
# PACKAGES: packageReferenceIds already used on partially shipped orders.
INCLUDED_DATA = ("RECIPIENT", "FULFILLMENT", "PROCEEDS", "PACKAGES", "CANCELLATION")


def ingest_account(rt: Runtime, account: Account, progress: Callable[[int], None] | None = None) -> int:
    """One searchOrders sweep for one seller account; returns how many orders were new. ``progress``
    hears 1 per order read (a progress bar for the first poll of a large backlog).

    The watermark moves only after the whole sweep is in the ledger, and each sweep starts
    ``poll_overlap_minutes`` before it: a late-indexed order is seen twice rather than never.
    """
    name = account.name
    settings = rt.config.amazon
    now = utcnow()
    watermark = rt.ledger.get_watermark(name)
    after = (watermark - timedelta(minutes=settings.poll_overlap_minutes) if watermark
             else now - timedelta(days=settings.initial_lookback_days))
    client = rt.amazon[name]
    search = client.search_orders(marketplace_ids=[rt.sites[s].marketplace_id for s in account.marketplaces],
                                  last_updated_after=after, statuses=STATUSES,
                                  included_data=INCLUDED_DATA)
    new = 0
    latest_seen = None
    try:
        for raw in search:
            if progress is not None:
                progress(1)
            order = _to_order(rt, raw, name)
            if order is None:
                continue
            latest_seen = max(latest_seen or order.last_updated, order.last_updated)
            if problem := _unstorable(order.order_id, "orderId"):  # the key of every read and write
                _malformed(rt, raw, name, f"could not be stored: {problem}")  # (a shipped order's too)
                continue
            if order.status == FulfillmentStatus.SHIPPED:
                if not _verify_from_poll(rt, order.order_id, raw):
                    continue  # shipped outside the daemon and never ours
            try:
                is_new = rt.ledger.upsert_order(order)
            except (UnicodeError, ValueError, ArithmeticError) as exc:  # text the ledger cannot store, say
                _malformed(rt, raw, name, f"could not be stored: {_unstorable(raw) or exc}")
                continue
            if is_new:
                new += 1
                rt.counters.add("ingested_new")
            else:
                _reconsider_held(rt, order)
    except QuotaWaitInterrupted:
        # stopping while a page waited for quota: what was read is in the ledger, the watermark
        # stays, so the next start reads the rest
        log.info("account %s: order poll stopped while waiting for quota (a stop, or the account's lease "
                 "moved to another worker); %d new order(s)", name, new)
        return new
    next_mark = (search.last_updated_before or latest_seen
                 or (now - timedelta(seconds=settings.search_lag_seconds)))
    rt.ledger.set_watermark(name, next_mark)
    log.info("account %s: %d new order(s); watermark now %s", name, new, next_mark.isoformat())
    return new


def _verify_from_poll(rt: Runtime, order_id: str, raw: dict[str, Any]) -> bool:
    """Verify a CONFIRMED order from the poll's data; returns whether the ledger knows the order."""
    record = rt.ledger.get_order(order_id, with_pii=False)
    if record is None:
        return False
    package = rt.ledger.open_package(order_id)
    if (record.state == OrderState.CONFIRMED and package is not None
            and package.state == PackageState.CONFIRMED):
        try:
            verify_if_shown(rt, raw, package, PackageState.CONFIRMED)
        except StaleStateError:
            pass  # a worker verified it at the same moment
    return True


def _to_order(rt: Runtime, raw: Any, account: str) -> Order | None:
    """Map one API order; one Amazon has garbled is kept and held, never dropped."""
    try:
        return order_from_api(raw, account=account, sites=rt.sites)
    except (ValueError, ArithmeticError) as exc:  # (a field of the wrong shape too: the mapping names it;
        # an overflow the mapping did not foresee holds this order, not the account's whole poll)
        _malformed(rt, raw, account, f"could not be read: {exc}")
        return None


def _malformed(rt: Runtime, raw: Any, account: str, problem: str) -> None:
    """Keep an order whose data Amazon garbled, and hold it until a later read is whole.

    A new order is stored as a placeholder (no items, no address) and held. An order the ledger
    has keeps what is stored: the garbled copy must not replace it (a cancellation it said before
    would be lost), and an active one is held until Amazon's data reads whole again.
    """
    order_id = raw.get("orderId") if isinstance(raw, dict) else None
    if not isinstance(order_id, str) or not order_id or _unstorable(order_id):
        log.error("account %s: an order without a readable orderId was skipped: %s", account, problem)
        return
    message = f"order {order_id}: Amazon's order data {problem}"
    record = rt.ledger.get_order(order_id, with_pii=False)
    if record is None:
        marketplace = _marketplace(raw)
        placeholder = Order(order_id=order_id, account=account, marketplace_id=marketplace,
                            site=_site(rt, marketplace), status=FulfillmentStatus.OTHER,
                            last_updated=_time(raw.get("lastUpdatedTime")), items=())
        if rt.ledger.upsert_order(placeholder):
            hold(rt, order_id, HoldReason.MALFORMED_ORDER, message)
    elif record.state in ACTIVE_ORDER_STATES:
        hold(rt, order_id, HoldReason.MALFORMED_ORDER, message + "; the data read before is kept")
    else:  # held for another reason, or finished: the stored data stays, a person may look
        log.warning("%s; the stored data is kept (the order is %s)", message, record.state.value)


def _marketplace(raw: dict[str, Any]) -> str:
    """The marketplace id of a garbled order, when that part of it still reads ("" otherwise)."""
    channel = raw.get("salesChannel")
    marketplace = channel.get("marketplaceId") if isinstance(channel, dict) else None
    return marketplace if isinstance(marketplace, str) and not _unstorable(marketplace) else ""


def _site(rt: Runtime, marketplace: str) -> str:
    """The site of a marketplace id, so a held placeholder lists under its site ("" if unknown)."""
    try:
        return rt.sites.for_marketplace(marketplace).code if marketplace else ""
    except ValueError:
        return ""


def _unstorable(value: Any, path: str = "") -> str:
    """The first field of ``value`` whose text is not valid Unicode (a lone surrogate, which JSON
    allows but UTF-8 cannot hold) or holds a NUL (which JSON allows but PostgreSQL's text refuses),
    as a message naming it; "" when there is none."""
    if isinstance(value, str):
        problem = unstorable_text(value)
        return f"{path or 'a value'}: {problem}" if problem else ""
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _unstorable(item, f"{path}[{key}]" if isinstance(key, int) else
                            f"{path}.{key}" if path else str(key))
        if found:
            return found
    return ""


def _time(value: Any):
    """A garbled order's lastUpdatedTime, when it reads as one an order can have; otherwise the
    epoch (a time out of range would overflow when the placeholder is stored, failing the whole
    poll), so the first whole copy read is newer and replaces the placeholder."""
    try:
        return parse_api_time(value)
    except (AttributeError, ValueError):
        return _EPOCH


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _reconsider_held(rt: Runtime, order: Order) -> None:
    """An order held for a reason Amazon's data may fix (address, garbled data, cancellation) is
    re-checked. Its address is read only for an incomplete one: one no configured key reads must
    not fail the account's poll (the drive holds it, saying so)."""
    record = rt.ledger.get_order(order.order_id, with_pii=False)
    if record is None or record.state != OrderState.HELD:
        return
    if record.hold_reason == HoldReason.ADDRESS_INCOMPLETE.value and _address_complete(rt, order.order_id):
        rt.ledger.release(order.order_id)
        log.info("order %s: Amazon now sends a complete address; released", order.order_id)
    elif record.hold_reason == HoldReason.MALFORMED_ORDER.value:  # this read was whole (and stored)
        rt.ledger.release(order.order_id)
        log.info("order %s: Amazon's order data reads whole again; released", order.order_id)
    elif order.status == FulfillmentStatus.CANCELLED and record.held_from in _CANCEL_RELEASES \
            and not (record.held_from is OrderState.LABEL_CLAIMED and record.hold_reason in _CLAIM_HOLDS):
        # NEW: planning moves it to CANCELLED; with a label, the next step voids it
        rt.ledger.release(order.order_id)
        log.info("order %s: cancelled on Amazon while held; released to settle it", order.order_id)


def _address_complete(rt: Runtime, order_id: str) -> bool:
    """Whether the order's stored address has every field a label needs; False when no
    configured key reads it."""
    try:
        record = rt.ledger.get_order(order_id)
    except PiiDecryptError:
        return False
    ship_to = record.order.ship_to if record is not None else None
    return ship_to is not None and not ship_to.missing_fields()
