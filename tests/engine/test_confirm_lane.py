"""The confirm lane: while an account's lane is full, confirm() hands the order back untouched."""
from __future__ import annotations

import pytest

from connector.engine.confirm import confirm_lane
from connector.engine.loop import Engine
from connector.ledger import OrderState

pytestmark = pytest.mark.e2e


def confirmations_sent(w) -> int:
    return w.state("spapi")["operation_calls"].get("confirmShipment", {}).get("total", 0)


def test_a_full_lane_leaves_the_order_labeled_and_sends_nothing(world):
    w = world({"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        rt.confirm_lanes = {}  # as the daemon's scheduler runs it
        lanes = [confirm_lane(rt, account.name) for account in rt.config.accounts]
        for lane in lanes:  # two confirmations in flight elsewhere
            assert all(lane.try_enter() for _ in range(lane.size)) and lane.full
        engine = Engine(rt)
        engine.run_pass()
        counts = rt.ledger.counts()
        assert counts.get(OrderState.LABELED.value, 0) > 0, counts
        assert counts.get(OrderState.CONFIRMING.value, 0) == 0  # not claimed, so nothing to recover
        assert confirmations_sent(w) == 0
        for lane in lanes:
            for _ in range(lane.size):
                lane.leave()
        engine.run_pass(ingest=False)
        assert confirmations_sent(w) > 0
        assert rt.ledger.counts().get(OrderState.LABELED.value, 0) == 0
        assert all(lane.busy == 0 for lane in lanes)  # every confirmation left its lane
    finally:
        rt.close()


def test_a_package_amazon_would_refuse_as_recorded_is_held_before_its_claim(world):
    """Our own data that cannot make a valid confirmShipment (an order item listed twice) is
    held at once, naming the problem: no claim, no call, no retries spending getOrder reads."""
    import dataclasses

    from connector.engine.confirm import confirm
    from connector.holds import HoldReason

    w = world({"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        rt.confirm_lanes = {}
        lanes = [confirm_lane(rt, account.name) for account in rt.config.accounts]
        for lane in lanes:  # every order stops at LABELED
            assert all(lane.try_enter() for _ in range(lane.size))
        Engine(rt).run_pass()
        for lane in lanes:
            for _ in range(lane.size):
                lane.leave()
        record = rt.ledger.orders([OrderState.LABELED])[0]
        package = rt.ledger.open_package(record.order_id)
        twice = dataclasses.replace(package, items=(*package.items, package.items[0]))
        confirm(rt, record, twice)
        held = rt.ledger.get_order(record.order_id)
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.LEDGER_INCONSISTENT.value
        assert "is listed twice" in held.hold_message and held.held_from is OrderState.LABELED
        assert confirmations_sent(w) == 0
    finally:
        rt.close()
