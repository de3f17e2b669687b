"""An order nobody ships that is not held -- NEW or PLANNED for ever, say deferred for carrier
credentials nobody fixes -- must not keep its buyer's address for good: past the clock of the rule
for holds nobody settles (ship-by + max transit + the retention) it is held ``address_purged`` and
its address erased together, and the daemon never plans or buys for it afterwards. A label claim
in flight or a label bought and not confirmed keeps the address. Runs on both ledger stores
(tests/conftest.py, BOTH_STORES)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.buy import buy
from connector.engine.loop import drive, step
from connector.engine.outcome import Outcome
from connector.engine.purge import purge_expired_pii
from connector.engine.steer import release_order
from connector.holds import HoldReason
from connector.ledger import OrderState, PackageState, StaleStateError
from connector.model import FulfillmentStatus

from ..e2e.helpers import ingest_all
from .test_label_claim_recovery import planned_with_yunexpress

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

PURGED = HoldReason.ADDRESS_PURGED.value
ONLY_YUNEXPRESS = {"sandbox": {"orders": 4}, "routing": {"default": ["yunexpress:*"]},
                   "selection": {"overrides": []}, "engine": {"max_attempts": 2}}


def due(rt, *records):
    """When the purge's clock says these orders' addresses go: the latest ship-by + max transit +
    the retention."""
    settings = rt.config.ledger
    assert all(r.order.ship_by for r in records)
    return max(r.order.ship_by for r in records) + timedelta(days=settings.max_transit_days
                                                              + settings.pii_retention_days)


def never(*_args) -> bool:
    return False


def test_an_order_deferred_in_new_past_the_retention_is_held_and_its_address_erased(world, write_config):
    w = world(ONLY_YUNEXPRESS)  # the emulator expects the sandbox's secret: this one is refused
    w.config_path = write_config({**ONLY_YUNEXPRESS, "carriers": {"yunexpress": {"api_secret": "wrong"}}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            step(rt, record)  # waits for the credentials' fix, for as long as it takes
        record = next(r for r in rt.ledger.orders([OrderState.NEW]) if r.next_attempt_at is not None)
        order_id, address = record.order_id, record.order.ship_to
        assert address is not None

        purge_expired_pii(rt, now=due(rt, record) - timedelta(hours=1))
        kept = rt.ledger.get_order(order_id)
        assert kept.state is OrderState.NEW and kept.order.ship_to == address and not kept.pii_purged

        purge_expired_pii(rt, now=due(rt, record) + timedelta(hours=1))
        held = rt.ledger.get_order(order_id)
        assert held.state is OrderState.HELD and held.hold_reason == PURGED
        assert held.held_from is OrderState.NEW and held.pii_purged and held.order.ship_to is None
        assert f"order {order_id}: nobody shipped it" in held.hold_message
        assert "ledger.pii_retention_days (30)" in held.hold_message and "Seller Central" in held.hold_message
        assert address.name not in held.hold_message and address.postal_code not in held.hold_message
        (event,) = [e for e in rt.ledger.events(order_id=order_id) if e.type == "order.held"]
        assert event.data["reason"] == PURGED and event.data["previous_state"] == "NEW"
        assert sum(h["note"] == "pii purged" for h in rt.ledger.history(order_id)) == 1

        # the engine never plans or buys for it afterwards
        assert drive(rt, order_id, never) is Outcome.REST
        assert rt.ledger.get_order(order_id).hold_message == held.hold_message
        purge_expired_pii(rt, now=due(rt, record) + timedelta(days=1))  # idempotent
        assert sum(h["note"] == "pii purged" for h in rt.ledger.history(order_id)) == 1

        # released anyway: planning holds it again, naming the reason (no quote asked, no loop)
        release_order(rt.ledger, order_id)
        assert drive(rt, order_id, never) is Outcome.REST
        again = rt.ledger.get_order(order_id)
        assert again.state is OrderState.HELD and again.hold_reason == PURGED
        assert "address was purged" in again.hold_message and rt.ledger.packages(order_id) == []
    finally:
        rt.close()


def test_a_labelled_order_and_a_claim_in_flight_keep_their_address_past_the_retention(world, monkeypatch):
    w, rt, _ = planned_with_yunexpress(world, monkeypatch, carrier_attempts=1)
    try:
        ready = [r for r in rt.ledger.orders([OrderState.PLANNED])
                 if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested]
        labelled, claimed, waiting = (r.order_id for r in ready[:3])
        drive(rt, labelled, never, states=[OrderState.PLANNED, OrderState.LABEL_CLAIMED])
        assert rt.ledger.get_order(labelled).state is OrderState.LABELED  # bought, not confirmed yet
        rt.ledger.advance(rt.ledger.open_package(claimed), PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                          order_state=OrderState.LABEL_CLAIMED)  # its call to the carrier in flight
        # a buy step of the third read it (and its plan) just before the purge ran
        stale, stale_package = rt.ledger.get_order(waiting), rt.ledger.open_package(waiting)
        labels = dict(w.state("yunexpress")["labels"])

        purge_expired_pii(rt, now=due(rt, *ready[:3]) + timedelta(hours=1))

        for order_id, state in ((labelled, OrderState.LABELED), (claimed, OrderState.LABEL_CLAIMED)):
            record = rt.ledger.get_order(order_id)
            assert record.state is state and record.order.ship_to is not None and not record.pii_purged
        held = rt.ledger.get_order(waiting)
        assert held.state is OrderState.HELD and held.hold_reason == PURGED and held.order.ship_to is None
        assert [p.state for p in rt.ledger.packages(waiting)] == [PackageState.FAILED]  # the plan given up
        with pytest.raises(StaleStateError):  # the step in flight claims nothing (drive: REST)
            buy(rt, stale, stale_package)
        assert w.state("yunexpress")["labels"] == labels  # nothing bought for it
        assert rt.ledger.get_order(waiting).hold_reason == PURGED
    finally:
        rt.close()


def test_a_step_working_on_the_order_keeps_it_for_the_next_sweep(world, monkeypatch):
    _w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=1)
    try:
        record = rt.ledger.get_order(order_id)
        with rt.driving(order_id) as mine:  # a worker is stepping it now
            assert mine
            purge_expired_pii(rt, now=due(rt, record) + timedelta(hours=1))
            assert rt.ledger.get_order(order_id).state is OrderState.PLANNED
        purge_expired_pii(rt, now=due(rt, record) + timedelta(hours=2))
        assert rt.ledger.get_order(order_id).hold_reason == PURGED
    finally:
        rt.close()


def test_a_held_order_released_between_the_selection_and_the_erasure_keeps_its_address(world, monkeypatch):
    """The purge selects the held orders whose hold nobody settled, then erases them. An operator's
    release committed in between (the order back to LABELED: its label bought, to be shipped now)
    must not lose the address and the label: the rule, asked again, keeps a label bought and not
    confirmed."""
    _, rt, _ = planned_with_yunexpress(world, monkeypatch, carrier_attempts=1)
    try:
        record = next(r for r in rt.ledger.orders([OrderState.PLANNED])
                      if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested)
        order_id, address = record.order_id, record.order.ship_to
        drive(rt, order_id, never, states=[OrderState.PLANNED, OrderState.LABEL_CLAIMED])
        assert rt.ledger.get_order(order_id).state is OrderState.LABELED  # bought, not confirmed yet
        (package,) = rt.ledger.packages(order_id)
        rt.ledger.hold(order_id, HoldReason.MANUAL.value, "the packing station is closed")
        selected = rt.ledger.pii_expired

        def released_meanwhile(**rule):
            due_now = selected(**rule)
            release_order(rt.ledger, order_id)  # committed before the erasure's transaction
            return due_now

        monkeypatch.setattr(rt.ledger, "pii_expired", released_meanwhile)
        purge_expired_pii(rt, now=due(rt, record) + timedelta(hours=1))

        kept = rt.ledger.get_order(order_id)
        assert kept.state is OrderState.LABELED
        assert not kept.pii_purged and kept.order.ship_to == address
        (label,) = rt.ledger.packages(order_id)
        assert label.label_erased_at is None and label.label_path == package.label_path
    finally:
        rt.close()
