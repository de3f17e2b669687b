"""A carrier that refuses a label after an earlier call whose outcome was unknown: the refusal may
be of a duplicate of the label that call bought, which the carrier's lookup does not show yet. The
claim is kept, and the lookup asked again, for ``engine.label_lookup_settle_minutes``; the paid
label is then recovered, never bought a second time under a new reference."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine import buy
from connector.engine.loop import step
from connector.holds import HoldReason
from connector.kit.carrier import PermanentCarrierError, TransientCarrierError
from connector.ledger import OrderState, PackageState
from connector.ledger.timestamps import to_text
from connector.model import utcnow

from ..e2e.helpers import ingest_all

pytestmark = pytest.mark.e2e


class BoughtThenTimedOut:
    """The first create buys the label and its answer is lost; every later create is refused as a
    plain error (this carrier does not say "duplicate"); the lookup by reference shows nothing
    until ``lookup_lags`` is cleared."""

    def __init__(self, carrier):
        self.carrier, self.creates, self.lookup_lags = carrier, 0, True

    def create_shipment(self, request):
        self.creates += 1
        if self.creates == 1:
            self.carrier.create_shipment(request)
            raise TransientCarrierError("read timed out")
        raise PermanentCarrierError("shipment refused: reference in use")

    def find_by_reference(self, reference):
        return None if self.lookup_lags else self.carrier.find_by_reference(reference)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def one_order_at_its_buy_step(world, settle_minutes: float):
    w = world({"sandbox": {"orders": 1}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []},
               "engine": {"carrier_attempts": 2, "label_lookup_settle_minutes": settle_minutes}})
    rt = w.runtime()
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        step(rt, record)
    record = rt.ledger.orders([OrderState.PLANNED])[0]
    carrier = rt.carriers["yunexpress"] = BoughtThenTimedOut(rt.carriers["yunexpress"])
    return w, rt, record.order_id, carrier


def test_a_refusal_after_an_unknown_outcome_keeps_the_claim_until_the_label_shows(world, monkeypatch):
    monkeypatch.setattr("connector.engine.buy.backoff", lambda attempt: None)
    w, rt, order_id, carrier = one_order_at_its_buy_step(world, settle_minutes=10)
    try:
        step(rt, rt.ledger.get_order(order_id))  # bought, answer lost, lookup empty, refused
        waiting = rt.ledger.get_order(order_id)
        package = rt.ledger.open_package(order_id)
        assert (waiting.state, package.state) == (OrderState.LABEL_CLAIMED, PackageState.LABEL_CLAIMED)
        assert waiting.attempts == 0 and waiting.next_attempt_at is not None  # a wait, not a failure
        assert "shows no label under" in rt.ledger.last_error(order_id)
        history = " ".join(t["note"] for t in rt.ledger.history(order_id))
        assert "set error" in history  # the lost answer is on the package's record

        carrier.lookup_lags = False  # the carrier's lookup catches up
        step(rt, rt.ledger.get_order(order_id))
        package = rt.ledger.open_package(order_id)
    finally:
        rt.close()
    assert package.state == PackageState.LABEL_CREATED and package.tracking_number
    assert carrier.creates == 2  # the refused second one bought nothing
    assert len(w.state("yunexpress")["labels"]) == 1


def test_the_claim_is_given_up_once_the_lookup_had_its_time(world, monkeypatch):
    monkeypatch.setattr("connector.engine.buy.backoff", lambda attempt: None)
    w, rt, order_id, carrier = one_order_at_its_buy_step(world, settle_minutes=0)
    try:
        step(rt, rt.ledger.get_order(order_id))
        held = rt.ledger.get_order(order_id)
        package = rt.ledger.packages(order_id)[-1]
    finally:
        rt.close()
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.CARRIER_REJECTED.value
    assert "no label under reference" in held.hold_message and package.idempotency_key in held.hold_message
    assert package.state == PackageState.FAILED


def test_a_first_call_refused_fails_at_once(world):
    w, rt, order_id, carrier = one_order_at_its_buy_step(world, settle_minutes=10)
    carrier.creates = 1  # the next create is refused, and nothing was called before it
    try:
        step(rt, rt.ledger.get_order(order_id))
        held = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.CARRIER_REJECTED.value
    assert "no label under reference" not in held.hold_message


class CutOffByACrash(BoughtThenTimedOut):
    """The label was bought by a create whose process was SIGKILLed before it stored the answer:
    the claim is an hour old, and this process only sees refusals and a lagging lookup."""

    def __init__(self, carrier):
        super().__init__(carrier)
        self.creates = 1


def test_after_a_crash_the_settle_time_counts_from_the_restart_not_the_old_claim(world, monkeypatch):
    w, rt, order_id, carrier = one_order_at_its_buy_step(world, settle_minutes=10)
    rt.carriers["yunexpress"] = carrier = CutOffByACrash(carrier.carrier)
    try:
        claimed = rt.ledger.advance(rt.ledger.open_package(order_id), PackageState.PLANNED,
                                    PackageState.LABEL_CLAIMED, order_state=OrderState.LABEL_CLAIMED)
        carrier.carrier.create_shipment(buy.build_request(rt, rt.ledger.get_order(order_id).order, claimed))
        with rt.ledger._write() as conn:  # claimed an hour ago, by the process that died
            conn.execute("UPDATE packages SET updated_at = ? WHERE id = ?",
                         (to_text(utcnow() - timedelta(hours=1)), claimed.id))
        monkeypatch.setattr(buy, "PROCESS_STARTED", utcnow())  # this process: the restart
        step(rt, rt.ledger.get_order(order_id))
        waiting = rt.ledger.get_order(order_id)
        package = rt.ledger.open_package(order_id)
    finally:
        rt.close()
    assert waiting.state == OrderState.LABEL_CLAIMED and waiting.attempts == 0  # waiting, not held
    assert package.state == PackageState.LABEL_CLAIMED
    assert len(w.state("yunexpress")["labels"]) == 1
