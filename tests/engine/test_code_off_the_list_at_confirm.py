"""A label bought while its carrier's code was on the site's list, confirmed after the list
dropped it (an operator corrected site_rules against Seller Central, say): sent anyway, Amazon
would file it as "Other", tracking that does not count as valid. The order is held
``carrier_not_accepted`` instead, as for a carrier with no code at all (docs/site-rules.md).

But a confirmation already sent (its answer lost: the package stays CONFIRMING) before the list
dropped the code may well have landed. Coming back to it, the order is read back first, as for any
CONFIRMING package; one Amazon shows is verified, not held with a hint to void a label whose parcel
Amazon already shows shipped."""
from __future__ import annotations

import pytest

from connector.amazon.errors import TransientError
from connector.engine.loop import drive, step
from connector.holds import HoldReason
from connector.ledger import OrderState, PackageState
from connector.model import FulfillmentStatus
from connector.rules import SiteRulesPatch

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

CONFIG = {"sandbox": {"orders": 20}, "routing": {"default": ["yunexpress:*"]},
          "selection": {"overrides": []}, "engine": {"workers": 1, "verify_grace_seconds": 0}}


def labeled_us_order(rt) -> str:
    """A US order driven to its label, stopped before its confirmation."""
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        if (record.order.site != "US" or record.order.status is not FulfillmentStatus.UNSHIPPED
                or record.order.buyer_cancel_requested):
            continue
        for _ in range(4):  # plan, claim and buy, fetch the label: stop before the confirmation
            step(rt, rt.ledger.get_order(record.order_id))
            if rt.ledger.get_order(record.order_id).state in (OrderState.LABELED, OrderState.HELD):
                break
        if rt.ledger.get_order(record.order_id).state is OrderState.LABELED:
            return record.order_id
    raise AssertionError(f"no US order reached its label: {rt.ledger.counts()}")


def drop_yunexpress_code(rt) -> None:
    """The US list no longer has YunExpress's code, in any spelling."""
    rt.site_rules["US"] = SiteRulesPatch("US", carrier_codes={"Yun Express": None}).apply(rt.site_rules["US"])


def test_a_label_whose_code_left_the_sites_list_is_held_not_confirmed(world):
    w = world(CONFIG)
    rt = w.runtime()
    try:
        order_id = labeled_us_order(rt)
        drop_yunexpress_code(rt)
        drive(rt, order_id, lambda: False)
        held = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert held.state is OrderState.HELD and held.hold_reason == HoldReason.CARRIER_NOT_ACCEPTED.value, \
        (held.state, held.hold_reason, held.hold_message)
    assert "Yun Express" in held.hold_message
    assert order_id not in w.state("spapi")["confirmations"]


def test_a_confirmation_that_landed_before_its_code_left_the_list_is_verified(world):
    w = world(CONFIG)
    rt = w.runtime()
    try:
        order_id = labeled_us_order(rt)
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

        drop_yunexpress_code(rt)
        rt.ledger.clear_deferral(order_id)
        drive(rt, order_id, lambda: False)
        record = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert record.state is OrderState.VERIFIED, (record.state, record.hold_reason, record.hold_message)
