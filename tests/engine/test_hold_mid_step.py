"""An operator holds an order while its step is in flight (a confirmShipment waiting for Amazon's
answer). The step may still end with a hold of its own (Amazon refused the confirmation): the
operator's hold is kept, the step's reason added to its message, as a refused feed line does;
otherwise releasing for the step's reason would ship an order a person stopped."""
from __future__ import annotations

import pytest

from connector.amazon.errors import InvalidInputError
from connector.engine.loop import drive
from connector.engine.steer import hold_order
from connector.ledger import OrderState

from .labelled import labelled_order

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_an_operator_s_hold_during_a_step_outlives_the_step_s_own_hold(world):
    w, rt, order_id = labelled_order(world)
    try:
        client = rt.amazon[rt.ledger.get_order(order_id).order.account]

        def refused_while_held(*args, **kwargs):
            hold_order(rt.ledger, order_id, "manual", "fraud check: do not ship")  # meanwhile
            raise InvalidInputError("The tracking number is not valid for the carrier", status=400)

        client.confirm_shipment = refused_while_held
        drive(rt, order_id, lambda: False, 1)

        record = rt.ledger.get_order(order_id)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "manual"), record.hold_message
        assert "fraud check" in record.hold_message and "amazon_rejected" in record.hold_message
    finally:
        rt.close()
