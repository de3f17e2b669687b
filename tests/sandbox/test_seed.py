"""connector.sandbox.seed: deterministic, realistic, model-valid seed orders."""
from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from connector.sandbox.schemas import validate_response
from connector.sandbox.seed import (
    IOSS_NUMBER,
    MARKETPLACE_IDS,
    SEED_SKUS,
    UNKNOWN_SKU,
    order_features,
    seed_orders,
)

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
SITES = ["US", "CA", "UK", "DE", "FR", "JP"]
CATALOG = Path(__file__).resolve().parents[2] / "config" / "catalog.sandbox.csv"
EU_SITES = {"DE", "FR", "IT", "ES", "NL"}
EU_COUNTRIES = {"DE", "AT", "PL", "CZ", "FR", "IT", "ES", "NL", "BG"}


@pytest.fixture(scope="module")
def orders() -> list[dict]:
    return seed_orders("demo-seller", SITES, 60, 7, NOW)


def site_of(order: dict) -> str:
    mid = order["salesChannel"]["marketplaceId"]
    return next(site for site, value in MARKETPLACE_IDS.items() if value == mid)


def total(order: dict) -> Decimal:
    return Decimal(order["proceeds"]["grandTotal"]["amount"])


def test_marketplace_ids_match_the_reference_table():
    assert MARKETPLACE_IDS["US"] == "ATVPDKIKX0DER"
    assert MARKETPLACE_IDS["UK"] == "A1F83G8C2ARO7P"
    assert MARKETPLACE_IDS["DE"] == "A1PA6795UKMFR9"
    assert MARKETPLACE_IDS["JP"] == "A1VC38T7YXB528"
    assert MARKETPLACE_IDS["MX"] == "A1AM78C64UM0Y8"
    assert len(set(MARKETPLACE_IDS.values())) == len(MARKETPLACE_IDS)


def test_deterministic_and_sensitive_to_seed_and_seller(orders):
    assert seed_orders("demo-seller", SITES, 60, 7, NOW) == orders
    other_seed = seed_orders("demo-seller", SITES, 60, 8, NOW)
    other_seller = seed_orders("other-seller", SITES, 60, 7, NOW)
    ids = {o["orderId"] for o in orders}
    assert ids.isdisjoint(o["orderId"] for o in other_seed)
    assert ids.isdisjoint(o["orderId"] for o in other_seller)


def test_every_seed_order_validates_against_the_order_model(orders):
    assert len(orders) == 60
    for order in orders:
        assert validate_response("getOrder", 200, {"order": order}) == [], order["orderId"]
    assert validate_response("searchOrders", 200, {"orders": orders}) == []


def test_ids_are_unique_and_amazon_shaped(orders):
    ids = [o["orderId"] for o in orders]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{3}-\d{7}-\d{7}", i) for i in ids)
    item_ids = [it["orderItemId"] for o in orders for it in o["orderItems"]]
    assert len(set(item_ids)) == len(item_ids)
    assert all(re.fullmatch(r"\d{14}", i) for i in item_ids)


def test_every_site_gets_orders_in_its_currency(orders):
    currency = {"US": "USD", "CA": "CAD", "UK": "GBP", "DE": "EUR", "FR": "EUR", "JP": "JPY"}
    per_site = Counter(site_of(o) for o in orders)
    assert set(per_site) == set(SITES) and min(per_site.values()) >= 9
    for order in orders:
        assert order["proceeds"]["grandTotal"]["currencyCode"] == currency[site_of(order)]
        for item in order["orderItems"]:
            assert item["product"]["price"]["unitPrice"]["currencyCode"] == currency[site_of(order)]
    assert all("." not in o["proceeds"]["grandTotal"]["amount"] for o in orders if site_of(o) == "JP")


def test_totals_add_up(orders):
    for order in orders:
        items = Decimal(0)
        for item in order["orderItems"]:
            parts = {b["type"]: Decimal(b["subtotal"]["amount"]) for b in item["proceeds"]["breakdowns"]}
            unit = Decimal(item["product"]["price"]["unitPrice"]["amount"])
            assert parts["ITEM"] == unit * item["quantityOrdered"]
            assert Decimal(item["proceeds"]["proceedsTotal"]["amount"]) == sum(parts.values())
            items += sum(parts.values())
        assert total(order) == items, order["orderId"]


def test_totals_sit_around_the_rule_thresholds(orders):
    totals: dict[str, set[Decimal]] = {}
    for order in orders:
        if order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED":
            totals.setdefault(site_of(order), set()).add(total(order))
    expected = {
        "US": ["4.99", "5.00", "5.01", "799.99", "800.00", "800.01"],
        "UK": ["4.99", "5.00", "5.01", "134.99", "135.00", "135.01"],
        "CA": ["19.99", "20.00", "20.01"],
        "DE": ["149.99", "150.00", "150.01"],
        "FR": ["149.99", "150.00", "150.01"],
        "JP": ["999", "1000", "1001"],
    }
    for site, amounts in expected.items():
        missing = {Decimal(a) for a in amounts} - totals[site]
        assert not missing, (site, missing)


def test_mexico_totals_bracket_fifty_dollars_in_pesos():
    mx = seed_orders("s", ["MX"], 12, 3, NOW)
    assert {o["proceeds"]["grandTotal"]["currencyCode"] for o in mx} == {"MXN"}
    assert {Decimal("800.00"), Decimal("850.00"), Decimal("900.00")} <= {total(o) for o in mx}


def test_special_cases_are_a_deterministic_fraction(orders):
    counts = Counter(f for o in orders for f in order_features(o))
    for case in ("partial", "shipped", "cancelled", "afn", "cancel_request", "unknown_sku",
                 "incomplete_address", "non_latin", "multi_item", "ioss"):
        assert counts[case] >= 2, (case, counts)
    small = seed_orders("s", ["US"], 8, 1, NOW)
    assert len(small) == 8 and Counter(f for o in small for f in order_features(o))["partial"] == 1


def test_partially_shipped_orders_have_package_one_for_the_first_line(orders):
    partial = [o for o in orders if o["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"]
    assert len(partial) >= 2
    for order in partial:
        first, *rest = order["orderItems"]
        assert rest, "partially shipped orders have several lines"
        assert first["fulfillment"]["quantityFulfilled"] == first["quantityOrdered"]
        assert first["fulfillment"]["quantityUnfulfilled"] == 0
        assert all(it["fulfillment"]["quantityFulfilled"] == 0 for it in rest)
        (package,) = order["packages"]
        assert package["packageReferenceId"] == "1"
        assert package["packageStatus"]["status"] == "SHIPPED"
        assert package["packageItems"] == [{"orderItemId": first["orderItemId"],
                                            "quantity": first["quantityOrdered"]}]
        assert re.fullmatch(r"YT\d{16}|[A-Z]{2}\d{9}CN", package["trackingNumber"])
    multi = [o for o in orders if len(o["orderItems"]) > 1]
    assert any(it["quantityOrdered"] > 1 for o in multi for it in o["orderItems"])
    assert all(len(o["orderItems"]) <= 3 for o in orders)


def test_incomplete_addresses_keep_only_city_and_postcode(orders):
    incomplete = [o for o in orders if not o["recipient"]["deliveryAddress"]["addressLine1"]]
    assert len(incomplete) >= 2
    for order in incomplete:
        address = order["recipient"]["deliveryAddress"]
        assert address["name"] == "" and address["addressLine1"] == ""
        assert address["city"] and address["postalCode"] and address["countryCode"]
        assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


def test_buyer_cancel_requests_and_unknown_skus(orders):
    requested = [it for o in orders for it in o["orderItems"]
                 if it.get("cancellation", {}).get("cancellationRequest")]
    assert len(requested) >= 2
    assert all(it["cancellation"]["cancellationRequest"]["requester"] == "BUYER" for it in requested)
    unknown = [o for o in orders if any(it["product"]["sellerSku"] == UNKNOWN_SKU for it in o["orderItems"])]
    assert len(unknown) >= 2
    assert all(o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED" for o in unknown)


def test_skus_are_the_sandbox_catalog(orders):
    with CATALOG.open(encoding="utf-8") as fh:
        catalog = {row["sku"] for row in csv.DictReader(fh)}
    assert set(SEED_SKUS) == catalog
    used = {it["product"]["sellerSku"] for o in orders for it in o["orderItems"]}
    assert used - catalog == {UNKNOWN_SKU}


def goods(order: dict) -> Decimal:
    """The items' value without shipping (what IOSS's 150 EUR cap is on)."""
    return sum((Decimal(b["subtotal"]["amount"]) for it in order["orderItems"]
                for b in it["proceeds"]["breakdowns"] if b["type"] == "ITEM"), Decimal(0))


def test_ioss_numbers_on_eu_bound_goods_up_to_150_eur_from_any_site():
    eu = seed_orders("s", ["DE", "FR", "IT", "ES", "NL", "UK"], 90, 11, NOW)
    with_ioss = 0
    for order in eu:
        items = order["orderItems"]
        numbers = [it.get("fulfillment", {}).get("shipping", {}).get("internationalShipping", {})
                   .get("iossNumber") for it in items]
        country = order["recipient"]["deliveryAddress"]["countryCode"]
        if country not in EU_COUNTRIES:
            assert numbers == [None] * len(items), order["orderId"]
            continue
        if site_of(order) not in EU_SITES:  # e.g. an amazon.co.uk order into the EU: only clear cases
            if goods(order) < 100:
                assert numbers == [IOSS_NUMBER] * len(items), order["orderId"]
            continue
        if goods(order) <= 150:
            with_ioss += 1
            assert numbers == [IOSS_NUMBER] * len(items), order["orderId"]
        else:
            assert numbers == [None] * len(items), order["orderId"]
    assert with_ioss >= 10


def test_addresses_cover_non_latin_scripts_and_diacritics(orders):
    text = " ".join(str(v) for o in orders for v in o["recipient"]["deliveryAddress"].values())
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text)  # Japanese
    assert re.search(r"[\u0400-\u04ff]", text)  # Cyrillic
    assert re.search(r"[äöüß]", text)  # German
    assert re.search(r"[łąęśźżńŁ]|[ěščřžůČ]", text)  # Polish / Czech


def test_names_are_obviously_synthetic(orders):
    markers = "Test|Prueba|Prova|Testé|Teste|Testowy|Testovací|テスト|試験|Тест|测试"
    synthetic = re.compile(rf"^(|.*({markers}).*)$")
    for order in orders:
        assert synthetic.match(order["recipient"]["deliveryAddress"]["name"]), order["recipient"]
        assert synthetic.match(order["buyer"]["buyerName"]), order["buyer"]
        assert order["buyer"]["buyerEmail"].split("@")[1].startswith("marketplace.amazon.")


def test_times_spread_over_the_last_days_and_ship_by_in_the_future(orders):
    updated = [datetime.fromisoformat(o["lastUpdatedTime"].replace("Z", "+00:00")) for o in orders]
    assert all(NOW - timedelta(days=3) <= t <= NOW - timedelta(minutes=5) for t in updated)
    assert max(updated) - min(updated) > timedelta(days=2)
    for order in orders:
        assert order["createdTime"] <= order["lastUpdatedTime"]
        assert order["fulfillment"]["shipByWindow"]["latestDateTime"] > NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
        for package in order.get("packages", []):
            assert order["createdTime"] <= package["shipTime"] <= order["lastUpdatedTime"]
    assert [o["lastUpdatedTime"] for o in orders] == sorted(o["lastUpdatedTime"] for o in orders)


def test_site_arguments():
    by_id = seed_orders("s", ["ATVPDKIKX0DER"], 3, 1, NOW)
    assert {o["salesChannel"]["marketplaceId"] for o in by_id} == {"ATVPDKIKX0DER"}
    assert seed_orders("s", ["GB"], 2, 1, NOW)[0]["salesChannel"]["marketplaceId"] == MARKETPLACE_IDS["UK"]
    assert seed_orders("s", ["US"], 0, 1, NOW) == []
    with pytest.raises(ValueError, match="XX"):
        seed_orders("s", ["XX"], 3, 1, NOW)
    # every site Amazon lists can be seeded (a config may name any of them)
    for site in MARKETPLACE_IDS:
        for order in seed_orders("s", [site], 4, 1, NOW):
            assert validate_response("getOrder", 200, {"order": order}) == [], site
