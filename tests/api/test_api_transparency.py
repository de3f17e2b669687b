"""PUT /v1/orders/{id}/transparency-codes: the ERP gives the codes scanned from an order's units;
an order held for them is released (connector/transparency.py)."""
from __future__ import annotations

import pytest

from connector.engine.loop import drive
from connector.holds import HoldReason
from connector.ledger import OrderState

from ..e2e.helpers import enrol_transparency_item, ingest_all

pytestmark = pytest.mark.usefixtures("daemon_clock")

AZ = [f"AZ{n:027d}" for n in range(1, 9)]


def _held_for_codes(a) -> tuple[str, str, int]:
    order_id, item_id, units = enrol_transparency_item(a.world)
    ingest_all(a.rt)
    drive(a.rt, order_id, lambda: False)
    held = a.rt.ledger.get_order(order_id)
    assert (held.state, held.hold_reason) == (OrderState.HELD, HoldReason.TRANSPARENCY_CODES_NEEDED.value)
    return order_id, item_id, units


def test_codes_given_release_the_order(api):
    a = api({"sandbox": {"orders": 30}})
    order_id, item_id, units = _held_for_codes(a)
    path = f"/v1/orders/{order_id}/transparency-codes"

    assert a.put(path, scope="read", json={"codes": {item_id: AZ[:units]}}).status_code == 403
    wrong = a.put(path, scope="operate", json={"codes": {item_id: AZ[:units + 1]}})
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["errors"][0]["field"] == "codes" and item_id in wrong.json()["errors"][0]["message"]
    nul = a.put(path, scope="operate", json={"codes": {item_id: ["AZ\u0000"] * units}})
    assert nul.status_code == 422, nul.text
    assert a.put(path, scope="operate", json={"codes": {}}).status_code == 422
    assert a.put(path, scope="operate", json={"codes": {item_id: AZ[:units]}, "x": 1}).status_code == 422
    assert a.put("/v1/orders/111-0000000-0000000/transparency-codes", scope="operate",
                 json={"codes": {item_id: AZ[:units]}}).status_code == 404
    assert a.rt.ledger.get_order(order_id).state is OrderState.HELD

    given = a.put(path, scope="operate", json={"codes": {item_id: AZ[:units]}})
    assert given.status_code == 200, given.text
    body = given.json()
    assert (body["action"], body["state"]) == ("codes", "LABELED")
    assert "released to LABELED" in body["detail"]
    assert a.rt.ledger.transparency_codes(order_id) == {item_id: tuple(AZ[:units])}
    detail = a.get(f"/v1/orders/{order_id}").json()
    assert detail["transparency_codes"] == {item_id: AZ[:units]}
    line = next(i for i in detail["order"]["items"] if i["order_item_id"] == item_id)
    assert line["programs"] == ["TRANSPARENCY"]
    history = detail["history"]
    note = f"Transparency codes given for order item(s) {item_id} ({units})"
    assert any(note in h["note"] for h in history)
