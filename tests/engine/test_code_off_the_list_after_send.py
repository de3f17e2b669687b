"""A confirmation sent (its answer lost: the package stays CONFIRMING) before the site's list dropped
the carrier's code: it may well have landed. Coming back to it, the order is read back first, as for
any CONFIRMING package; one Amazon shows is verified, not held ``carrier_not_accepted`` with a hint to
void a label whose parcel Amazon already shows shipped."""
from __future__ import annotations

import pytest

from connector.amazon.errors import TransientError
from connector.engine.loop import drive, step
from connector.ledger import OrderState, PackageState
from connector.model import FulfillmentStatus
from connector.rules import SiteRulesPatch

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_confirmation_that_landed_before_its_code_left_the_list_is_verified(world):
    w = world({"sandbox": {"orders": 20}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}, "engine": {"workers": 1, "verify_grace_seconds": 0}})
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
        client = rt.amazon[rt.ledger.get_order(order_id).order.account]
        real = client.confirm_shipment

        def landed_answer_lost(*args, **kwargs):
            real(*args, **kwargs)
            raise TransientError("read timed out", ambiguous=True)

        client.confirm_shipment = landed_answer_lost
        step(rt, rt.ledger.get_order(order_id))
        assert rt.ledger.open_package(order_id).state is PackageState.CONFIRMING
        assert order_id in w.state("spapi")["confirmations"]
        client.confirm_shipment = real

        rt.site_rules["US"] = SiteRulesPatch("US", carrier_codes={"Yun Express": None}).apply(
            rt.site_rules["US"])
        rt.ledger.clear_deferral(order_id)
        drive(rt, order_id, lambda: False)
        record = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert record.state is OrderState.VERIFIED, (record.state, record.hold_reason, record.hold_message)
