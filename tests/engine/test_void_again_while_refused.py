"""``orders void`` asked while the daemon is finishing the same void: the daemon's carrier call is
refused (the order held ``void_refused``, its label back where the void started) just before the
command steps the order. The command steps a held order only to finish a void: it never confirms
the label it was asked to void."""
from __future__ import annotations

import pytest

from connector.engine import steer
from connector.engine.loop import drive
from connector.engine.steer import NotAllowed, void_order
from connector.kit.carrier import PermanentCarrierError
from connector.ledger import OrderState, PackageState

from .labelled import CancelFails, labelled_order

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_void_asked_again_as_the_daemon_s_is_refused_never_confirms_the_label(world, monkeypatch):
    w, rt, order_id = labelled_order(world)
    try:
        carrier = rt.carriers["yunexpress"] = CancelFails(rt.carriers["yunexpress"])
        assert not void_order(rt, order_id).complete  # claimed; the carrier did not answer
        assert rt.ledger.get_order(order_id).state is OrderState.VOIDING

        carrier.error = PermanentCarrierError("the parcel is scanned")
        newest_label = steer._newest_label

        def daemon_finishes_first(ledger, oid):
            found = newest_label(ledger, oid)  # the command sees the void under way...
            drive(rt, oid, lambda: False)  # ...and the daemon's worker ends it, refused
            return found

        monkeypatch.setattr(steer, "_newest_label", daemon_finishes_first)
        with pytest.raises(NotAllowed):
            void_order(rt, order_id)

        assert order_id not in w.state("spapi")["confirmations"], "the label asked to be voided was confirmed"
        record = rt.ledger.get_order(order_id)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "void_refused")
        assert rt.ledger.open_package(order_id).state is PackageState.LABELED
    finally:
        rt.close()
