"""Part of an order confirmed on Amazon by someone else after the daemon bought its label, under
the package reference the daemon planned with (the first, "1"). confirmShipment with a reference
Amazon already shows edits that package: sent, the daemon's confirmation would replace the other
shipment's tracking number and items with its own, and read back under its reference it would pass
for verified. The daemon never sends under a reference Amazon shows for a package it did not send."""
from __future__ import annotations

from datetime import timezone

import pytest

from connector.engine.loop import drive, step
from connector.ledger import OrderState, PackageState
from connector.model import FulfillmentStatus, utcnow

from ..e2e.helpers import advance, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def _runtime_and_order(world):
    """A world, its runtime and an unshipped order of two units or more, ingested, not planned."""
    w = world({"sandbox": {"orders": 30}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}, "engine": {"verify_grace_seconds": 0}})
    rt = w.runtime()
    ingest_all(rt)
    record = next(r for r in rt.ledger.orders([OrderState.NEW])
                  if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested
                  and sum(i.quantity for i in r.order.items) >= 2)
    return w, rt, record.order


def _labeled(rt, order_id):
    while (package := rt.ledger.open_package(order_id)) is None \
            or package.state is not PackageState.LABELED:
        step(rt, rt.ledger.get_order(order_id))
    return package


def _partly_shipped_elsewhere(w, rt, order, reference="1"):
    """Someone ships one unit by hand, confirming it under ``reference``; the order poll sees it."""
    first = order.items[0]
    rt.amazon[order.account].confirm_shipment(
        order.order_id, marketplace_id=order.marketplace_id, package_reference_id=reference,
        carrier_code="China Post", tracking_number="LX123456785CN",
        ship_date=utcnow().astimezone(timezone.utc), items=[(first.order_item_id, 1)])
    advance(w, 600)
    ingest_all(rt)


def test_a_label_is_not_confirmed_over_a_package_confirmed_elsewhere_under_its_reference(world):
    w, rt, order = _runtime_and_order(world)
    try:
        order_id = order.order_id
        package = _labeled(rt, order_id)
        assert package.package_ref == "1"
        _partly_shipped_elsewhere(w, rt, order)
        assert rt.ledger.get_order(order_id).order.shipped_package_refs == ("1",)

        drive(rt, order_id, lambda: False)
        final = rt.ledger.get_order(order_id)
        assert final.state is OrderState.HELD, final.state
        assert final.hold_reason == "already_shipped"
        assert "package 1" in final.hold_message and package.tracking_number in final.hold_message
        assert rt.ledger.get_package(package.id).state is PackageState.LABELED  # nothing was sent
        (shown,) = rt.amazon[order.account].get_order(order_id)["packages"]
        assert shown["trackingNumber"] == "LX123456785CN"  # the other shipment is left as it was
    finally:
        rt.close()


@pytest.mark.parametrize("left_in", [PackageState.CONFIRMING, PackageState.CONFIRMED])
def test_a_confirmation_is_not_sent_again_over_a_package_confirmed_elsewhere(world, left_in):
    """Our confirmation claimed (CONFIRMING: killed before the request left) or accepted and not
    shown (CONFIRMED: dropped), and someone else's package now under our reference: sending again
    would replace it."""
    w, rt, order = _runtime_and_order(world)
    try:
        order_id = order.order_id
        package = _labeled(rt, order_id)
        package = rt.ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING,
                                    order_state=OrderState.CONFIRMING, shipped_at=utcnow(),
                                    confirm_attempts=1)  # the claim, as a kill before the call leaves it
        if left_in is PackageState.CONFIRMED:
            package = rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.CONFIRMED,
                                        order_state=OrderState.CONFIRMED, confirmed_at=utcnow())
            rt.ledger.defer(order_id, utcnow(), "the confirmed package is not visible on the order yet")
        _partly_shipped_elsewhere(w, rt, order)

        drive(rt, order_id, lambda: False)
        final = rt.ledger.get_order(order_id)
        assert final.state is OrderState.HELD, final.state
        assert final.hold_reason == "already_shipped", final.hold_message
        (shown,) = rt.amazon[order.account].get_order(order_id)["packages"]
        assert shown["trackingNumber"] == "LX123456785CN"  # the other shipment is left as it was
    finally:
        rt.close()
