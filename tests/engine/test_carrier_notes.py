"""What a carrier says about a label a person must act on (DHL eCommerce turning a pickup into a
drop-off) reaches the log as a warning on the order, not only the carrier's answer."""
from __future__ import annotations

import dataclasses
import logging

import pytest

from connector.engine.loop import step
from connector.ledger import OrderState

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e]


def test_a_carriers_note_on_the_label_is_a_warning_on_the_order(world, caplog):
    w = world({"sandbox": {"orders": 4}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        carrier = rt.carriers["yunexpress"]
        create = carrier.create_shipment
        note = "Handover Method has been updated to Drop-Off"
        carrier.create_shipment = lambda request: dataclasses.replace(create(request), notes=(note,))
        ingest_all(rt)
        with caplog.at_level(logging.INFO, logger="connector"):
            for _ in range(2):  # plan, then buy
                for record in rt.ledger.orders([OrderState.NEW, OrderState.PLANNED]):
                    step(rt, record)
        bought = [p for r in rt.ledger.orders() for p in rt.ledger.packages(r.order_id)
                  if p.carrier_shipment_id]
        assert bought
        warned = [r.getMessage() for r in caplog.records
                  if r.levelno == logging.WARNING and note in r.getMessage()]
        assert len(warned) == len(bought)
        assert warned[0].startswith("order ") and "yunexpress says about label" in warned[0]
    finally:
        rt.close()
