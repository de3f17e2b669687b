"""An order polled before its account was handed to the ERP is held ``owned_by_erp``; the
documented way out is the ERP's own submission, which takes the held order over."""
from __future__ import annotations

from dataclasses import replace

import pytest

from connector.engine.ingest import ingest_account
from connector.engine.loop import Engine, drive
from connector.ledger import OrderState, PackageState

from .test_api_shipments import _sample

pytestmark = [pytest.mark.e2e]


def test_the_erps_confirmation_takes_over_an_order_held_for_it(api):
    a = api()
    ingest_account(a.rt, a.rt.config.account("demo-na"))  # polled while the connector owned it
    a.rt.config.accounts = tuple(replace(acc, orders_owner="erp") if acc.name == "demo-na" else acc
                                 for acc in a.rt.config.accounts)
    polled = [r for r in a.rt.ledger.orders([OrderState.NEW]) if r.order.account == "demo-na"]
    for record in polled:
        drive(a.rt, record.order_id, lambda: False)
    held, other = (a.rt.ledger.get_order(r.order_id) for r in polled[:2])
    assert held.hold_reason == other.hold_reason == "owned_by_erp"
    order = held.order
    tracking = _sample(a.rt.carrier_specs["yanwen"].tracking_number_pattern)
    body = {"idempotency_key": "takeover-1", "order_id": order.order_id, "site": order.site,
            "account": "demo-na", "carrier": "yanwen", "tracking_number": tracking,
            "items": [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in order.items]}
    r = a.post("/v1/confirmations", scope="operate", json=body)
    assert r.status_code == 201, r.text
    assert a.post("/v1/confirmations", scope="operate", json=body).status_code == 200  # a repeat
    taken = a.rt.ledger.get_order(order.order_id)
    assert taken.state is OrderState.LABELED and taken.order.origin == "erp"
    assert [p.tracking_number for p in a.rt.ledger.packages(order.order_id)] == [tracking]
    assert "taken over by the ERP" in " ".join(t["note"] for t in a.rt.ledger.history(order.order_id))
    Engine(a.rt).run_until_quiet()
    assert a.rt.ledger.get_order(order.order_id).state is OrderState.VERIFIED
    assert a.rt.ledger.packages(order.order_id)[0].state is PackageState.VERIFIED
    assert a.rt.ledger.get_order(other.order_id).hold_reason == "owned_by_erp"  # the rest wait for theirs


def test_an_order_the_connector_already_works_on_is_not_taken_over(api):
    a = api()
    ingest_account(a.rt, a.rt.config.account("demo-na"))
    record = next(r for r in a.rt.ledger.orders([OrderState.NEW]) if r.order.account == "demo-na")
    a.rt.ledger.hold(record.order_id, "manual", "checking stock")  # held, but not for the ERP
    body = {"idempotency_key": "takeover-2", "order_id": record.order_id, "site": record.order.site,
            "account": "demo-na", "carrier": "yanwen",
            "tracking_number": _sample(a.rt.carrier_specs["yanwen"].tracking_number_pattern),
            "items": [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in record.order.items]}
    a.rt.config.accounts = tuple(replace(acc, orders_owner="erp") if acc.name == "demo-na" else acc
                                 for acc in a.rt.config.accounts)
    r = a.post("/v1/confirmations", scope="operate", json=body)
    assert r.status_code == 409 and "already in the ledger" in r.json()["detail"], r.text


def test_an_order_whose_buyer_data_was_purged_is_not_taken_over(api):
    """The purge is final: a new address stored for such an order would never be purged."""
    a = api()
    ingest_account(a.rt, a.rt.config.account("demo-na"))
    a.rt.config.accounts = tuple(replace(acc, orders_owner="erp") if acc.name == "demo-na" else acc
                                 for acc in a.rt.config.accounts)
    record = next(r for r in a.rt.ledger.orders([OrderState.NEW]) if r.order.account == "demo-na")
    drive(a.rt, record.order_id, lambda: False)
    assert a.rt.ledger.get_order(record.order_id).hold_reason == "owned_by_erp"
    a.rt.ledger.purge_pii([record.order_id])  # abandoned past its retention
    body = {"idempotency_key": "takeover-3", "order_id": record.order_id, "site": record.order.site,
            "account": "demo-na", "carrier": "yanwen",
            "tracking_number": _sample(a.rt.carrier_specs["yanwen"].tracking_number_pattern),
            "items": [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in record.order.items]}
    r = a.post("/v1/confirmations", scope="operate", json=body)
    assert r.status_code == 409, r.text
    assert a.rt.ledger.get_order(record.order_id).order.ship_to is None  # nothing stored again
