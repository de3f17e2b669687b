"""An order Amazon cancels after a confirmation it answered 204 to but never showed: its label is
voided at the carrier, exactly once, whether the order was held for that confirmation or was
still being read back. (Amazon does not cancel an order it shows shipped, so the label is unused.)"""
from __future__ import annotations

import pytest

from connector.engine.loop import drive, step
from connector.engine.purge import purge_expired_pii
from connector.holds import HoldReason
from connector.ledger import OrderState, PackageState
from connector.model import FulfillmentStatus

from ..e2e.helpers import ingest_all
from .test_label_claim_recovery import amazon_cancels

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def dropping_world(world, *, verify_attempts: int):
    """Every confirmation answered 204 and dropped; labels from YunExpress (voidable)."""
    return world({"sandbox": {"orders": 8, "emulators": {"spapi": {"silent_drop_rate": 1.0}}},
                  "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []},
                  "engine": {"verify_attempts": verify_attempts, "verify_grace_seconds": 0}})


def one_confirmed(rt) -> str:
    """An order planned and driven until its confirmation is accepted (and dropped)."""
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        step(rt, record)
    return next(r.order_id for r in rt.ledger.orders([OrderState.PLANNED])
                if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested)


def voided_once(w, rt, order_id: str) -> None:
    (package,) = rt.ledger.packages(order_id)
    assert rt.ledger.get_order(order_id).state is OrderState.VOIDED
    assert package.state is PackageState.VOIDED and package.voided_from == PackageState.CONFIRMED.value
    parcel = w.state("yunexpress")["parcels"][package.tracking_number]
    assert parcel.get("cancelled_at"), "the label is still live at the carrier"


def test_held_for_a_confirmation_never_shown_then_cancelled_the_label_is_voided(world):
    w = dropping_world(world, verify_attempts=2)
    rt = w.runtime()
    try:
        order_id = one_confirmed(rt)
        for _ in range(30):  # sent, read back, sent again, read back: held
            if rt.ledger.get_order(order_id).state is OrderState.HELD:
                break
            drive(rt, order_id, lambda: False)
        held = rt.ledger.get_order(order_id)
        assert (held.hold_reason, held.held_from) == (HoldReason.CONFIRMATION_NOT_VISIBLE.value,
                                                      OrderState.CONFIRMED)
        amazon_cancels(w, order_id)
        ingest_all(rt)  # the poll sees the cancellation and releases it to be settled
        assert rt.ledger.get_order(order_id).state is OrderState.CONFIRMED
        drive(rt, order_id, lambda: False)
        voided_once(w, rt, order_id)
        purge_expired_pii(rt)
        drive(rt, order_id, lambda: False)  # nothing more to do
        voided_once(w, rt, order_id)
    finally:
        rt.close()


def test_cancelled_while_being_read_back_the_label_is_voided_not_confirmed_again(world):
    w = dropping_world(world, verify_attempts=5)
    rt = w.runtime()
    try:
        order_id = one_confirmed(rt)
        for _ in range(10):
            if rt.ledger.get_order(order_id).state is OrderState.CONFIRMED:
                break
            drive(rt, order_id, lambda: False, max_steps=1)
        assert rt.ledger.get_order(order_id).state is OrderState.CONFIRMED
        sent = w.state("spapi")["silent_drops"]
        assert sent >= 1
        amazon_cancels(w, order_id)
        ingest_all(rt)
        drive(rt, order_id, lambda: False)
        voided_once(w, rt, order_id)
        assert w.state("spapi")["silent_drops"] == sent  # no confirmation sent again
    finally:
        rt.close()
