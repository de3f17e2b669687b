"""A carrier that refuses the configured credentials refuses every order alike: a person must hear
of it (an alert and an ERROR line), and the orders wait for the fix instead of being held one by
one as if no carrier could ship them -- or, with other carriers answering, shipping dearer with
nobody told."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from connector.engine.loop import step
from connector.engine.outcome import Outcome
from connector.engine.watch import ship_by_guard
from connector.ledger import ACTIVE_ORDER_STATES, OrderState, PackageState

from ..e2e.helpers import ingest_all

pytestmark = [pytest.mark.e2e]

ONLY_YUNEXPRESS = {"sandbox": {"orders": 4}, "routing": {"default": ["yunexpress:*"]},
                   "selection": {"overrides": []}, "engine": {"max_attempts": 2}}


def wrong_credentials(world, write_config, base: dict, carrier: str, setting: str):
    """The world of ``base`` run with ``carrier``'s ``setting`` wrong (its emulator expects the
    sandbox's), and the path of the right configuration (to fix it with)."""
    w = world(base)
    good = w.config_path
    w.config_path = write_config({**base, "carriers": {carrier: {setting: "wrong"}}})
    return w, good


def credential_alerts(rt) -> list:
    return [a for a in rt.ledger.alerts() if a.kind == "carrier_credentials_refused"]


def test_refused_credentials_alert_defer_the_orders_and_clear_once_fixed(world, write_config, caplog):
    w, good = wrong_credentials(world, write_config, ONLY_YUNEXPRESS, "yunexpress", "api_secret")
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


ONLY_DHL = {"sandbox": {"orders": 8}, "routing": {"default": ["dhl_ecommerce:*"]},
            "selection": {"overrides": []}, "engine": {"max_attempts": 2}}
PILED_UP = {"carrier_rejected", "label_uncertain", "retries_exhausted"}  # what a refusal held before


def _step_until_it_rests(rt, order_id: str, *, until: set[PackageState] = frozenset()) -> None:
    """Step the order, due or not, until a step stops short (or its package reaches ``until``)."""
    for _ in range(10):
        record = rt.ledger.get_order(order_id)
        package = rt.ledger.open_package(order_id)
        if record.state not in ACTIVE_ORDER_STATES or (package is not None and package.state in until):
            return
        if step(rt, record) is not Outcome.PROGRESS:
            return


def test_credentials_refused_at_purchase_give_the_claims_back_and_alert_once(world, write_config, caplog):
    """DHL eCommerce quotes from a rate card (no call), so wrong credentials show only when the
    label is bought: its token endpoint refuses them before any label request is sent."""
    w, good = wrong_credentials(world, write_config, ONLY_DHL, "dhl_ecommerce", "password")
    rt = w.runtime()
    try:
        ingest_all(rt)
        new = [r.order_id for r in rt.ledger.orders([OrderState.NEW])]
        with caplog.at_level(logging.INFO, logger="connector"):
            for _ in range(3):  # more than max_attempts: waiting for a person is no failed attempt
                for order_id in new:
                    _step_until_it_rests(rt, order_id)
        after = [rt.ledger.get_order(order_id) for order_id in new]
        piled = [(r.hold_reason, r.hold_message) for r in after if r.hold_reason in PILED_UP]
        assert not piled
        waiting = [r for r in after if r.state is OrderState.PLANNED]
        assert len(waiting) >= 3, [(r.state, r.hold_reason) for r in after]
        for record in waiting:
            assert record.attempts == 0 and record.next_attempt_at is not None
            (package,) = rt.ledger.packages(record.order_id)  # the claim given back: one reference
            assert package.state is PackageState.PLANNED
            assert "dhl_ecommerce: credentials refused" in rt.ledger.last_error(record.order_id)
        assert w.state("dhl_ecommerce")["labels"] == {}  # no label request got through
        (only,) = credential_alerts(rt)
        assert only.subject == "dhl_ecommerce" and "fix carriers.dhl_ecommerce" in only.message
        errors = [r for r in caplog.records
                  if r.levelno == logging.ERROR and "carrier dhl_ecommerce" in r.getMessage()]
        assert len(errors) == 1  # once, though every order's rate-card quote came between
        assert "wrong" not in caplog.text

        soon = max(r.order.ship_by for r in waiting) - timedelta(hours=1)
        ship_by_guard(rt, soon)  # the waiting orders are not forgotten
        near = {a.subject for a in rt.ledger.alerts() if a.kind == "ship_by_near"}
        assert {r.order_id for r in waiting} <= near
    finally:
        rt.close()

    w.config_path = good  # fixed and restarted: each waiting order is bought once, under its reference
    rt = w.runtime()
    try:
        for record in waiting:
            _step_until_it_rests(rt, record.order_id, until={PackageState.LABELED})
            (package,) = rt.ledger.packages(record.order_id)
            assert package.state is PackageState.LABELED
            assert credential_alerts(rt) == []  # the first label bought ended it
        labels = w.state("dhl_ecommerce")["labels"]
        assert len(labels) == len(waiting) and all(label["created"] == 1 for label in labels.values())
    finally:
        rt.close()


def test_a_credentials_refusal_quoting_the_address_leaves_it_out_of_the_alert_and_the_log(
        world, monkeypatch, caplog):
    """A carrier's refusal may quote the request it refused: the alert (kept in the ledger, sent
    to the hooks and webhooks) and its ERROR line get its words without the buyer's address, as
    the order's own retry error does."""
    from connector.kit.carrier import CredentialsRefusedError

    rt = world(ONLY_YUNEXPRESS).runtime()
    try:
        ingest_all(rt)
        record = next(r for r in rt.ledger.orders([OrderState.NEW])
                      if r.order.ship_to and r.order.ship_to.postal_code and r.order.ship_to.line1)
        address = record.order.ship_to

        def refuse(request):
            raise CredentialsRefusedError(f"401 token rejected for shipment to {address.line1}, "
                                          f"{address.postal_code}", carrier="yunexpress")

        monkeypatch.setattr(rt.carriers["yunexpress"], "quote", refuse)
        with caplog.at_level(logging.INFO, logger="connector"):
            step(rt, record)
        (only,) = credential_alerts(rt)
        assert "401 token rejected for shipment to ***, ***" in only.message
        seen = "\n".join([only.message, str(only.details), caplog.text,
                          *(str(e.data) for e in rt.ledger.events(limit=1000))])
        for value in (address.line1, address.postal_code):
            assert value not in seen, f"{value!r} leaked"
    finally:
        rt.close()
