"""Text the ledger cannot take -- a NUL (JSON and a URL's %00 allow it, PostgreSQL's text refuses it)
or a lone surrogate (JSON's "\\ud83d", half an emoji cut by an ERP's truncation; UTF-8 cannot hold
it) -- in a query parameter, a cursor or a body is a problem naming the field, never a 500, on
either store."""
from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.e2e

BOTH = pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)


def cursor(*position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


@BOTH
@pytest.mark.parametrize(("path", "field"), [
    ("/v1/orders?site=U%00S", "site"),
    ("/v1/orders?account=demo%00", "account"),
    ("/v1/packages?carrier=%00", "carrier"),
    ("/v1/packages?order_id=111%00", "order_id"),
    ("/v1/events?order_id=111%00", "order_id"),
    ("/v1/labels?carrier=yanwen%00", "carrier"),
    ("/v1/labels?order_id=%00", "order_id"),
    ("/v1/handovers?carrier=%00", "carrier"),
    ("/v1/items?cursor=MUG%00", "cursor"),
    ("/v1/orders?cursor=" + cursor("orders", "2026-12-01T00:00:00Z", "111\u0000"), "cursor"),
    ("/v1/orders?cursor=" + cursor("orders", "2026-12-01T00:00:00Z", "\ud800"), "cursor"),
])
def test_a_query_parameter_the_ledger_cannot_take_is_a_problem_naming_it(api, ledger_backend, path, field):
    a = api()
    r = a.get(path, scope="read")
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


@BOTH
def test_the_token_is_checked_before_the_query(api, ledger_backend):
    a = api()
    assert a.client.get("/v1/orders?site=%00").status_code == 401
    assert a.get("/v1/orders?site=%00", scope="pii").status_code == 403


@BOTH
def test_a_status_page_notice_the_ledger_cannot_look_up_is_left_out(api, ledger_backend):
    a = api()
    r = a.get("/status?released=111%00", scope="read")
    assert r.status_code == 200 and "released;" not in r.text


@BOTH
def test_body_text_the_ledger_cannot_take_is_a_problem_naming_its_field(api, ledger_backend):
    """A hold's message is stored as it is; a shipment's SKU and a print's order ids are looked up:
    a NUL in one of them failed the request with a 500 on PostgreSQL."""
    from .test_api_shipments import other_channel

    a = api()
    a.run_daemon()
    order_id = a.rt.ledger.order_page(limit=1)[0][0].order_id
    checks = [
        (a.post(f"/v1/orders/{order_id}/hold", scope="operate", json={"message": "call the\u0000buyer"}),
         "message"),
        (a.post("/v1/shipments", scope="operate",
                json=other_channel("nul-sku", items=[{"sku": "PHONE-CASE-01\u0000", "quantity": 1}])),
         "items.0.sku"),
        (a.post("/v1/labels/print", scope="operate+pii", json={"order_ids": [order_id, "111\u0000"]}),
         "order_ids.1"),
        (a.post("/v1/confirmations", scope="operate", json={
            "idempotency_key": "nul-tracking", "order_id": "111-0000001-0000001", "account": "demo-na",
            "site": "US", "carrier": "yanwen", "tracking_number": "UG123456789YW\u0000",
            "items": [{"order_item_id": "1", "quantity": 1}]}), "tracking_number"),
    ]
    for r, field in checks:
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert a.rt.ledger.get_order(order_id).hold_message != "call the\u0000buyer"
    assert a.rt.ledger.submission("nul-sku") is None
