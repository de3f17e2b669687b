"""An FBM Ship+ order, end to end: Amazon refuses confirmShipment for it (the SP-API emulator
too), so the daemon buys it a Buy Shipping label, which confirms itself, and never a direct one
(docs/site-rules.md#fbm-ship)."""
from __future__ import annotations

import pytest

from connector.engine.loop import drive
from connector.ledger import OrderState

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_ship_plus_order_is_shipped_with_buy_shipping_not_a_direct_label(world):
    # YunExpress's direct label is made the cheapest: without the rule it would be bought
    free = {"carrier": "yunexpress", "kind": "percent", "value": 100}
    w = world({"sandbox": {"orders": 30}, "routing": {"default": ["yunexpress:*", "amazon_shipping:*"]},
               "selection": {"overrides": [], "discounts": [free]}})
    spapi = w.sandbox.servers["spapi"].emulator
    with spapi.lock:
        record = next(r for r in spapi.store["orders"].values()
                      if r["order"]["salesChannel"]["marketplaceId"] == "ATVPDKIKX0DER"
                      and r["order"]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
                      and not any(i.get("cancellation") for i in r["order"]["orderItems"]))
        record["order"]["programs"] = ["FBM_SHIP_PLUS"]
        order_id = record["order"]["orderId"]
    rt = w.runtime()
    try:
        ingest_all(rt)
        assert "FBM_SHIP_PLUS" in rt.ledger.get_order(order_id).order.programs
        drive(rt, order_id, lambda: False)
        final = rt.ledger.get_order(order_id)
        packages = rt.ledger.packages(order_id)
    finally:
        rt.close()
    assert final.state is not OrderState.HELD, final.hold_message
    assert [p.carrier for p in packages] == ["amazon_shipping"]
    assert order_id not in w.state("spapi")["confirmations"]  # nothing was sent to confirmShipment
    assert not w.state("yunexpress")["labels"].get(f"{order_id}-1")
