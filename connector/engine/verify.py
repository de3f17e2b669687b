"""Stage 5, verify: CONFIRMED -> VERIFIED. A 204 is not proof: the order read back must show the
package with our tracking number.

The order poll verifies in pages of 100 (``ingest.py`` calls :func:`shown_on` and
:func:`mark_verified`); ``getOrder`` (0.5/s) reads an order one by one only after
``engine.verify_grace_seconds``. A confirmation Amazon accepted but never shows is sent again, a
bounded number of times, and then the order is held.
"""
from __future__ import annotations

from datetime import timedelta

from ..amazon.errors import SpApiError
from ..amazon.mapping import package_from_api
from ..holds import HoldReason
from ..ledger import OrderRecord, OrderState, Package, PackageState
from ..model import Order, utcnow
from .crashpoints import crashpoint
from .outcome import Outcome, defer, hold
from .runtime import Runtime


def confirms_itself(rt: Runtime, package: Package) -> bool:
    """Labels of this carrier confirm the shipment on Amazon by themselves (a declared capability)."""
    spec = rt.carrier_specs.get(package.carrier)
    return bool(spec and spec.confirms_shipment)


def shown_on(rt: Runtime, raw_order: dict | None, package: Package) -> bool:
    """Does this Amazon order (as getOrder or searchOrders returns it) show our package?

    Our own confirmations carry our packageReferenceId; a self-confirming label's package gets an
    id from Amazon, so there only the tracking number identifies it.
    """
    if not raw_order:
        return False
    if confirms_itself(rt, package):
        return any(p.get("trackingNumber") == package.tracking_number
                   for p in raw_order.get("packages") or [])
    on_amazon = package_from_api(raw_order, package.package_ref)
    return bool(on_amazon) and on_amazon.get("trackingNumber") == package.tracking_number


def visible(rt: Runtime, order: Order, package: Package) -> bool:
    """Read the order back (getOrder) and look for the package."""
    return shown_on(rt, rt.amazon[order.account].get_order(order.order_id), package)


def mark_verified(rt: Runtime, package: Package, expect: PackageState) -> Outcome:
    package = rt.ledger.advance(package, expect, PackageState.VERIFIED, order_state=OrderState.VERIFIED)
    crashpoint("after_verify")
    rt.counters.add("verified")
    return Outcome.REST


def verify(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    grace = rt.engine.verify_grace_seconds
    if grace and package.updated_at and utcnow() < package.updated_at + timedelta(seconds=grace):
        return Outcome.DEFER  # the order poll verifies it in bulk meanwhile
    try:
        if visible(rt, order, package):
            return mark_verified(rt, package, PackageState.CONFIRMED)
    except SpApiError as exc:
        return defer(rt, record, f"getOrder: {exc}")
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
