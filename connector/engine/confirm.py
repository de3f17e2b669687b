"""Stage 4, confirm: LABELED -> CONFIRMING -> CONFIRMED (confirmShipment, Orders API v0); or, for
an ERP's label it did not ask to be confirmed here, LABELED -> ISSUED (tracking follows).

confirmShipment is sent only after the CONFIRMING claim is committed, with a stable numeric
``packageReferenceId`` and a stable ship date, so a re-send edits the same package instead of
adding one. Coming back to a CONFIRMING package the order is read first and the confirmation
re-sent only if Amazon does not show it. "Already shipped" means verify, not fail. A carrier whose
labels confirm themselves (a declared capability) is never confirmed again.
"""
from __future__ import annotations

from ..amazon.errors import AlreadyShippedError, InvalidInputError, SpApiError
from ..holds import HoldReason
from ..ledger import OrderRecord, OrderState, Package, PackageState
from ..model import utcnow
from ..ratelimit import QuotaWaitInterrupted
from .crashpoints import crashpoint
from .feeds import in_open_feed, leaves_to_feed
from .outcome import Outcome, defer, hold
from .runtime import Runtime
from .verify import confirms_itself, mark_verified, visible


def confirm(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    if in_open_feed(rt, package):  # a feed holds the claim: its processing report decides
        return Outcome.REST
    if not order.confirms_on_amazon:  # the ERP's label for another channel, or one it confirms itself
        rt.ledger.advance(package, PackageState.LABELED, PackageState.ISSUED, order_state=OrderState.ISSUED,
                          shipped_at=package.shipped_at or utcnow())
        return Outcome.REST
    if confirms_itself(rt, package):  # the purchase confirmed it on Amazon; never send again
        rt.ledger.advance(package, package.state, PackageState.CONFIRMED, order_state=OrderState.CONFIRMED,
                          shipped_at=package.shipped_at or utcnow(),
                          confirmed_at=package.confirmed_at or package.created_at or utcnow())
        return Outcome.PROGRESS
    spec = rt.carrier_specs.get(package.carrier)
    carrier_code = spec.carrier_code_for(order.site) if spec else None
    if spec is None or carrier_code is None:
        return hold(rt, order.order_id, HoldReason.CARRIER_NOT_ACCEPTED,
                    f"order {order.order_id}: no Amazon carrier code for {package.carrier} on "
                    f"{order.site}; refusing to confirm as a silent 'Other'")
    if package.state == PackageState.LABELED and order.buyer_cancel_requested:
        return hold(rt, order.order_id, HoldReason.BUYER_CANCEL_REQUESTED,
                    f"order {order.order_id}: the buyer asked to cancel after the label was bought "
                    f"({package.carrier} {package.tracking_number}); cancel the order in Seller Central and "
                    "the label is voided, or release it to ship anyway")
    if package.state == PackageState.LABELED and leaves_to_feed(rt, order):
        return Outcome.REST  # the account confirms by feed now (engine/feeds.py)
    client = rt.amazon[order.account]
    claimed = False
    try:
        if package.state == PackageState.LABELED:
            package = rt.ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING,
                                        order_state=OrderState.CONFIRMING,
                                        shipped_at=package.shipped_at or utcnow(),
                                        confirm_attempts=package.confirm_attempts + 1)
            claimed = True
        elif visible(rt, order, package):  # resumed: the earlier send may have landed
            return mark_verified(rt, package, PackageState.CONFIRMING)
        crashpoint("before_confirm")
        service = spec.service(package.service)
        client.confirm_shipment(
            order.order_id, marketplace_id=order.marketplace_id, package_reference_id=package.package_ref,
            carrier_code=carrier_code, tracking_number=package.tracking_number,
            ship_date=package.shipped_at or utcnow(),
            items=[(i["order_item_id"], i["quantity"]) for i in package.items],
            shipping_method=(service.amazon_shipping_method or service.name) if service else None)
    except QuotaWaitInterrupted:
        if claimed:  # stopped before the request left: the claim is handed back, the turn not counted
            rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.LABELED,
                              order_state=OrderState.LABELED, confirm_attempts=package.confirm_attempts - 1)
        raise
    except AlreadyShippedError as exc:
        try:
            if visible(rt, order, package):
                return mark_verified(rt, package, PackageState.CONFIRMING)
        except SpApiError as read_exc:
            return defer(rt, record, f"verifying after 'already shipped': {read_exc}")
        return hold(rt, order.order_id, HoldReason.ALREADY_SHIPPED,
                    f"order {order.order_id}: Amazon says it is already shipped, but not with our "
                    f"package {package.package_ref}: {exc}")
    except InvalidInputError as exc:
        rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.LABELED,
                          order_state=OrderState.LABELED, error=str(exc)[:500])
        return hold(rt, order.order_id, HoldReason.AMAZON_REJECTED,
                    f"order {order.order_id}: Amazon refused the shipment confirmation: {exc}")
    except SpApiError as exc:  # throttled, transient (maybe landed), auth: try later, verify first
        return defer(rt, record, f"confirmShipment: {exc}")
    crashpoint("after_confirm_call")
    rt.counters.add("confirmations_sent")
    rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.CONFIRMED,
                      order_state=OrderState.CONFIRMED, confirmed_at=utcnow())
    crashpoint("after_confirm")
    return Outcome.PROGRESS
