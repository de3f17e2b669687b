"""Stage 4, confirm: LABELED -> CONFIRMING -> CONFIRMED (confirmShipment, Orders API v0); or, for
an ERP's label it did not ask to be confirmed here, LABELED -> ISSUED (tracking follows).

confirmShipment is sent only after the CONFIRMING claim is committed, with a stable numeric
``packageReferenceId`` and a stable ship date, so a re-send edits the same package instead of
adding one. Coming back to a CONFIRMING package the order is read first and the confirmation
re-sent only if Amazon does not show it. "Already shipped" means verify, not fail. A carrier whose
labels confirm themselves (a declared capability) is never confirmed again.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from ..amazon.errors import AlreadyShippedError, InvalidInputError, SpApiError
from ..amazon.mapping import confirm_shipment_body
from ..holds import HoldReason
from ..kit.carrier import CarrierSpec
from ..ledger import OrderRecord, OrderState, Package, PackageChange, PackageState, StaleStateError
from ..model import Order, utcnow
from ..ratelimit import QuotaWaitInterrupted
from ..transparency import PackageCodes, codes_for_package, enrolled_items
from .crashpoints import crashpoint
from .feeds import accepted_by_feed, in_open_feed, leaves_to_feed, rest_in_feed
from .outcome import Outcome, defer, hold, their_words
from .runtime import Runtime
from .verify import confirms_itself, hold_taken, read_back, taken_by_another, verify_if_shown

_CARRY_NO_UNITS = (PackageState.FAILED, PackageState.VOIDING, PackageState.VOIDED)
CONFIRM_LANE = 2  # an account's confirmations in flight at once: one sending, one waiting for its token

log = logging.getLogger("connector.engine")


class Lane:
    """At most ``size`` callers inside at once, and a caller that finds it full never waits: under
    the per-order scheduler, a worker thread must not sit waiting for an account's confirmShipment
    token while other orders need labels bought -- two in the lane keep the bucket busy."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.busy >= self.size:
                return False
            self.busy += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.busy -= 1

    @property
    def full(self) -> bool:
        return self.busy >= self.size


def confirm_lane(rt: Runtime, account: str) -> Lane | None:
    """The account's lane (created on first use), or None when confirmations are not rationed."""
    lanes = rt.confirm_lanes
    if lanes is None:
        return None
    lane = lanes.get(account)
    if lane is None:
        lane = lanes.setdefault(account, Lane(CONFIRM_LANE))  # setdefault: one winner between threads
    return lane


def confirm(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    if in_open_feed(rt, package):  # a feed holds the claim: its processing report decides
        rest_in_feed(rt, order.order_id)
        return Outcome.REST
    if package.state == PackageState.CONFIRMING:
        _still_as_read(rt, package)
    if not order.confirms_on_amazon:  # the ERP's label for another channel, or one it confirms itself
        rt.ledger.advance(package, PackageState.LABELED, PackageState.ISSUED, order_state=OrderState.ISSUED,
                          shipped_at=package.shipped_at or utcnow())
        return Outcome.REST
    if confirms_itself(rt, package):  # the purchase confirmed it on Amazon; never send again
        # confirmed when its label was bought: the package's last change (the label recorded), not
        # when it was planned (maybe before ship-by, the purchase after it)
        return _confirmed(rt, package, package.state, shipped_at=package.shipped_at or utcnow(),
                          confirmed_at=package.confirmed_at or package.updated_at or utcnow())
    spec = rt.carrier_specs.get(package.carrier)
    carrier_code = rt.listed_carrier_code(package.carrier, order.site)
    if spec is None or carrier_code is None:
        if spec is not None and package.state == PackageState.CONFIRMING:
            # sent before the code left the list, its answer lost: it may have landed. Read back
            # first, as any CONFIRMING package is; only one Amazon does not show is held (never
            # sent again under a code its list no longer has)
            read = read_back(rt, record, package, PackageState.CONFIRMING)
            if read is not None:
                return read
        unlisted = rt.amazon_carrier_code(package.carrier, order.site) if spec is not None else None
        why = (f"carrier code {unlisted!r} is no longer in Amazon's list for {order.site} "
               f"(site_rules.{order.site}.carrier_codes)" if unlisted
               else f"no Amazon carrier code for {package.carrier} on {order.site}")
        return hold(rt, order.order_id, HoldReason.CARRIER_NOT_ACCEPTED,
                    f"order {order.order_id}: {why}; refusing to confirm as a silent 'Other'")
    if package.state == PackageState.LABELED and record.cancel_request_stands:
        return hold(rt, order.order_id, HoldReason.BUYER_CANCEL_REQUESTED,
                    f"order {order.order_id}: the buyer asked to cancel after the label was bought "
                    f"({package.carrier} {package.tracking_number}); cancel the order in Seller Central and "
                    "the label is voided, or release it to ship anyway")
    coded = package_codes(rt, order, package)
    if coded.missing and package.state == PackageState.LABELED \
            and rt.config.amazon.transparency_codes == "required":
        held = hold(rt, order.order_id, HoldReason.TRANSPARENCY_CODES_NEEDED,
                    _codes_wanted(order, package, coded))
        # codes given since they were read found the order not held yet, so did not release it
        if not package_codes(rt, order, package).missing \
                and rt.ledger.release_if_coded(order.order_id, enrolled_items(order)):
            return Outcome.PROGRESS
        return held
    # A feed leaves to this step what it cannot carry, such as an order with a cancel request (only
    # this step can tell an operator released it to ship anyway): those are confirmed singly.
    if package.state == PackageState.LABELED and leaves_to_feed(rt, order, package):
        return Outcome.REST  # the account confirms by feed now (engine/feeds.py)
    if _reference_taken(package, order):
        return hold_taken(rt, order.order_id, package)
    lane = confirm_lane(rt, order.account)
    if lane is not None and not lane.try_enter():
        return Outcome.QUEUED  # the account's confirmations in flight keep its bucket busy
    try:
        return _send(rt, record, package, spec, carrier_code, coded.codes)
    finally:
        if lane is not None:
            lane.leave()


def _still_as_read(rt: Runtime, package: Package) -> None:
    """Raise StaleStateError unless the CONFIRMING package is still the claim read: a feed settled
    since (a refused line: LABELED, the order held) or claimed it again is not this worker's to
    send. Checked after :func:`in_open_feed`: a package in no open feed then cannot move on."""
    current = rt.ledger.get_package(package.id)
    if current is None or (current.state, current.confirm_attempts) != (package.state,
                                                                         package.confirm_attempts):
        raise StaleStateError(f"package {package.package_ref} of order {package.order_id} moved on since "
                              f"it was read (now {current.state.value if current else 'gone'})")


def _reference_taken(package: Package, order: Order) -> bool:
    """Amazon (as last polled) shows a package under this one's reference, and this package was
    never sent: someone else's. confirmShipment under a reference Amazon has edits that package."""
    return (package.state == PackageState.LABELED and package.confirm_attempts == 0
            and package.package_ref in order.shipped_package_refs)


def package_codes(rt: Runtime, order: Order, package: Package) -> PackageCodes:
    """The Transparency codes the package's confirmation carries, and those still missing (none
    read for an order without a Transparency item). An item split over packages: each package
    takes the next codes after those of the packages ahead of it, by reference, sent or not. A
    package given up (FAILED, voided) carries no units: it takes no codes."""
    if not enrolled_items(order):
        return PackageCodes({}, {})
    before: Counter[str] = Counter()
    planned: Counter[str] = Counter()  # the units of each item the order's packages carry
    for other in rt.ledger.packages(order.order_id):
        if other.state in _CARRY_NO_UNITS:
            continue
        units = Counter({str(i["order_item_id"]): int(i["quantity"]) for i in other.items})
        planned.update(units)
        if int(other.package_ref) < int(package.package_ref):
            before.update(units)
    return codes_for_package(order, package.items, rt.ledger.transparency_codes(order.order_id), before,
                             planned)


def _codes_wanted(order: Order, package: Package, coded: PackageCodes) -> str:
    skus = {item.order_item_id: item.sku for item in order.items}
    wanted = "; ".join(f"order item {item_id} (SKU {skus.get(item_id, '?')}): {needed} code(s), {kept} given"
                       + (" for another count of units (Amazon's order changed): give them again"
                          if kept >= needed else "")
                       for item_id, (needed, kept) in sorted(coded.missing.items()))
    command = f"mfn-connector orders transparency {order.order_id} ORDER_ITEM_ID CODE..."
    return (f"order {order.order_id}: package {package.package_ref} ({package.carrier} "
            f"{package.tracking_number}) holds Transparency items whose codes are missing: {wanted}; scan "
            f"them from the units packed and give them ({command}), which releases the order")


def _confirmation(order: Order, package: Package, spec: CarrierSpec, carrier_code: str,
                  codes: dict[str, list[str]]) -> dict[str, Any]:
    """What confirmShipment is sent for the package (its arguments after the order id)."""
    service = spec.service(package.service)
    return dict(marketplace_id=order.marketplace_id, package_reference_id=package.package_ref,
                carrier_code=carrier_code, tracking_number=package.tracking_number,
                ship_date=package.shipped_at or utcnow(),
                items=[(i["order_item_id"], i["quantity"]) for i in package.items],
                shipping_method=(service.amazon_shipping_method or service.name) if service else None,
                transparency_codes=codes or None)


def _send(rt: Runtime, record: OrderRecord, package: Package, spec: CarrierSpec,
          carrier_code: str, codes: dict[str, list[str]]) -> Outcome:
    """Claim the package (LABELED -> CONFIRMING) and send confirmShipment; then CONFIRMED."""
    order = record.order
    client = rt.amazon[order.account]
    sent = _confirmation(order, package, spec, carrier_code, codes)  # its ship date stored with the claim
    try:  # before the claim: data of ours Amazon would refuse is held now, not retried
        confirm_shipment_body(order.order_id, **sent)
    except (ValueError, TypeError) as exc:
        return hold(rt, order.order_id, HoldReason.LEDGER_INCONSISTENT,
                    f"order {order.order_id}: package {package.package_ref} cannot be confirmed as "
                    f"recorded: {exc}")
    claimed = False
    try:
        if package.state == PackageState.LABELED:
            package = rt.ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING,
                                        order_state=OrderState.CONFIRMING, shipped_at=sent["ship_date"],
                                        confirm_attempts=package.confirm_attempts + 1)
            sent["ship_date"] = package.shipped_at or sent["ship_date"]  # as stored: a re-send sends it
            claimed = True
            # read again: codes replaced before the claim are the ledger's; after it, refused
            sent["transparency_codes"] = package_codes(rt, order, package).codes or None
        elif verify_if_shown(rt, raw := client.get_order(order.order_id), package, PackageState.CONFIRMING):
            rt.counters.add("confirmations_sent")  # resumed: the earlier send had landed, answer lost
            return Outcome.REST
        elif theirs := taken_by_another(rt, raw, package):  # sent again, ours would replace it
            return hold_taken(rt, order.order_id, package, theirs)
        elif package.confirmed_at is None and (fed_at := accepted_by_feed(rt, package)):
            # a feed line Amazon accepted while the package was being voided (the void refused
            # since; the feed could not move a VOIDING package): confirmed then, Amazon not
            # showing it yet. The verify step reads it back, as any fed package; sent again, it
            # would be refused, or make a second package. Only an accepted line: a line in doubt
            # (a FATAL feed applied nothing) is sent now, as any CONFIRMING package Amazon does not show.
            return _confirmed(rt, package, PackageState.CONFIRMING, confirmed_at=fed_at)
        crashpoint("before_confirm")
        client.confirm_shipment(order.order_id, **sent)
    except QuotaWaitInterrupted:
        if claimed:  # stopped before the request left: the claim is handed back, the turn not counted
            rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.LABELED,
                              order_state=OrderState.LABELED, confirm_attempts=package.confirm_attempts - 1)
        raise
    except AlreadyShippedError as exc:
        try:
            if verify_if_shown(rt, client.get_order(order.order_id), package, PackageState.CONFIRMING):
                rt.counters.add("confirmations_sent")  # ours had landed: Amazon means our own
                return Outcome.REST
        except SpApiError as read_exc:
            return defer(rt, record, f"verifying after 'already shipped': "
                                     f"{their_words(order.ship_to, read_exc)}")
        return hold(rt, order.order_id, HoldReason.ALREADY_SHIPPED,
                    f"order {order.order_id}: Amazon says it is already shipped, but not with our "
                    f"package {package.package_ref}: {their_words(order.ship_to, exc)}")
    except InvalidInputError as exc:
        back = PackageChange(package, PackageState.CONFIRMING, PackageState.LABELED,
                             order_state=OrderState.LABELED,
                             fields={"error": their_words(order.ship_to, exc)[:500]})  # with the hold
        return hold(rt, order.order_id, HoldReason.AMAZON_REJECTED,
                    f"order {order.order_id}: Amazon refused the shipment confirmation: "
                    f"{their_words(order.ship_to, exc)}", change=back)
    except SpApiError as exc:  # throttled, transient (maybe landed), auth: try later, verify first
        return defer(rt, record, f"confirmShipment: {their_words(order.ship_to, exc)}")
    crashpoint("after_confirm_call")
    rt.counters.add("confirmations_sent")
    outcome = _confirmed(rt, package, PackageState.CONFIRMING, confirmed_at=utcnow())
    crashpoint("after_confirm")
    return outcome


def _confirmed(rt: Runtime, package: Package, expect: PackageState, **fields: object) -> Outcome:
    """The package CONFIRMED. Within the verify grace the next step would only wait (the bulk reads
    verify meanwhile), so the order rests until the grace is over, set in the same transaction."""
    grace = rt.engine.verify_grace
    rt.ledger.advance(package, expect, PackageState.CONFIRMED, order_state=OrderState.CONFIRMED,
                      order_rests_for=grace, **fields)
    log.info("order %s: shipment confirmed on Amazon (package %s, %s %s)", package.order_id,
             package.package_ref, package.carrier, package.tracking_number)
    return Outcome.DEFER if grace else Outcome.PROGRESS
