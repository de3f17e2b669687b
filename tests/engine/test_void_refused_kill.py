"""A void the carrier refuses is recorded in two writes: the package back where the void started,
and the order held ``void_refused``. A daemon killed between the two must not leave the order
free to be confirmed: the person who asked for the void decides."""
from __future__ import annotations

import pytest

from connector.engine.loop import drive
from connector.engine.steer import NotAllowed, void_order
from connector.kit.carrier import PermanentCarrierError
from connector.ledger import OrderState, PackageState

from .labelled import CancelFails, labelled_order

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


class Killed(BaseException):
    """SIGKILL, as far as the ledger can tell: nothing after it is written."""


def test_a_kill_while_a_refused_void_is_recorded_leaves_the_order_held(world, monkeypatch):
    w, rt, order_id = labelled_order(world)
    try:
        rt.carriers["yunexpress"] = CancelFails(rt.carriers["yunexpress"],
                                                PermanentCarrierError("the label cannot be cancelled"))

        writes: list[str] = []  # the two writes recording the refusal: killed at the second
        advance, hold = rt.ledger.advance, rt.ledger.hold

        def advancing(package, expect, new, *args, **kwargs):
            if expect is PackageState.VOIDING and new is not PackageState.VOIDED:
                writes.append("package back")
                if len(writes) == 2:
                    raise Killed
            return advance(package, expect, new, *args, **kwargs)

        def holding(order, reason, message, **kwargs):
            if reason == "void_refused":
                writes.append("held")
                if len(writes) == 2:
                    raise Killed
            return hold(order, reason, message, **kwargs)

        monkeypatch.setattr(rt.ledger, "advance", advancing)
        monkeypatch.setattr(rt.ledger, "hold", holding)
        with pytest.raises(Killed):
            void_order(rt, order_id)  # an operator's void (Amazon did not cancel the order)
        monkeypatch.undo()

        drive(rt, order_id, lambda: False)  # the daemon, started again
        assert order_id not in w.state("spapi")["confirmations"], "confirmed a label its void was asked for"
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.HELD, (record.state, writes)
        with pytest.raises(NotAllowed):
            void_order(rt, order_id)  # asked again: refused again, and said so
        record = rt.ledger.get_order(order_id)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "void_refused")
        assert rt.ledger.open_package(order_id).state is PackageState.LABELED
    finally:
        rt.close()
