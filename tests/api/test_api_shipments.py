"""Provider mode and confirm-only, end to end against the sandbox: an ERP's shipment buys one
label per idempotency key (repeated, and across a SIGKILL between the carrier's answer and the
commit), an ERP-owned Amazon order is confirmed only when the ERP asks, and a label bought
elsewhere is checked, confirmed and verified."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connector.amazon.mapping import order_from_api
from connector.engine.crashpoints import ENV as CRASH_ENV
from connector.ledger import OrderState
from connector.model import utcnow

from ..e2e.helpers import ledger_of, run_cli

pytestmark = [pytest.mark.e2e]

def _erp_owns(name: str) -> dict[str, Any]:
    """Config overrides: the sandbox's accounts, ``name``'s orders owned by the ERP."""
    accounts = yaml.safe_load((Path(__file__).parents[2] / "config" / "sandbox.yaml").read_text())["accounts"]
    return {"accounts": [{**a, "orders_owner": "erp"} if a["name"] == name else a for a in accounts]}


ERP_OWNS_NA = {**_erp_owns("demo-na"), "sandbox": {"orders": 12}}
ADDRESS = {"name": "Test Buyer", "line1": "1 Main St", "city": "Seattle", "state": "WA",
           "postal_code": "98101", "country_code": "US"}


def other_channel(key: str, order_id: str = "SO-1001", **changes: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "channel": "shopify", "order_id": order_id, "site": "US",
            "ship_to": ADDRESS, "items": [{"sku": "PHONE-CASE-01", "quantity": 2}], **changes}


def labels_for(world, reference: str) -> list[dict]:
    """The labels every carrier emulator issued under ``reference``."""
    found = []
    for name in world.sandbox.servers:
        found += [label for ref, label in world.state(name).get("labels", {}).items() if ref == reference]
    return found


def erp_pulls(a, account: str = "demo-na"):
    """The ERP's own poll of an account it owns: Amazon's unshipped orders that can ship, mapped."""
    sites = a.rt.config.account(account).marketplaces
    raw = a.rt.amazon[account].search_orders(marketplace_ids=[a.rt.sites[s].marketplace_id for s in sites],
                                             created_after=utcnow() - timedelta(days=30))
    orders = [order_from_api(o, account=account, sites=a.rt.sites) for o in raw]
    return [o for o in orders
            if o.status.value == "UNSHIPPED" and o.ship_to and not o.ship_to.missing_fields()
            and not o.buyer_cancel_requested and all(a.rt.catalog.get(i.sku) for i in o.items)]


def amazon_body(order, key: str, confirm: bool) -> dict[str, Any]:
    return {"idempotency_key": key, "channel": "amazon", "order_id": order.order_id, "site": order.site,
            "account": order.account, "confirm": confirm,
            "ship_to": {k: v for k, v in order.ship_to.to_dict().items() if k in ADDRESS or k in (
                "line2", "phone", "district", "company")},
            "items": [{"sku": i.sku, "quantity": i.quantity, "order_item_id": i.order_item_id}
                      for i in order.items if i.quantity > 0],
            **({"total": order.total.to_dict()} if order.total else {})}


def test_the_same_shipment_twice_buys_one_label(api):
    a = api()
    first = a.post("/v1/shipments", scope="operate", json=other_channel("erp-key-1"))
    assert first.status_code == 201, first.text
    out = first.json()
    assert out["state"] == "LABELED" and out["package"]["tracking_number"]
    assert out["package"]["label_url"] == f"/v1/packages/{out['package']['id']}/label"
    again = a.post("/v1/shipments", scope="operate", json=other_channel("erp-key-1"))
    assert again.status_code == 200 and again.json()["package"] == out["package"]
    reference = a.rt.ledger.packages(out["order_id"])[0].idempotency_key
    assert [label["created"] for label in labels_for(a.world, reference)] == [1]
    assert a.get("/v1/shipments/erp-key-1", scope="read").json()["order_id"] == "shopify-SO-1001"


def test_a_carriers_refusal_quoting_the_address_reaches_no_one_with_it(api, caplog):
    """Yanwen refuses a malformed US ZIP and quotes it back; the buyer's postcode, street and
    name must not reach the hold message, the events, the orders list, the package's error or
    the log."""
    address = {**ADDRESS, "postal_code": "9810 1", "line1": "77 Quotable Lane"}
    a = api({"routing": {"sites": {"US": ["yanwen:*"]}}})
    answer = a.post("/v1/shipments", scope="operate", json=other_channel("erp-zip", ship_to=address))
    assert answer.status_code in (200, 201), answer.text
    held = answer.json()["hold"]
    assert held["reason"] == "carrier_rejected" and "zip" in held["message"].lower()
    assert "***" in held["message"]
    seen = "\n".join([answer.text, a.get("/v1/events", scope="read").text,
                      a.get("/v1/orders?state=HELD", scope="read").text, caplog.text,
                      *(p.error or "" for p in a.rt.ledger.packages(answer.json()["order_id"]))])
    for value in ("9810 1", "98101", "77 Quotable Lane", "Test Buyer"):
        assert value not in seen, f"{value!r} leaked"


def test_a_ship_by_is_kept_with_its_zone_and_without_one_is_utc(api):
    a = api()
    soon = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    zoned = a.post("/v1/shipments", scope="operate",
                   json=other_channel("sb-1", "SO-2001", ship_by=soon.isoformat().replace("+00:00", "Z")))
    assert zoned.status_code == 201, zoned.text
    naive = a.post("/v1/shipments", scope="operate",
                   json=other_channel("sb-2", "SO-2002", ship_by=soon.replace(tzinfo=None).isoformat()))
    assert naive.status_code == 201, naive.text
    for order_id in ("shopify-SO-2001", "shopify-SO-2002"):
        assert a.rt.ledger.get_order(order_id).order.ship_by == soon


@pytest.mark.parametrize("key", [".", ".."])
def test_a_key_that_cannot_be_read_back_is_refused(api, key):
    """/v1/shipments/.. is /v1/ to every HTTP client (dot segments are removed from a URL), so a
    shipment under the key '..' was bought but could never be read back by its key."""
    a = api()
    confirmation = {"idempotency_key": key, "order_id": "111-4006819-6574715", "site": "US",
                    "account": "demo-na", "carrier": "yanwen", "tracking_number": "UG123456789YW",
                    "items": [{"order_item_id": "1", "quantity": 1}]}
    for path, body in (("/v1/shipments", other_channel(key)), ("/v1/confirmations", confirmation)):
        r = a.post(path, scope="operate", json=body)
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["idempotency_key"], r.text
    assert a.rt.ledger.submission(key) is None
    assert a.rt.ledger.orders() == []


def test_keys_with_dots_or_colons_are_taken_and_read_back(api):
    a = api()
    for n, key in enumerate(("...", ".a", "a..b", "..:", "erp:1.0")):
        r = a.post("/v1/shipments", scope="operate", json=other_channel(key, order_id=f"SO-{n}"))
        assert r.status_code == 201, r.text
        assert a.get(r.headers["location"], scope="read").json()["order_id"] == f"shopify-SO-{n}"
    slash = a.post("/v1/shipments", scope="operate", json=other_channel("a/b", order_id="SO-9"))
    assert slash.status_code == 422 and slash.json()["errors"][0]["field"] == "idempotency_key"


def test_a_key_reused_for_another_request_is_a_conflict(api):
    a = api()
    assert a.post("/v1/shipments", scope="operate", json=other_channel("k-2")).status_code == 201
    changed = other_channel("k-2", items=[{"sku": "PHONE-CASE-01", "quantity": 3}])
    r = a.post("/v1/shipments", scope="operate", json=changed)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "idempotency_key"
    other_key = a.post("/v1/shipments", scope="operate", json=other_channel("k-3"))  # same order, new key
    assert other_key.status_code == 409 and other_key.json()["errors"][0]["field"] == "order_id"


@pytest.mark.parametrize(("change", "field"), [
    ({"items": [{"sku": "NO-SUCH-SKU", "quantity": 1}]}, "items.0.sku"),
    ({"site": "ZZ"}, "site"),
    ({"confirm": True}, "confirm"),
    ({"account": "nobody"}, "account"),
    ({"ship_to": {**ADDRESS, "city": ""}}, "ship_to.city"),
    ({"ship_to": {**ADDRESS, "name": "   "}}, "ship_to.name"),  # spaces name nobody: not address_incomplete
    ({"ship_to": {**ADDRESS, "line1": "\t "}}, "ship_to.line1"),
    ({"ship_to": {**ADDRESS, "city": "\u3000"}}, "ship_to.city"),  # an ideographic space
    ({"channel": "shop-a", "order_id": "1"}, "channel"),  # would be shop-a-1, as shop's order a-1
    ({"channel": "111", "order_id": "4006819-7777777"}, "channel"),  # would look like an Amazon id
    ({"ship_by": "9999-12-31T00:00:00Z"}, "ship_by"),
    # no currency at all: the order was recorded, then held asking for an exchange rate for ZZZ
    ({"total": {"amount": "10", "currency": "ZZZ"}}, "total.currency"),
    ({"items": [{"sku": "PHONE-CASE-01", "quantity": 1, "unit_price": {"amount": "5", "currency": "XXX"}}]},
     "items.0.unit_price.currency"),
    # one order item id for two items: the parcel would be built with the last one's quantity for both
    ({"items": [{"sku": "PHONE-CASE-01", "quantity": 1, "order_item_id": "A"},
                {"sku": "LED-STRIP-5M", "quantity": 3, "order_item_id": "A"}]}, "items.1.order_item_id"),
    ({"items": [{"sku": "PHONE-CASE-01", "quantity": 1},  # numbered "1" by its place
                {"sku": "LED-STRIP-5M", "quantity": 3, "order_item_id": "1"}]}, "items.1.order_item_id"),
])
def test_a_bad_shipment_names_its_field_and_records_nothing(api, change, field):
    a = api()
    r = a.post("/v1/shipments", scope="operate", json=other_channel("bad-1", **change))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]
    assert a.rt.ledger.submission("bad-1") is None


def test_an_amazon_order_of_an_account_the_connector_owns_is_refused(api):
    a = api()
    (order, *_) = erp_pulls(a)
    r = a.post("/v1/shipments", scope="operate", json=amazon_body(order, "owned-1", confirm=False))
    assert r.status_code == 409 and "orders_owner" in r.json()["detail"]


def test_erp_owned_orders_are_never_confirmed_by_the_daemon_unless_asked(api):
    a = api(ERP_OWNS_NA)
    unconfirmed, confirmed = erp_pulls(a)[:2]
    assert a.post("/v1/shipments", scope="operate",
                  json=amazon_body(unconfirmed, "na-1", confirm=False)).status_code == 201
    r = a.post("/v1/shipments", scope="operate", json=amazon_body(confirmed, "na-2", confirm=True))
    assert r.status_code == 201, r.text
    a.run_daemon()
    spapi = a.world.state("spapi")
    assert unconfirmed.order_id not in spapi["confirmations"]
    assert a.rt.ledger.get_order(unconfirmed.order_id).state == OrderState.ISSUED
    issued = a.rt.ledger.packages(unconfirmed.order_id)[0]  # and its parcel is followed
    followed = a.rt.ledger.packages_to_track(due_before=utcnow() + timedelta(days=1),
                                             shipped_after=utcnow() - timedelta(days=1))
    assert issued.id in {p.id for p in followed}
    record = a.rt.ledger.get_order(confirmed.order_id)
    assert record.state == OrderState.VERIFIED, (record.state, record.hold_message)
    package = a.rt.ledger.packages(confirmed.order_id)[0]
    if package.carrier != "amazon_shipping":
        assert [c["accepted"] for c in spapi["confirmations"][confirmed.order_id].values()] == [1]
    # the daemon polled nothing of demo-na: only the two the ERP sent are in the ledger
    assert {r.order_id for r in a.rt.ledger.orders() if r.order.account == "demo-na"} == {
        unconfirmed.order_id, confirmed.order_id}


def test_an_amazon_shipment_to_confirm_needs_every_items_order_item_id(api):
    """Amazon's confirmation names each item by its order item id: without one the label would be
    bought and the confirmation refused, so the request is refused first, naming the item."""
    a = api(ERP_OWNS_NA)
    (order, *_) = erp_pulls(a)
    body = amazon_body(order, "oii-1", confirm=True)
    for missing in ({k: v for k, v in body["items"][0].items() if k != "order_item_id"},
                    {**body["items"][0], "order_item_id": "  "}):
        r = a.post("/v1/shipments", scope="operate", json={**body, "items": [*body["items"][:-1], missing]})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == f"items.{len(body['items']) - 1}.order_item_id", r.text
        assert a.rt.ledger.submission("oii-1") is None and a.rt.ledger.get_order(order.order_id) is None
    assert labels_for(a.world, f"{order.order_id}-1") == []  # nothing bought
    r = a.post("/v1/shipments", scope="operate", json=body)  # with the ids: bought
    assert r.status_code == 201, r.text


def test_an_order_polled_before_the_erp_took_over_is_held_not_confirmed(api):
    from connector.engine.ingest import ingest_account
    from connector.engine.loop import drive

    a = api()
    ingest_account(a.rt, a.rt.config.account("demo-na"))  # polled while the connector owned it
    polled = [r.order_id for r in a.rt.ledger.orders([OrderState.NEW]) if r.order.account == "demo-na"]
    assert polled
    # the operator hands the account to the ERP (as after a restart with orders_owner: erp)
    a.rt.config.accounts = tuple(replace(acc, orders_owner="erp") if acc.name == "demo-na" else acc
                                 for acc in a.rt.config.accounts)
    for order_id in polled:
        drive(a.rt, order_id, lambda: False)
        record = a.rt.ledger.get_order(order_id)
        assert record.state == OrderState.HELD and record.hold_reason == "owned_by_erp", record.state
    assert not a.rt.ledger.packages(polled[0])


def test_confirm_only_checks_the_label_then_confirms_and_verifies(api):
    a = api(ERP_OWNS_NA)
    (order, *_) = erp_pulls(a)
    items = [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in order.items if i.quantity]
    body = {"idempotency_key": "conf-1", "order_id": order.order_id, "site": order.site, "account": "demo-na",
            "carrier": "yanwen", "tracking_number": "not-a-number", "items": items}
    r = a.post("/v1/confirmations", scope="operate", json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tracking_number"
    good = _sample(a.rt.carrier_specs["yanwen"].tracking_number_pattern)
    arabic = good.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))  # digits, but not Amazon's
    r = a.post("/v1/confirmations", scope="operate", json={**body, "tracking_number": arabic})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tracking_number", r.text
    wide = {**body, "order_id": "１" + order.order_id[1:]}  # a full-width digit
    r = a.post("/v1/confirmations", scope="operate", json=wide)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "order_id", r.text
    blank = {**body, "items": [{**items[0], "order_item_id": "  "}]}  # Amazon would refuse it
    r = a.post("/v1/confirmations", scope="operate", json=blank)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "items.0.order_item_id", r.text
    twice = {**body, "tracking_number": good, "items": [items[0], items[0]]}  # one line named twice
    r = a.post("/v1/confirmations", scope="operate", json=twice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "items.1.order_item_id", r.text
    assert a.rt.ledger.submission("conf-1") is None
    body["tracking_number"] = good
    r = a.post("/v1/confirmations", scope="operate", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "LABELED"
    a.run_daemon()
    record = a.rt.ledger.get_order(order.order_id)
    assert record.state in (OrderState.VERIFIED, OrderState.IN_TRANSIT), (record.state, record.hold_message)
    confirmation = a.world.state("spapi")["confirmations"][order.order_id]["1"]
    assert confirmation["accepted"] == 1 and confirmation["trackingNumber"] == body["tracking_number"]


def test_confirm_only_refuses_a_carrier_code_not_in_the_sites_list(api):
    """The daemon never confirms its own labels under a code Amazon's list for the site lacks (the
    tracking would count as invalid); an ERP's label is held to the same list."""
    a = api(ERP_OWNS_NA)
    (order, *_) = erp_pulls(a)
    spec = a.rt.carrier_specs["yanwen"]
    code = spec.carrier_code_for(order.site)
    rules = a.rt.site_rules[order.site]
    a.rt.site_rules[order.site] = replace(
        rules, carrier_codes={k: v for k, v in rules.carrier_codes.items() if k != code})
    items = [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in order.items if i.quantity]
    body = {"idempotency_key": "conf-1", "order_id": order.order_id, "site": order.site, "account": "demo-na",
            "carrier": "yanwen", "tracking_number": _sample(spec.tracking_number_pattern), "items": items}
    r = a.post("/v1/confirmations", scope="operate", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == "carrier" and "not in Amazon's list" in error["message"], error
    assert a.rt.ledger.get_order(order.order_id) is None  # nothing recorded


def test_a_label_the_erp_bought_elsewhere_is_not_voided_by_the_daemon(api):
    """The daemon holds no carrier shipment id for it: it neither calls the carrier nor says VOIDED."""
    a = api(ERP_OWNS_NA)
    (order, *_) = erp_pulls(a)
    items = [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in order.items if i.quantity]
    body = {"idempotency_key": "conf-1", "order_id": order.order_id, "site": order.site, "account": "demo-na",
            "carrier": "dhl_ecommerce", "items": items,
            "tracking_number": _sample(a.rt.carrier_specs["dhl_ecommerce"].tracking_number_pattern)}
    assert a.post("/v1/confirmations", scope="operate", json=body).status_code == 201
    calls = []

    class Recorded:  # every call the void makes to the carrier
        def __init__(self, carrier):
            self.carrier = carrier

        def __getattr__(self, name):
            calls.append(name)
            return getattr(self.carrier, name)

    a.rt.carriers["dhl_ecommerce"] = Recorded(a.rt.carriers["dhl_ecommerce"])
    r = a.post(f"/v1/orders/{order.order_id}/void", scope="operate")
    assert calls == []  # nothing asked of the carrier
    assert r.status_code == 409 and "void_refused" in r.text, r.text
    assert "bought outside this daemon" in r.json()["detail"], r.text
    record = a.rt.ledger.get_order(order.order_id)
    assert record.state is OrderState.HELD and record.hold_reason == "void_refused"
    assert f"orders void {order.order_id} --cancelled-elsewhere" in record.hold_message
    assert a.rt.ledger.packages(order.order_id)[-1].state.value == "LABELED"

    # The ERP cancels its label where it bought it, then ends the order: still no carrier call.
    void = f"/v1/orders/{order.order_id}/void"
    r = a.post(void, scope="operate", json={"cancelled_elsewhere": "yes"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cancelled_elsewhere", r.text
    r = a.post(void, scope="operate", json={"cancelled_elsewhere": True})
    assert r.status_code == 200 and r.json()["state"] == "VOIDED", r.text
    assert "cancelled outside this daemon" in r.json()["detail"] and r.json()["refund"] is None
    assert calls == []
    assert a.rt.ledger.packages(order.order_id)[-1].state.value == "VOIDED"
    assert a.post(void, scope="operate", json={"cancelled_elsewhere": True}).json() == r.json()  # a retry


def test_only_an_order_held_void_refused_is_ended_as_cancelled_elsewhere(api):
    """The daemon can still cancel any other label itself: the request is refused, nothing changes."""
    a = api(ERP_OWNS_NA)
    (order, *_) = erp_pulls(a)
    void = f"/v1/orders/{order.order_id}/void"
    assert a.post(void, scope="operate", json={"cancelled_elsewhere": True}).status_code == 404
    items = [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in order.items if i.quantity]
    body = {"idempotency_key": "conf-1", "order_id": order.order_id, "site": order.site, "account": "demo-na",
            "carrier": "yanwen", "items": items,
            "tracking_number": _sample(a.rt.carrier_specs["yanwen"].tracking_number_pattern)}
    assert a.post("/v1/confirmations", scope="operate", json=body).status_code == 201
    r = a.post(void, scope="operate", json={"cancelled_elsewhere": True})
    assert r.status_code == 409, r.text
    assert "is LABELED: only an order held void_refused" in r.json()["detail"], r.text
    assert a.rt.ledger.packages(order.order_id)[-1].state.value == "LABELED"


def test_an_operator_cannot_hold_for_void_refused_to_drop_a_live_label(api):
    """void_refused says the carrier refused a void, and lets the label be ended as cancelled elsewhere
    with no carrier call: only the daemon's void sets it, or a live paid label could be dropped."""
    a = api()
    r = a.post("/v1/shipments", scope="operate", json=other_channel("forge-1"))
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    forged = a.post(f"/v1/orders/{order_id}/hold", scope="operate",
                    json={"reason": "void_refused", "message": "cancelled it myself"})
    assert forged.status_code == 422, forged.text
    error = forged.json()["errors"][0]
    assert error["field"] == "reason" and "cannot hold an order for 'void_refused'" in error["message"]
    assert "void the order" in error["message"]
    ended = a.post(f"/v1/orders/{order_id}/void", scope="operate", json={"cancelled_elsewhere": True})
    assert ended.status_code == 409, ended.text
    (package,) = a.rt.ledger.packages(order_id)
    assert package.state.value == "LABELED" and a.rt.ledger.get_order(order_id).state is OrderState.LABELED
    assert [label["cancelled"] for label in labels_for(a.world, package.idempotency_key)] == [False]


def test_an_issued_label_is_voided_until_its_parcel_is_scanned(api):
    """ISSUED is bought and handed to the ERP, not scanned: its void cancels the label at the carrier
    like a LABELED one's; a refused one can be ended as cancelled elsewhere (nobody confirmed it here)."""
    from connector.engine.loop import drive
    from connector.kit.carrier import PermanentCarrierError

    a = api()
    for key, order_id in (("iss-1", "SO-3001"), ("iss-2", "SO-3002")):
        r = a.post("/v1/shipments", scope="operate", json=other_channel(key, order_id))
        assert r.status_code == 201, r.text
        drive(a.rt, r.json()["order_id"], lambda: False)  # the daemon hands it over unconfirmed
        (package,) = a.rt.ledger.packages(r.json()["order_id"])
        assert package.state.value == "ISSUED" and package.scans == 0
    voided = a.post("/v1/orders/shopify-SO-3001/void", scope="operate")
    assert voided.status_code == 200, voided.text
    assert voided.json()["state"] == "VOIDED" and voided.json()["detail"].startswith("label ")
    (package,) = a.rt.ledger.packages("shopify-SO-3001")
    assert package.state.value == "VOIDED"
    assert [label["cancelled"] for label in labels_for(a.world, package.idempotency_key)] == [True]

    (package,) = a.rt.ledger.packages("shopify-SO-3002")
    carrier = a.rt.carriers[package.carrier]

    class Refusing:  # the carrier refuses to cancel (it may have the parcel)
        def __getattr__(self, name):
            return getattr(carrier, name)

        def cancel(self, shipment):
            raise PermanentCarrierError("already in our hands")

    a.rt.carriers[package.carrier] = Refusing()
    refused = a.post("/v1/orders/shopify-SO-3002/void", scope="operate")
    assert refused.status_code == 409 and "void_refused" in refused.text, refused.text
    record = a.rt.ledger.get_order("shopify-SO-3002")
    assert record.hold_reason == "void_refused" and record.held_from is OrderState.ISSUED
    assert "orders void shopify-SO-3002 --cancelled-elsewhere" in record.hold_message
    assert a.rt.ledger.packages("shopify-SO-3002")[-1].state.value == "ISSUED"
    ended = a.post("/v1/orders/shopify-SO-3002/void", scope="operate", json={"cancelled_elsewhere": True})
    assert ended.status_code == 200 and ended.json()["state"] == "VOIDED", ended.text
    assert a.rt.ledger.packages("shopify-SO-3002")[-1].state.value == "VOIDED"


def _sample(pattern: str) -> str:
    """A tracking number of the carrier's format (the ERP bought it elsewhere)."""
    from hypothesis import find
    from hypothesis import strategies as st

    return find(st.from_regex(pattern, fullmatch=True), lambda s: s.isascii() and s.isalnum())


# -- a server killed between the carrier's answer and the commit ----------------------------------------


class Served:
    """``mfn-connector serve`` on a port the kernel picks (``--port 0``): a port chosen here and
    bound later could be taken meanwhile by another test's server, under xdist. Its stderr is read
    all along (the address it prints first; a pipe nobody reads would block the server)."""

    def __init__(self, world, env: dict[str, str], *args: str) -> None:
        import queue
        import threading

        full = {**os.environ, **world.sandbox.env, **env}
        command = [sys.executable, "-m", "connector.cli", "--config", str(world.config_path),
                   "serve", "--port", "0", *args]
        self.proc = subprocess.Popen(command, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        found: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in self.proc.stderr:
                self.lines.append(line)
                address = re.search(r"API on (http://\S+)/v1", line)  # a log line, in text or JSON
                if address:
                    found.put(address.group(1))
            found.put("")  # it ended: say so at once rather than at the timeout

        threading.Thread(target=read, daemon=True).start()
        try:
            self.url = found.get(timeout=30)
        except queue.Empty:
            self.url = ""
        if not self.url:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not start: {self.stderr()}")

    def stderr(self) -> str:
        return "".join(self.lines)[-2000:]


@pytest.mark.slow
def test_a_shipment_survives_a_sigkill_between_the_carriers_answer_and_the_commit(world):
    w = world({"sandbox": {"orders": 2}, "routing": {"sites": {"US": ["yunexpress:*"]}}})
    token = run_cli(w, "tokens", "create", "erp", "--scope", "operate", "--json")
    assert token.returncode == 0, token.stderr
    headers = {"Authorization": f"Bearer {json.loads(token.stdout)['token']}"}
    body = other_channel("kill-1")
    served = Served(w, {CRASH_ENV: "after_create_call"}, "--no-engine")
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{served.url}/v1/shipments", json=body, headers=headers, timeout=60)
        assert served.proc.wait(timeout=30) == -9  # SIGKILL, right after the carrier sold the label
    finally:
        served.proc.kill()
    ledger = ledger_of(w)
    (package,) = ledger.packages("shopify-SO-1001")
    assert package.state.value == "LABEL_CLAIMED" and not package.tracking_number
    ledger.close()
    assert [label["created"] for label in labels_for(w, package.idempotency_key)] == [1]
    served = Served(w, {}, "--no-engine")
    try:
        r = requests.post(f"{served.url}/v1/shipments", json=body, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["package"]["tracking_number"]
    finally:
        served.proc.terminate()
        served.proc.wait(timeout=30)
    label = labels_for(w, package.idempotency_key)
    assert [x["created"] for x in label] == [1], "a second label was bought"
    assert r.json()["package"]["tracking_number"] in (label[0].get("tracking_number"),
                                                       label[0].get("waybill"))


@pytest.mark.slow
def test_serve_runs_the_daemon_and_the_api_and_stops_on_sigterm(world):
    w = world({"sandbox": {"orders": 3}, "engine": {"poll_interval_seconds": 1}})
    token = json.loads(run_cli(w, "tokens", "create", "ops", "--scope", "read", "--json").stdout)["token"]
    served = Served(w, {})
    server = served.proc
    try:
        deadline, verified = time.monotonic() + 90, []
        while time.monotonic() < deadline and not verified:
            time.sleep(0.5)
            try:
                r = requests.get(f"{served.url}/v1/orders?state=VERIFIED", timeout=5,
                                 headers={"Authorization": f"Bearer {token}"})
            except requests.ConnectionError:
                continue
            verified = r.json()["items"] if r.ok else []
        assert verified, "the daemon inside serve shipped nothing"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, served.stderr()
    finally:
        server.kill()


def test_a_shipment_whose_address_no_key_reads_is_still_answered(api):
    """The answer carries no address: reading it must not decrypt one. Sealed with a key no longer
    configured (removed before 'pii rotate'), GET /v1/shipments/{key} and a repeated POST were a 500,
    where GET /v1/orders/{id} answers the order."""
    from cryptography.fernet import Fernet

    from connector.ledger.crypto import PiiCipher, seal_address

    a = api()
    first = a.post("/v1/shipments", scope="operate", json=other_channel("erp-key-sealed"))
    assert first.status_code == 201, first.text
    oid = first.json()["order_id"]
    blob = seal_address(PiiCipher([Fernet.generate_key()]), oid, a.rt.ledger.get_order(oid).order.ship_to)
    with a.rt.ledger._write() as conn:
        conn.execute("UPDATE orders SET pii = ? WHERE order_id = ?", (blob, oid))
    shown = a.get("/v1/shipments/erp-key-sealed", scope="read")
    assert shown.status_code == 200 and shown.json() == first.json(), shown.text
    again = a.post("/v1/shipments", scope="operate", json=other_channel("erp-key-sealed"))
    assert again.status_code == 200 and again.json() == first.json(), again.text


def test_a_shipment_waiting_for_its_label_answers_at_a_stop_request(api, monkeypatch):
    """A shipment whose carrier keeps failing for now waits for its retries within
    api.shipment_wait_seconds (60 s by default). A stop request (SIGTERM to `serve`) ends that
    wait: the request answers 202 at once, the daemon carries on after its restart, and the server
    is not left to cut the answer off."""
    import threading

    from connector.kit import TransientCarrierError

    a = api({"api": {"shipment_wait_seconds": 30}})

    def unavailable(*_args, **_kwargs):
        raise TransientCarrierError("503 Service Unavailable")

    for carrier in a.rt.carriers.values():
        monkeypatch.setattr(carrier, "create_shipment", unavailable)
    threading.Timer(1.0, a.rt.stopping.set).start()
    started = time.monotonic()
    r = a.post("/v1/shipments", scope="operate", json=other_channel("erp-stop-1"))
    took = time.monotonic() - started
    assert r.status_code == 202, r.text
    assert r.json()["state"] in ("NEW", "PLANNED", "LABEL_CLAIMED"), r.json()
    assert took < 10, took


def test_a_key_reused_by_a_request_racing_the_first_is_a_conflict_naming_the_key(api, monkeypatch):
    """Two requests under one key, sent at once: the second looked before the first committed, so
    the ledger's own check in the write refused it. It named order_id, as for an order already in
    the ledger under another key, where a key reused for another request names idempotency_key."""
    a = api()
    assert a.post("/v1/shipments", scope="operate", json=other_channel("race-1")).status_code == 201
    monkeypatch.setattr(a.rt.ledger, "submission", lambda key: None)  # not committed yet when it looked
    r = a.post("/v1/shipments", scope="operate", json=other_channel("race-1", "SO-RACE-2"))
    assert r.status_code == 409, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["idempotency_key"]
    r = a.post("/v1/shipments", scope="operate", json=other_channel("race-2"))  # the order, another key
    assert r.status_code == 409 and [e["field"] for e in r.json()["errors"]] == ["order_id"]
