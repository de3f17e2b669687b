"""An order held until its buyer's address was purged, then released: nothing can be planned or
bought for it, so it is held again saying why (``address_purged``) -- but a label its claim already
bought is found by reference (the lookup needs no address) and goes on like any other."""
from __future__ import annotations

import pytest

from connector.engine.loop import drive, step
from connector.engine.outcome import Outcome
from connector.engine.plan import plan
from connector.engine.steer import hold_order, release_order, void_order
from connector.holds import HoldReason
from connector.ledger import OrderState, PackageState
from connector.model import FulfillmentStatus

from ..e2e.helpers import ingest_all
from .test_label_claim_recovery import planned_with_yunexpress, refused_once_planned

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def purged_and_released(rt, order_id: str) -> None:
    assert rt.ledger.purge_pii([order_id]) == 1
    release_order(rt.ledger, order_id)
    assert rt.ledger.get_order(order_id).order.ship_to is None


def test_a_planned_order_released_after_its_purge_is_held_again_and_buys_nothing(world, monkeypatch):
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=1)
    try:
        hold_order(rt.ledger, order_id, HoldReason.MANUAL.value, "waiting for stock")
        purged_and_released(rt, order_id)
        step(rt, rt.ledger.get_order(order_id))
        held = rt.ledger.get_order(order_id)
        packages = rt.ledger.packages(order_id)
    finally:
        rt.close()
    assert held.state is OrderState.HELD and held.hold_reason == HoldReason.ADDRESS_PURGED.value
    assert "address was purged" in held.hold_message and "shows none" not in held.hold_message
    assert [p.state for p in packages] == [PackageState.PLANNED]  # no claim was made
    assert w.state("yunexpress")["labels"] == {}


def test_a_claim_released_after_its_purge_is_looked_up_and_nothing_more_is_bought(world, monkeypatch):
    w, rt, held, package = refused_once_planned(world, monkeypatch, lost=1)  # one label, answer lost
    refusing = rt.carriers["yunexpress"]
    creates = refusing.creates  # the lost call's, and the refused one that held it
    try:
        purged_and_released(rt, held.order_id)
        step(rt, rt.ledger.get_order(held.order_id))  # the lookup lags: shows none
        again = rt.ledger.get_order(held.order_id)
        assert again.hold_reason == HoldReason.ADDRESS_PURGED.value
        assert f"yunexpress shows none under {package.idempotency_key}" in again.hold_message
        assert rt.ledger.packages(held.order_id)[-1].state is PackageState.LABEL_CLAIMED
        refusing.lagging = False
        release_order(rt.ledger, held.order_id)
        step(rt, rt.ledger.get_order(held.order_id))
        found = rt.ledger.packages(held.order_id)
        step(rt, rt.ledger.get_order(held.order_id))  # its file is not fetched: the order waits for a person
        last = rt.ledger.get_order(held.order_id)
        labels = list(rt.labels_dir.glob(f"{held.order_id}-*"))
        voided = void_order(rt, held.order_id)
    finally:
        rt.close()
    assert [p.state for p in found] == [PackageState.LABEL_CREATED]
    assert found[0].idempotency_key == package.idempotency_key and found[0].tracking_number
    assert last.hold_reason == HoldReason.ADDRESS_PURGED.value and "not fetched" in last.hold_message
    assert f"orders void {held.order_id}" in last.hold_message and labels == []
    assert voided.state is OrderState.VOIDED  # the label found can be voided at the carrier
    assert refusing.creates == creates  # none after the purge
    assert len(w.state("yunexpress")["labels"]) == 1


def test_planning_an_order_whose_address_is_gone_holds_it_naming_the_reason(world, monkeypatch):
    """Purged while held (by the rule for holds nobody settles), then released: planning holds it
    again, saying the address was purged -- not as an address Amazon sent incomplete, which a
    later poll would bring."""
    w = world({"sandbox": {"orders": 8}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        record = next(r for r in rt.ledger.orders([OrderState.NEW])
                      if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested)
        hold_order(rt.ledger, record.order_id, HoldReason.MANUAL.value, "waiting for stock")
        assert rt.ledger.purge_pii([record.order_id]) == 1
        release_order(rt.ledger, record.order_id)
        purged = rt.ledger.get_order(record.order_id)
        assert purged.state is OrderState.NEW and purged.order.ship_to is None

        assert plan(rt, purged) is Outcome.REST
        held = rt.ledger.get_order(record.order_id)
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.ADDRESS_PURGED.value
        assert "address was purged" in held.hold_message and rt.ledger.packages(record.order_id) == []
        assert drive(rt, record.order_id, lambda: False) is Outcome.REST  # held: nothing more, no loop
    finally:
        rt.close()
