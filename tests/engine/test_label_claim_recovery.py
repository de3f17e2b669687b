"""A carrier that refuses a label: the first create of a claim refused gives the claim up (nothing
can exist under its reference); a refusal after a call whose answer was lost also gives it up, as
the same request was refused, but the hold warns the operator to check the carrier for a label
under the reference first, since a carrier may refuse a taken reference with a plain error."""
from __future__ import annotations

import pytest

from connector.engine.loop import step
from connector.holds import HoldReason
from connector.kit.carrier import PermanentCarrierError, TransientCarrierError
from connector.ledger import OrderState, PackageState

from ..e2e.helpers import ingest_all

pytestmark = pytest.mark.e2e

WARNING = "an earlier call for this label lost its answer"


class Refusing:
    """Every create after the first ``lost`` ones is refused; those are bought and their answer
    lost (``lost=0``: the first create is refused); the lookup by reference lags: it shows
    nothing."""

    def __init__(self, carrier, lost: int):
        self.carrier, self.lost, self.creates = carrier, lost, 0

    def create_shipment(self, request):
        self.creates += 1
        if self.creates <= self.lost:
            self.carrier.create_shipment(request)
            raise TransientCarrierError("read timed out")
        raise PermanentCarrierError("shipment refused: postcode not served")

    def find_by_reference(self, reference):
        return None

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def refused_once_planned(world, monkeypatch, lost: int):
    monkeypatch.setattr("connector.engine.buy.backoff", lambda attempt: None)
    w = world({"sandbox": {"orders": 1}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}, "engine": {"carrier_attempts": 2}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            step(rt, record)
        order_id = rt.ledger.orders([OrderState.PLANNED])[0].order_id
        rt.carriers["yunexpress"] = Refusing(rt.carriers["yunexpress"], lost)
        step(rt, rt.ledger.get_order(order_id))
        return w, rt.ledger.get_order(order_id), rt.ledger.packages(order_id)[-1]
    finally:
        rt.close()


def test_a_first_create_refused_gives_the_claim_up_without_a_warning(world, monkeypatch):
    _w, held, package = refused_once_planned(world, monkeypatch, lost=0)
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.CARRIER_REJECTED.value
    assert "postcode not served" in held.hold_message and WARNING not in held.hold_message
    assert package.state == PackageState.FAILED


def test_a_refusal_after_a_lost_answer_warns_to_check_the_reference_at_the_carrier(world, monkeypatch):
    w, held, package = refused_once_planned(world, monkeypatch, lost=1)
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.CARRIER_REJECTED.value
    assert WARNING in held.hold_message and f"a label under {package.idempotency_key}" in held.hold_message
    assert len(w.state("yunexpress")["labels"]) == 1  # what the warning is for: a label may exist
