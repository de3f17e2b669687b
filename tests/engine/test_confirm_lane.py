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
