"""Several warehouses end to end: a two-warehouse sandbox (Shenzhen, the default, and Yiwu) routes
orders by SKU, site and account; every carrier is asked and bought from the order's warehouse; the
plan keeps it; `quote` says which warehouse and why; pickup coverage is the warehouse's city."""
from __future__ import annotations

import json
import threading

import pytest
import yaml

from connector.cli.quote import explain, render_explanation
from connector.engine.loop import Engine, step
from connector.engine.plan import precheck
from connector.holds import HoldReason
from connector.ledger import OrderState
from tests.conftest import SANDBOX_YAML

from .helpers import SEEDED_HOLDS, assert_exactly_once, ingest_all, run_cli

pytestmark = pytest.mark.e2e

SANDBOX_SHIP_FROM = yaml.safe_load(SANDBOX_YAML.read_text(encoding="utf-8"))["ship_from"]
SHENZHEN = {"warehouse": "shenzhen", **SANDBOX_SHIP_FROM}
YIWU = {"warehouse": "yiwu", "name": "Yiwu Demo Warehouse", "company": "Yiwu Demo Trading Co., Ltd.",
        "line1": "99 Futian Road", "city": "Yiwu", "state": "Zhejiang", "postal_code": "322000",
        "country_code": "CN", "phone": "+86 579 0000 0000"}
CHENGDU = {"warehouse": "chengdu", "name": "Chengdu Demo Warehouse", "line1": "1 Tianfu Avenue",
           "city": "Chengdu", "state": "Sichuan", "postal_code": "610000", "country_code": "CN",
           "phone": "+86 28 0000 0000"}
ROUTING = [
    {"warehouse": "yiwu", "skus": ["YOGA-MAT-6MM", "LED-STRIP-5M"]},  # bulky: stocked in Yiwu only
    {"warehouse": "shenzhen", "skus": ["CAMERA-LENS-KIT"]},
    {"warehouse": "yiwu", "sites": ["JP"]},
    {"warehouse": "shenzhen", "sites": ["UK"]},  # a site rule beats the account rule below
    {"warehouse": "yiwu", "accounts": ["demo-eu"]},
]
TWO_WAREHOUSES = {"sandbox": {"orders": 24}, "ship_from": [SHENZHEN, YIWU], "warehouse_routing": ROUTING}
CITY = {"shenzhen": "Shenzhen", "yiwu": "Yiwu", "chengdu": "Chengdu"}


def expected_warehouse(order) -> tuple[str, str] | None:
    """What the routing above should give, worked out by hand: (warehouse, kind of rule), or None
    when the items disagree (held split_warehouses)."""
    skus = {"YOGA-MAT-6MM": "yiwu", "LED-STRIP-5M": "yiwu", "CAMERA-LENS-KIT": "shenzhen"}
    if order.site in ("JP", "UK"):
        fallback = ("yiwu" if order.site == "JP" else "shenzhen", "site")
    elif order.account == "demo-eu":
        fallback = ("yiwu", "account")
    else:
        fallback = ("shenzhen", "default")
    found = {(skus[i.sku], "sku") if i.sku in skus else fallback for i in order.items if i.quantity > 0}
    if not found:  # nothing left to ship
        return fallback
    if len({name for name, _ in found}) > 1:
        return None
    return min(found, key=lambda f: f[1] != "sku")  # a SKU rule is the reason when there is one


class Recording:
    """Wraps a carrier and keeps the origin city of every quote and label request."""

    def __init__(self, carrier, seen: dict, lock: threading.Lock):
        self.carrier, self.seen, self.lock = carrier, seen, lock

    def _keep(self, kind, request):
        with self.lock:
            self.seen.setdefault((kind, request.reference), set()).add(request.ship_from.city)

    def quote(self, request):
        self._keep("quote", request)
        return self.carrier.quote(request)

    def create_shipment(self, request):
        self._keep("label", request)
        return self.carrier.create_shipment(request)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def recording(rt) -> dict:
    seen: dict = {}
    lock = threading.Lock()
    for code in list(rt.carriers):
        rt.carriers[code] = Recording(rt.carriers[code], seen, lock)
    return seen


def test_two_warehouses_route_by_sku_site_and_account_and_quote_explains_it(world):
    w = world(TWO_WAREHOUSES)
    rt = w.runtime()
    try:  # before anything is planned, `quote` tells where each order will ship from and why
        ingest_all(rt)
        new = rt.ledger.orders([OrderState.NEW])
        explained = {r.order_id: explain(rt, r) for r in new}
    finally:
        rt.close()
    kinds = {}
    for record in new:
        result = explained[record.order_id]
        if "error" in result:
            continue
        expected = expected_warehouse(record.order)
        assert expected is not None, (record.order_id, result["warehouse"])
        assert result["warehouse"]["name"] == expected[0], (record.order_id, result["warehouse"])
        assert result["warehouse"]["city"] == CITY[expected[0]] and result["warehouse"]["planned"] is None
        kinds.setdefault(expected, record.order_id)
    split = [r for r in new if expected_warehouse(r.order) is None
             and "split_warehouses" in explained[r.order_id].get("error", "")]
    # the seed has every case: a SKU rule to each warehouse, a site rule, an account rule, the default
    assert {("yiwu", "sku"), ("yiwu", "site"), ("shenzhen", "site"), ("yiwu", "account"),
            ("shenzhen", "default")} <= set(kinds), kinds
    assert split, "the seed has orders with items in both warehouses"

    # `mfn-connector quote ORDER` names the warehouse and the reason, or the split.
    by_sku = kinds[("yiwu", "sku")]
    text = run_cli(w, "quote", by_sku).stdout
    assert "Ships from warehouse yiwu (Yiwu, Zhejiang): SKU " in text and " is stocked in yiwu" in text
    assert text.splitlines()[1] == render_explanation(explained[by_sku]).splitlines()[1]
    text = run_cli(w, "quote", split[0].order_id).stdout
    assert "not shopped: split_warehouses: " in text and "its items ship from different warehouses" in text
    for (warehouse, kind), order_id in kinds.items():
        site = next(r.order.site for r in new if r.order_id == order_id)
        assert explained[order_id]["warehouse"]["reason"].startswith(
            {"sku": "SKU ", "site": f"site {site} ships from {warehouse}",
             "account": "account demo-eu ships from yiwu",
             "default": "default: shenzhen is the first warehouse under ship_from"}[kind]), order_id

    # The daemon: each order planned, quoted and bought from its warehouse.
    rt = w.runtime()
    try:
        seen = recording(rt)
        Engine(rt).run_until_quiet()
        records = {r.order_id: r for r in rt.ledger.orders()}
        packages = {oid: rt.ledger.packages(oid) for oid in records}
    finally:
        rt.close()
    shipped = 0
    for order_id, record in records.items():
        if record.state == OrderState.VERIFIED:
            expected = expected_warehouse(record.order)
            (package,) = packages[order_id]
            assert expected is not None and package.plan["warehouse"] == expected[0], (order_id, package.plan)
            assert package.plan["warehouse_reason"] == explained[order_id]["warehouse"]["reason"]
            city = CITY[expected[0]]
            assert seen[("quote", f"{order_id}-quote")] == {city}, order_id
            assert seen[("label", package.idempotency_key)] == {city}, order_id
            shipped += 1
        if record.hold_reason == HoldReason.SPLIT_WAREHOUSES.value:
            assert expected_warehouse(record.order) is None and not packages[order_id]
            assert "its items ship from different warehouses" in record.hold_message
    assert shipped >= 20
    assert {r.order_id for r in split} <= {oid for oid, r in records.items()
                                           if r.hold_reason == HoldReason.SPLIT_WAREHOUSES.value}
    assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"split_warehouses", "no_eligible_service"})


def test_quote_cli_names_the_warehouse_and_pickup_is_checked_in_its_city(world):
    # A third warehouse in Chengdu, where no listed carrier picks up: its orders are quoted from
    # there, and YunExpress, Yanwen and DHL eCommerce are rejected for pickup in Chengdu.
    w = world({"sandbox": {"orders": 10}, "ship_from": [SHENZHEN, YIWU, CHENGDU],
               "warehouse_routing": [{"warehouse": "chengdu", "accounts": ["demo-na"]},
                                     {"warehouse": "yiwu", "sites": ["DE", "FR", "IT", "ES"]}],
               "selection": {"overrides": []}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        new = [r for r in rt.ledger.orders([OrderState.NEW]) if precheck(rt, r) is None]
    finally:
        rt.close()
    chengdu = next(r for r in new if r.order.account == "demo-na")
    yiwu = next(r for r in new if r.order.site in ("DE", "FR", "IT", "ES"))
    default = next(r for r in new if r.order.account == "demo-fe")

    out = json.loads(run_cli(w, "quote", chengdu.order_id, "--json").stdout)
    assert out["warehouse"] == {"name": "chengdu", "city": "Chengdu", "province": "Sichuan",
                                "reason": "account demo-na ships from chengdu", "planned": None}
    rejected = {o["carrier"]: o["reasons"] for o in out["options"] if not o["eligible"]}
    for carrier in ("yunexpress", "yanwen", "dhl_ecommerce"):
        assert any("does not pick up in Chengdu, Sichuan" in r for r in rejected[carrier]), rejected
    text = run_cli(w, "quote", chengdu.order_id).stdout
    assert "Ships from warehouse chengdu (Chengdu, Sichuan): account demo-na ships from chengdu" in text
    assert "does not pick up in Chengdu, Sichuan" in text

    text = run_cli(w, "quote", yiwu.order_id).stdout
    assert f"Ships from warehouse yiwu (Yiwu, Zhejiang): site {yiwu.order.site} ships from yiwu" in text
    assert "does not pick up" not in text  # Yiwu is in every listed carrier's coverage
    text = run_cli(w, "quote", default.order_id).stdout
    assert ("Ships from warehouse shenzhen (Shenzhen, Guangdong): default: shenzhen is the first warehouse "
            "under ship_from") in text


def test_a_planned_package_keeps_its_warehouse_when_the_routing_changes(world):
    w = world({**TWO_WAREHOUSES, "sandbox": {"orders": 12}, "routing": {"default": ["yunexpress:*"]}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            step(rt, record)
        planned = {r.order_id: rt.ledger.open_package(r.order_id)
                   for r in rt.ledger.orders([OrderState.PLANNED])}
    finally:
        rt.close()
    from_yiwu = {oid for oid, p in planned.items() if p.plan["warehouse"] == "yiwu"}
    assert from_yiwu and set(planned) - from_yiwu

    # Yiwu now ships nothing: a package planned there is still bought from Yiwu.
    data = yaml.safe_load(w.config_path.read_text(encoding="utf-8"))
    data["warehouse_routing"] = []
    w.config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    keep, gone = sorted(from_yiwu)[0], sorted(from_yiwu)[-1]
    assert keep != gone
    rt = w.runtime()
    try:
        seen = recording(rt)
        step(rt, rt.ledger.get_order(keep))
        assert seen[("label", planned[keep].idempotency_key)] == {"Yiwu"}
        explained = explain(rt, rt.ledger.get_order(gone))  # `quote` tells the plan from the routing
    finally:
        rt.close()
    assert explained["warehouse"]["name"] == "shenzhen"
    ref = planned[gone].package_ref
    assert explained["warehouse"]["planned"] == {"package_ref": ref, "state": "PLANNED", "warehouse": "yiwu"}
    assert f"  note: package {ref} (PLANNED) was planned from warehouse yiwu; the routing now says shenzhen" \
        in render_explanation(explained)

    # Yiwu is gone from ship_from: a package planned there is held, never bought from elsewhere.
    data["ship_from"] = [SHENZHEN]
    w.config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    rt = w.runtime()
    try:
        seen = recording(rt)
        step(rt, rt.ledger.get_order(gone))
        held = rt.ledger.get_order(gone)
    finally:
        rt.close()
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.PLAN_UNAVAILABLE.value
    assert "planned to ship from warehouse 'yiwu', which is no longer under ship_from" in held.hold_message
    assert not [key for key in seen if key[0] == "label"]
    assert planned[gone].idempotency_key not in w.state("yunexpress")["labels"]
