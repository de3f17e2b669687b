"""Part of an order shipped on Amazon after the daemon planned its package (by hand in Seller
Central, say): the plan's items are stale. A label bought for them would carry items already
shipped, and Amazon refuses a confirmation of more than is left to ship; the package is planned
again for what Amazon still shows unshipped, before anything is bought."""
from __future__ import annotations

from datetime import timezone

import pytest

from connector.engine.loop import drive, step
from connector.ledger import OrderState, PackageState
from connector.model import FulfillmentStatus, utcnow

from ..e2e.helpers import advance, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_package_planned_before_part_of_its_order_shipped_is_planned_again(world):
    w = world({"sandbox": {"orders": 30}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        record = next(r for r in rt.ledger.orders([OrderState.NEW])
                      if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested
                      and sum(i.quantity for i in r.order.items) >= 2)
        order_id, order = record.order_id, record.order
        step(rt, record)
        (planned,) = rt.ledger.packages(order_id)
        assert planned.state is PackageState.PLANNED
        # someone ships one unit by hand on Amazon, then the order poll sees it
        first = order.items[0]
        rt.amazon[order.account].confirm_shipment(
            order_id, marketplace_id=order.marketplace_id, package_reference_id="9",
            carrier_code="China Post", tracking_number="LX123456785CN",
            ship_date=utcnow().astimezone(timezone.utc),
            items=[(first.order_item_id, 1)])
        advance(w, 600)
        ingest_all(rt)
        left = {i.order_item_id: i.quantity for i in rt.ledger.get_order(order_id).order.items}
        assert left[first.order_item_id] == first.quantity - 1

        drive(rt, order_id, lambda: False)
        final = rt.ledger.get_order(order_id)
        bought = [p for p in rt.ledger.packages(order_id) if p.tracking_number]
        assert final.state is not OrderState.HELD, final.hold_message
        assert len(bought) == 1
        assert {i["order_item_id"]: i["quantity"] for i in bought[0].items} == \
            {k: v for k, v in left.items() if v}
        assert bought[0].package_ref != "9"
    finally:
        rt.close()
