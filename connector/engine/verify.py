"""Stage 5, verify: CONFIRMED -> VERIFIED. A 204 is not proof: the order read back must show the
package with our tracking number.

Verification is in bulk: once per pass and account, :func:`verify_in_bulk` reads the pages of
shipped orders (searchOrders, up to 100 orders a page) updated since the earliest confirmation
still pending, and verifies every CONFIRMED package it finds there; the order poll does the same
with the shipped orders it reads (``ingest.py``). ``getOrder`` (0.5/s) reads an order one by one
only for a straggler still unverified ``engine.verify_grace_seconds`` after its confirmation. A
confirmation Amazon accepted but never shows is sent again, a bounded number of times, and then
the order is held.

searchOrders is the scarcest quota (one call per ~3 minutes, burst 20) and the order poll needs
it, so a bulk read never waits for it and spends as few pages as it can: it runs only while the
bucket holds more than :data:`SWEEP_RESERVE` tokens, only for confirmations old enough for
searchOrders to show (``amazon.search_lag_seconds``, two minutes by default: Amazon requires a
``lastUpdatedBefore`` sent to be at least that old, and we assume an answer without one stops
there too; a read too early would spend a token on nothing, never skip an order), and
only when that read is worth a page: a full page of them is waiting, or every pending one is
visible (the flow of confirmations has stopped: one read gets them all), or the oldest has waited
:data:`SWEEP_PATIENCE`. Each read starts where the last complete one ended by Amazon's own clock
(its ``lastUpdatedBefore``), so a backlog's orders are read about once, not once per read --
or, for a confirmation recorded long after its claim (a feed's), from the claim (its ship date):
Amazon applied a feed's line while it processed the feed, maybe minutes before the report that
made it CONFIRMED was read.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..amazon.errors import SpApiError
from ..amazon.mapping import package_from_api, parse_api_time
from ..config import Account
from ..holds import HoldReason
from ..ledger import OrderRecord, OrderState, Package, PackageState, StaleStateError
from ..model import utcnow
from ..ratelimit import QuotaWaitInterrupted
from .crashpoints import crashpoint
from .feeds import confirmed_by_feed
from .outcome import Outcome, defer, hold, their_words
from .runtime import Runtime

log = logging.getLogger("connector.engine")

SWEEP_STATUSES = ("SHIPPED", "PARTIALLY_SHIPPED")
SWEEP_INCLUDED_DATA = ("FULFILLMENT", "PACKAGES")  # no address: verification needs none
SWEEP_MARGIN = timedelta(minutes=2)  # our clock at the confirmation vs Amazon's lastUpdatedTime
SWEEP_CHECK = timedelta(seconds=10)  # after a read, the next look at the account
SWEEP_PATIENCE = timedelta(seconds=90)  # the longest a visible confirmation waits for a fuller page
SWEEP_PAGE = 100  # orders per searchOrders page
SWEEP_RESERVE = 2  # searchOrders tokens a bulk read leaves for the order poll


@dataclass
class SweepMark:
    """How far the bulk reads of one account got: confirmations up to ``covered_until`` were in a
    complete read (one not verified by it is a straggler for getOrder); none is due before
    ``next_at`` (the last read was recent, or nothing is old enough for searchOrders to show)."""

    covered_until: datetime | None
    next_at: datetime


def confirms_itself(rt: Runtime, package: Package) -> bool:
    """Labels of this carrier confirm the shipment on Amazon by themselves (a declared capability)."""
    spec = rt.carrier_specs.get(package.carrier)
    return bool(spec and spec.confirms_shipment)


def shown_entry(rt: Runtime, raw_order: dict | None, package: Package) -> dict | None:
    """The entry of this Amazon order (as getOrder or searchOrders returns it) that shows our
    package, or None.

    Our own confirmations carry our packageReferenceId; a self-confirming label's package, and a
    feed's, get an id from Amazon, so there only the tracking number identifies it.
    """
    if not raw_order:
        return None
    itself = confirms_itself(rt, package)
    by_feed = not itself and confirmed_by_feed(rt, package)
    if itself or by_feed:
        # a feed applies line by line: every item must have landed
        return next((p for p in raw_order.get("packages") or [] if isinstance(p, dict)
                     and p.get("trackingNumber") == package.tracking_number
                     and (not by_feed or holds_items(p, package))), None)
    on_amazon = package_from_api(raw_order, package.package_ref)
    return on_amazon if on_amazon and on_amazon.get("trackingNumber") == package.tracking_number else None


def holds_items(on_amazon: dict, package: Package) -> bool:
    """Does Amazon's package list each of our package's items, at least in our quantity? When it
    lists none (the field is optional), the tracking number alone decides."""
    listed = on_amazon.get("packageItems")
    if not isinstance(listed, list) or not listed:
        return True
    shown: Counter[str] = Counter()
    for item in listed:
        if isinstance(item, dict):
            try:
                shown[str(item.get("orderItemId"))] += int(item.get("quantity") or 0)
            except (TypeError, ValueError):
                continue
    return all(shown[str(item.get("order_item_id"))] >= int(item.get("quantity") or 0)
               for item in package.items)


def taken_by_another(rt: Runtime, raw_order: dict | None, package: Package) -> str | None:
    """The tracking number of a package this Amazon order shows under our package's reference that
    is not ours (confirmed elsewhere), else None. confirmShipment under a reference Amazon shows
    edits that package: ours sent again would replace it. Labels that confirm themselves are
    numbered by Amazon, never sent under our reference: not judged."""
    if not raw_order or confirms_itself(rt, package):
        return None
    on_amazon = package_from_api(raw_order, package.package_ref)
    if on_amazon is None or on_amazon.get("trackingNumber") == package.tracking_number:
        return None
    return str(on_amazon.get("trackingNumber") or "no tracking number")


def hold_taken(rt: Runtime, order_id: str, package: Package, theirs: str | None = None) -> Outcome:
    """Hold an order whose package reference Amazon shows for a package not ours, instead of
    sending a confirmation that would replace it (``theirs``: its tracking number, when read)."""
    shown = f" ({theirs})" if theirs else ""
    return hold(rt, order_id, HoldReason.ALREADY_SHIPPED,
                f"order {order_id}: Amazon shows a package {package.package_ref}{shown} this daemon did not "
                f"send (confirmed elsewhere); confirming label {package.tracking_number} under that "
                f"reference would replace it. Check the order in Seller Central, then void the label "
                f"(orders void {order_id})")


def verify_if_shown(rt: Runtime, raw_order: dict | None, package: Package, expect: PackageState) -> bool:
    """Mark the package verified if this Amazon order shows it; True if it did. Amazon's name for
    the carrier is compared with the code sent (:func:`judge_filed_carrier`): another is recorded
    on the package (``filed_as``) as it is verified, and its tracking is not valid (engine/vtr.py)."""
    on_amazon = shown_entry(rt, raw_order, package)
    if on_amazon is None:
        return False
    assert raw_order is not None
    filed_as = judge_filed_carrier(rt, raw_order, package, on_amazon)
    mark_verified(rt, package, expect, filed_as=filed_as)
    return True


def judge_filed_carrier(rt: Runtime, raw_order: dict, package: Package, on_amazon: dict) -> str | None:
    """A confirmation Amazon shows under another carrier than the code sent (``Other``, say: a
    code its list no longer knows) is verified, but its tracking will not count towards the
    valid-tracking rate: returns Amazon's carrier name then (None when filed as sent, or not
    judged), for the package to record (``Package.filed_as``: the rate counts it as not valid).
    A ``carrier_filed_differently`` alert per site and code tells a person to check
    ``site_rules.<SITE>.carrier_codes`` against Seller Central's list; the next package Amazon
    files under the code clears it, on any worker. The code compared is the one the site's rules
    give now (a package confirmed under an older code is judged by the new one). Labels that
    confirm themselves are Amazon's to file. ``on_amazon``: the order's entry that shows the
    package (:func:`shown_entry`)."""
    spec = rt.carrier_specs.get(package.carrier)
    if spec is None or confirms_itself(rt, package):
        return None
    filed = str(on_amazon.get("carrier") or "").strip()
    channel = raw_order.get("salesChannel")
    try:
        site = rt.sites.for_marketplace(channel.get("marketplaceId")).code  # type: ignore[union-attr]
    except (AttributeError, KeyError, ValueError):
        return None
    sent = rt.amazon_carrier_code(package.carrier, site)
    if not filed or not sent:  # Amazon named no carrier: nothing to judge
        return None
    subject = f"{site}:{sent}"
    if _spelling(filed) == _spelling(sent):
        rt.filing_alerts.clear(rt, subject)
        return None
    log.warning("order %s: Amazon shows package %s under carrier %r, not %r as confirmed", package.order_id,
                package.package_ref, filed, sent)
    rt.filing_alerts.raise_once(
        rt, subject, f"Amazon files packages confirmed on {site} as {sent!r} under {filed!r} (order "
        f"{package.order_id}): their tracking is not counted as valid tracking (Amazon does not count "
        f"'Other' as valid); check "
        f"site_rules.{site}.carrier_codes against the carrier list in Seller Central",
        order_id=package.order_id, carrier_code=sent, filed_as=filed)
    return filed


def _spelling(name: str) -> str:
    return "".join(c for c in name.casefold() if c.isalnum())


def mark_verified(rt: Runtime, package: Package, expect: PackageState, *,
                  filed_as: str | None = None) -> None:
    """Move the package to VERIFIED, recording in the same write the carrier Amazon filed it under
    when not the code sent (``filed_as``; None: as sent)."""
    package = rt.ledger.advance(package, expect, PackageState.VERIFIED, order_state=OrderState.VERIFIED,
                                filed_as=filed_as)
    crashpoint("after_verify")
    log.info("order %s: Amazon shows package %s (%s), verified", package.order_id, package.package_ref,
             package.tracking_number)
    rt.counters.add("verified")


def read_back(rt: Runtime, record: OrderRecord, package: Package, expect: PackageState) -> Outcome | None:
    """Read the order back with getOrder: REST once the package is verified (Amazon shows it), a
    deferral when getOrder failed, a hold when it shows another package under our reference
    (:func:`taken_by_another`), None when Amazon does not show it."""
    order = record.order
    try:
        raw = rt.amazon[order.account].get_order(order.order_id)
        if verify_if_shown(rt, raw, package, expect):
            return Outcome.REST
    except SpApiError as exc:
        return defer(rt, record, f"getOrder: {their_words(order.ship_to, exc)}")
    theirs = taken_by_another(rt, raw, package)
    return hold_taken(rt, order.order_id, package, theirs) if theirs else None


def verify(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    grace = rt.engine.verify_grace
    if grace and package.updated_at and utcnow() < package.updated_at + grace:
        # the order poll verifies it in bulk meanwhile; getOrder only once the grace is over
        rt.ledger.snooze(record.order_id, package.updated_at + grace)
        return Outcome.DEFER
    read = read_back(rt, record, package, PackageState.CONFIRMED)
    if read is not None:
        return read
    # Amazon answered 204 but does not show the package. Read once more later; after that the
    # confirmation was dropped (it happens) and is sent again, a bounded number of times.
    if record.attempts == 0:
        return defer(rt, record, "the confirmed package is not visible on the order yet")
    if confirms_itself(rt, package):  # nothing of ours to re-send: keep reading, then hold
        if record.attempts + 1 >= rt.engine.verify_attempts:
            return hold(rt, order.order_id, HoldReason.CONFIRMATION_NOT_VISIBLE,
                        f"order {order.order_id}: the {package.carrier} label {package.tracking_number} "
                        "does not show on the order")
        return defer(rt, record, f"the {package.carrier} package is not visible on the order yet")
    if package.confirm_attempts >= rt.engine.verify_attempts:
        return hold(rt, order.order_id, HoldReason.CONFIRMATION_NOT_VISIBLE,
                    f"order {order.order_id}: Amazon accepted {package.confirm_attempts} confirmations "
                    f"of package {package.package_ref} but never shows it")
    rt.ledger.advance(package, PackageState.CONFIRMED, PackageState.LABELED, order_state=OrderState.LABELED,
                      error="confirmation accepted but not visible; sending again")
    return Outcome.PROGRESS


# -- in bulk --------------------------------------------------------------------------------------


def verify_in_bulk(rt: Runtime, should_stop: Callable[[], bool] = lambda: False) -> int:
    """Verify the CONFIRMED packages of every account from pages of shipped orders (see the
    module docstring); returns how many were verified. Never waits for quota; a failure leaves
    the packages to the next pass (and, after the grace period, to getOrder)."""
    now = utcnow()
    due = {a.name for a in rt.config.accounts
           if a.name in rt.amazon and rt.acts_for(a.name) and _may_sweep(rt, a.name, now)}
    if not due:
        return 0  # the common case, every pass: no ledger read at all
    pending: dict[str, list[tuple[str, Package]]] = {}
    for key in rt.ledger.schedule([OrderState.CONFIRMED], accounts=due):  # no buyer data read
        package = rt.ledger.open_package(key.order_id)
        if package is not None and package.state == PackageState.CONFIRMED and package.confirmed_at:
            pending.setdefault(key.account, []).append((key.order_id, package))
    verified = 0
    for account in rt.config.accounts:
        if should_stop():
            break
        if pending.get(account.name):
            try:
                verified += _sweep(rt, account, pending[account.name], should_stop)
            except QuotaWaitInterrupted:
                break
            except SpApiError as exc:
                log.warning("account %s: verifying in bulk failed (the next pass tries again): %s",
                            account.name, exc)
    return verified


def _may_sweep(rt: Runtime, account: str, now: datetime) -> bool:
    """Not read too recently, and the searchOrders bucket has tokens to spare for a read."""
    mark = rt.verify_sweeps.get(account)
    if mark is not None and now < mark.next_at:
        return False
    client = rt.amazon[account]
    return client.limiter.bucket(client.account, "searchOrders").available >= SWEEP_RESERVE + 1


def _sweep(rt: Runtime, account: Account, pending: list[tuple[str, Package]],
           should_stop: Callable[[], bool]) -> int:
    now = utcnow()
    mark = rt.verify_sweeps.get(account.name)
    covered = mark.covered_until if mark else None
    floor = covered - SWEEP_MARGIN if covered else None
    uncovered = [p.confirmed_at for _, p in pending if floor is None or p.confirmed_at > floor]
    lag = search_lag(rt)
    if not uncovered:  # every pending one was in a complete read (stragglers): new ones show later
        rt.verify_sweeps[account.name] = SweepMark(covered, now + max(lag, SWEEP_CHECK))
        return 0
    due_at = next_read_at(uncovered, lag)
    if now < due_at:  # not worth a token yet: come back exactly when it is
        rt.verify_sweeps[account.name] = SweepMark(covered, due_at)
        return 0
    client = rt.amazon[account.name]
    bucket = client.limiter.bucket(client.account, "searchOrders")
    by_id = dict(pending)  # order id -> its confirmed package
    # From the end of the last complete read, by Amazon's clock; the first read (no mark since the
    # start) from the oldest confirmation, less a margin for the two clocks. A confirmation recorded
    # long after its claim (a feed's: Amazon applied the line while it processed the feed, maybe
    # minutes before its report was read) may have landed any time since the claim: from there.
    after = covered or min(uncovered) - SWEEP_MARGIN
    late = [p.shipped_at for _, p in pending if (floor is None or p.confirmed_at > floor)
            and p.shipped_at and p.confirmed_at - p.shipped_at > SWEEP_MARGIN]
    if late:
        after = min(after, min(late) - SWEEP_MARGIN)
    pages = client.search_orders_pages(
        marketplace_ids=[rt.sites[s].marketplace_id for s in account.marketplaces],
        last_updated_after=after, statuses=SWEEP_STATUSES, included_data=SWEEP_INCLUDED_DATA)
    rt.verify_sweeps[account.name] = SweepMark(covered, now + SWEEP_CHECK)
    verified = read = 0
    for page in pages:
        read += 1
        for raw in page["orders"]:
            package = by_id.pop(raw.get("orderId"), None) if isinstance(raw, dict) else None
            if package is not None:
                try:
                    verified += verify_if_shown(rt, raw, package, PackageState.CONFIRMED)
                except StaleStateError:
                    pass  # a worker verified it meanwhile
        pagination = page.get("pagination")
        if not (isinstance(pagination, dict) and pagination.get("nextToken")):
            before = _time(page.get("lastUpdatedBefore"))
            rt.verify_sweeps[account.name] = SweepMark(before or covered, now + SWEEP_CHECK)
            break
        if should_stop() or bucket.available < SWEEP_RESERVE + 1:
            break  # the rest next time; the poll keeps its tokens
    log.info("account %s: verified %d confirmation(s) from %d page(s) of shipped orders",
             account.name, verified, read)
    return verified


def search_lag(rt: Runtime) -> timedelta:
    """How old a change must be before searchOrders shows it (``amazon.search_lag_seconds``)."""
    return timedelta(seconds=rt.config.amazon.search_lag_seconds)


def next_read_at(uncovered: list[datetime], lag: timedelta) -> datetime:
    """When a searchOrders read of these unverified confirmations is first worth its token: once
    a full page of them is old enough for searchOrders to show, or all of them are (one read gets
    every one), or the oldest has waited :data:`SWEEP_PATIENCE` more. Confirmations sent later
    can only make it later, except by filling a page, which they cannot do before they show."""
    ordered = sorted(uncovered)
    at = min(ordered[-1], ordered[0] + SWEEP_PATIENCE)
    if len(ordered) >= SWEEP_PAGE:
        at = min(at, ordered[SWEEP_PAGE - 1])
    return at + lag


def _time(value: object) -> datetime | None:
    try:
        return parse_api_time(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
