"""An EU consignment the ioss.missing policy allows no direct label for is held ``ioss_missing``
at once, even when a direct carrier failed to quote: that carrier's label could not ship it
anyway, so waiting for its answer only burns the order's attempts and its ship-by
(docs/site-rules.md#ioss)."""
from __future__ import annotations

import pytest

from connector.engine.outcome import Outcome
from connector.engine.plan import plan, precheck
from connector.engine.shopping import build_parcel, order_requirements
from connector.holds import HoldReason
from connector.ledger import OrderState

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


class Failing:
    """A carrier whose quote fails as a network error would (transient: "unanswered")."""

    def __init__(self, carrier):
        self.carrier = carrier
        self.calls = 0

    def quote(self, request):
        self.calls += 1
        raise ConnectionError("connection reset")

    def __getattr__(self, name):
        return getattr(self.carrier, name)


@pytest.mark.parametrize("missing", ["hold", "buy_shipping"])
def test_no_direct_label_allowed_holds_ioss_missing_though_a_direct_carrier_did_not_answer(world, missing):
    w = world({"sandbox": {"orders": 40}, "ioss": {"cap": "1000 EUR", "missing": missing},
               "routing": {"default": ["yunexpress:*", "yanwen:*"]}})
    rt = w.runtime()
    failing = rt.carriers["yanwen"] = Failing(rt.carriers["yanwen"])
    try:
        ingest_all(rt)
        record = next(r for r in rt.ledger.orders([OrderState.NEW])
                      if precheck(rt, r) is None
                      and order_requirements(rt, r.order, build_parcel(
                          rt, r.order, {i.order_item_id: i.quantity for i in r.order.items})
                      ).ioss_missing == missing)
        outcome = plan(rt, record)
        after = rt.ledger.get_order(record.order_id)
    finally:
        rt.close()
    assert outcome is not Outcome.DEFER, "deferred, waiting for a carrier whose label is not allowed"
    assert after.state is OrderState.HELD and after.hold_reason == HoldReason.IOSS_MISSING.value
    assert "no IOSS number for this EU consignment" in after.hold_message
    assert failing.calls == 0  # a label it could not be allowed to buy was not even priced
