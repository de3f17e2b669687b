"""A Buy Shipping label confirms its order on Amazon when it is bought, not when its package was
planned: the late-confirmation figure (Amazon's Late Shipment Rate counts when the confirmation
arrives) must count one bought after ship-by, even when the plan was made before it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector import clock
from connector.engine.loop import drive, step
from connector.engine.vtr import report, shipped_packages
from connector.ledger import OrderState
from connector.model import FulfillmentStatus

from ..e2e.helpers import advance, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_buy_shipping_label_bought_after_ship_by_counts_as_a_late_confirmation(world):
    w = world({"sandbox": {"orders": 30}, "routing": {"default": ["amazon_shipping:*"]},
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        order_id = ""
        for record in rt.ledger.orders([OrderState.NEW]):
            if (record.order.site != "US" or record.order.status is not FulfillmentStatus.UNSHIPPED
                    or record.order.buyer_cancel_requested or record.order.ship_by is None):
                continue
            step(rt, record)
            if rt.ledger.get_order(record.order_id).state is OrderState.PLANNED:
                order_id = record.order_id
                break
        assert order_id, rt.ledger.counts()
        ship_by = rt.ledger.get_order(order_id).order.ship_by
        advance(w, (ship_by - clock.now()).total_seconds() + 3600)  # bought an hour after ship-by
        drive(rt, order_id, lambda: False)
        (package,) = rt.ledger.packages(order_id)
        now = clock.now()
        lines = [p for p in shipped_packages(rt, since=now - timedelta(days=30)) if p.order_id == order_id]
        figures = report(lines, now=now + timedelta(days=60), window_days=90, first_scan_days=7)
    finally:
        rt.close()
    assert package.carrier == "amazon_shipping" and package.confirmed_at > ship_by
    assert figures["confirmations_after_ship_by"] == 1
