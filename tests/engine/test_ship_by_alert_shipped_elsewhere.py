"""The ship-by guard warns about orders not confirmed on Amazon. One that Amazon shows shipped in
full, by someone else (shipped by hand in Seller Central: the daemon holds it with nothing bought),
is confirmed on Amazon: its ship-by is no risk, it raises no ``ship_by_near`` and ``orders list
--due-within`` leaves it out."""
from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from click.testing import CliRunner

from connector import clock
from connector.cli import cli
from connector.engine.loop import step
from connector.engine.watch import ship_by_guard
from connector.ledger import OrderState
from connector.model import FulfillmentStatus, utcnow

from ..e2e.helpers import advance, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_an_order_shipped_by_hand_on_amazon_raises_no_ship_by_alert(world):
    w = world({"sandbox": {"orders": 20}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        record = next(r for r in rt.ledger.orders([OrderState.NEW])
                      if r.order.status is FulfillmentStatus.UNSHIPPED and r.order.ship_by is not None
                      and not r.order.buyer_cancel_requested)
        order, order_id = record.order, record.order_id
        rt.amazon[order.account].confirm_shipment(  # the seller ships it by hand on Amazon
            order_id, marketplace_id=order.marketplace_id, package_reference_id="7",
            carrier_code="China Post", tracking_number="LX123456785CN",
            ship_date=utcnow().astimezone(timezone.utc),
            items=[(i.order_item_id, i.quantity) for i in order.items if i.quantity])
        advance(w, 600)
        ingest_all(rt)
        step(rt, rt.ledger.get_order(order_id))
        held = rt.ledger.get_order(order_id)
        assert held.state is OrderState.HELD and held.order.status is FulfillmentStatus.SHIPPED
        ship_by_guard(rt, order.ship_by - timedelta(hours=2))
        alerts = [a for a in rt.ledger.alerts() if a.kind == "ship_by_near" and a.subject == order_id]
    finally:
        rt.close()
    assert alerts == []
    window = f"{(order.ship_by - clock.now()).total_seconds() / 3600 + 1:.0f}h"
    listed = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "list", "--due-within",
                                      window, "--json"])
    assert listed.exit_code == 0, listed.output
    due = {row["order_id"] for row in json.loads(listed.output)}
    assert due and order_id not in due
