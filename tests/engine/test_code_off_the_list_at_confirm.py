"""A label bought while its carrier's code was on the site's list, confirmed after the list
dropped it (an operator corrected site_rules against Seller Central, say): sent anyway, Amazon
would file it as "Other", tracking that does not count as valid. The order is held
``carrier_not_accepted`` instead, as for a carrier with no code at all (docs/site-rules.md)."""
from __future__ import annotations

import pytest

from connector.engine.loop import drive, step
from connector.holds import HoldReason
from connector.ledger import OrderState
from connector.model import FulfillmentStatus
from connector.rules import SiteRulesPatch

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_label_whose_code_left_the_sites_list_is_held_not_confirmed(world):
    w = world({"sandbox": {"orders": 20}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}, "engine": {"workers": 1}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        order_id = ""
        for record in rt.ledger.orders([OrderState.NEW]):
            if (record.order.site != "US" or record.order.status is not FulfillmentStatus.UNSHIPPED
                    or record.order.buyer_cancel_requested):
                continue
            for _ in range(4):  # plan, claim and buy, fetch the label: stop before the confirmation
                step(rt, rt.ledger.get_order(record.order_id))
                if rt.ledger.get_order(record.order_id).state in (OrderState.LABELED, OrderState.HELD):
                    break
            if rt.ledger.get_order(record.order_id).state is OrderState.LABELED:
                order_id = record.order_id
                break
        assert order_id, rt.ledger.counts()
        # the site's list no longer has YunExpress's code in any spelling
        dropped = SiteRulesPatch("US", carrier_codes={"Yun Express": None})
        rt.site_rules["US"] = dropped.apply(rt.site_rules["US"])
        drive(rt, order_id, lambda: False)
        held = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert held.state is OrderState.HELD and held.hold_reason == HoldReason.CARRIER_NOT_ACCEPTED.value, \
        (held.state, held.hold_reason, held.hold_message)
    assert "Yun Express" in held.hold_message
    assert order_id not in w.state("spapi")["confirmations"]
