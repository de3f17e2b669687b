"""A carrier that refuses the configured credentials refuses every order alike: a person must hear
of it (an alert and an ERROR line), and the orders wait for the fix instead of being held one by
one as if no carrier could ship them -- or, with other carriers answering, shipping dearer with
nobody told."""
from __future__ import annotations

import logging

import pytest

from connector.engine.loop import step
from connector.ledger import OrderState

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e]

ONLY_YUNEXPRESS = {"sandbox": {"orders": 4}, "routing": {"default": ["yunexpress:*"]},
                   "selection": {"overrides": []}, "engine": {"max_attempts": 2}}


def credential_alerts(rt) -> list:
    return [a for a in rt.ledger.alerts() if a.kind == "carrier_credentials_refused"]


def test_refused_credentials_alert_defer_the_orders_and_clear_once_fixed(world, write_config, caplog):
    w = world(ONLY_YUNEXPRESS)  # the emulator expects the sandbox's secret
    good = w.config_path
    w.config_path = write_config({**ONLY_YUNEXPRESS, "carriers": {"yunexpress": {"api_secret": "wrong"}}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        new = rt.ledger.orders([OrderState.NEW])
        with caplog.at_level(logging.INFO, logger="connector"):
            for _ in range(3):  # more than max_attempts: waiting for a person is no failed attempt
                for record in rt.ledger.orders([OrderState.NEW]):
                    step(rt, record)
        after = [rt.ledger.get_order(r.order_id) for r in new]
        held = [r for r in after if r.state is OrderState.HELD and r.hold_reason != "buyer_cancel_requested"]
        assert not held, [(r.hold_reason, r.hold_message) for r in held]
        waiting = [r for r in after if r.state is OrderState.NEW]  # (the seed cancels a few on Amazon)
        assert waiting and all(r.attempts == 0 and r.next_attempt_at is not None for r in waiting)
        lines = [r.getMessage() for r in caplog.records]
        waits = [m for m in lines if m.startswith("order ") and " waits " in m]
        assert len(waits) == 3 * len(waiting)
        assert all("yunexpress: credentials refused: YunExpress rejected the" in m for m in waits)
        (only,) = credential_alerts(rt)
        assert only.subject == "yunexpress" and "fix carriers.yunexpress" in only.message
        errors = [r for r in caplog.records
                  if r.levelno == logging.ERROR and "carrier yunexpress" in r.getMessage()]
        assert len(errors) == 1  # once a run, not once per order
        assert "wrong" not in caplog.text  # the secret itself is never shown
    finally:
        rt.close()

    w.config_path = good  # fixed and restarted: the next answer clears the alert left open
    rt = w.runtime()
    try:
        record = rt.ledger.get_order(waiting[0].order_id)
        step(rt, record)
        assert rt.ledger.get_order(record.order_id).state is OrderState.PLANNED
        assert credential_alerts(rt) == []
    finally:
        rt.close()
