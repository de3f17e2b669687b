"""The Buy Shipping emulator (Shipping API v2 mounted on the SP-API emulator) over real loopback
HTTP: getRates, purchaseShipment with idempotency keys and TOKEN_EXPIRED, documents, tracking on
the simulated clock, cancel, the order read back, quotas, faults and the exactly-once state."""

from __future__ import annotations

import base64
import io
import re
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from mfn_carrier_amazon_shipping import sandbox_data as bs
from mfn_carrier_amazon_shipping.sandbox import BuyShippingEmulator, request_problems, spapi_emulator
from pypdf import PdfReader

from connector.kit.amazon import SpApiEmulator, marketplace_id, site_for_marketplace

TRACKING_FORMATS = SpApiEmulator.TRACKING_FORMATS

RATES = "/shipping/v2/shipments/rates"
PURCHASE = "/shipping/v2/shipments"
OTHER = {
    "name": "other-seller",
    "refresh_token": "Atzr|other",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
    "marketplaces": ["US", "UK"],
}
NORDIC = {
    "name": "nordic-seller",
    "refresh_token": "Atzr|nordic",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
    "marketplaces": ["SE", "US"],
}
DEMO = {
    "name": "demo-seller",
    "refresh_token": "Atzr|sandbox-demo",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
    "marketplaces": ["US", "CA", "UK", "DE", "FR", "JP"],
}
BUSINESS = {
    "US": "AmazonShipping_US",
    "CA": "AmazonShipping_US",
    "UK": "AmazonShipping_UK",
    "DE": "AmazonShipping_UK",
    "FR": "AmazonShipping_FR",
    "JP": "AmazonShipping_JP",
}
SHIP_FROM = {
    "name": "Li Wei",
    "addressLine1": "8 Keji South Road",
    "city": "Shenzhen",
    "stateOrRegion": "Guangdong",
    "postalCode": "518057",
    "countryCode": "CN",
}
LABEL_4X6 = {
    "format": "PDF",
    "size": {"width": 4, "length": 6, "unit": "INCH"},
    "needFileJoining": False,
    "requestedDocumentTypes": ["LABEL"],
}
LONG = 10**9  # access-token lifetime for tests that move the clock by days
S10 = re.compile(r"^[A-Z]{2}(\d{8})(\d)CN$")


def light(order: dict[str, Any]) -> bool:
    return sum(it["fulfillment"]["quantityUnfulfilled"] for it in order["orderItems"]) <= 5


def rates_body(
    order: dict[str, Any],
    reference: str | None = None,
    *,
    weight_g: float = 300,
    items: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    if items is None:
        items = [
            {
                "itemIdentifier": it["orderItemId"],
                "quantity": it["fulfillment"]["quantityUnfulfilled"],
                "itemValue": {"value": 5, "unit": "USD"},
                "description": "goods",
            }
            for it in order["orderItems"]
            if it["fulfillment"]["quantityUnfulfilled"] > 0
        ]
    body = {
        "shipFrom": SHIP_FROM,
        "packages": [
            {
                "dimensions": {"length": 20, "width": 15, "height": 3, "unit": "CENTIMETER"},
                "weight": {"value": weight_g, "unit": "GRAM"},
                "insuredValue": {"value": 10, "unit": "USD"},
                "packageClientReferenceId": reference or f"{order['orderId']}-1",
                "items": items,
            }
        ],
        "channelDetails": {"channelType": "AMAZON", "amazonOrderDetails": {"orderId": order["orderId"]}},
    }
    body.update(extra)
    return body


class Shipping:
    """Drives the Shipping API routes of one emulator for one seller."""

    def __init__(self, spapi: Any) -> None:
        self.spapi = spapi

    def headers(self, site: str | None = "US", key: str | None = None, **extra: str) -> dict[str, str]:
        headers = dict(self.spapi.headers())
        if site:
            headers["x-amzn-shipping-business-id"] = BUSINESS.get(site, site)
        if key:
            headers["x-amzn-IdempotencyKey"] = key
        headers.update(extra)
        return headers

    def rates(self, body: Any, site: str | None = "US", **kw: Any) -> requests.Response:
        return requests.post(self.spapi.url + RATES, json=body, headers=self.headers(site, **kw), timeout=5)

    def purchase(
        self,
        token: str,
        rate_id: str,
        *,
        key: str | None = "K-1",
        site: str | None = "US",
        spec: dict[str, Any] | None = None,
        timeout: float = 5,
    ) -> requests.Response:
        body = {"requestToken": token, "rateId": rate_id, "requestedDocumentSpecification": spec or LABEL_4X6}
        return requests.post(
            self.spapi.url + PURCHASE, json=body, headers=self.headers(site, key), timeout=timeout
        )

    def buy(
        self, order: dict[str, Any], *, site: str = "US", key: str | None = None, service: str | None = None
    ) -> dict[str, Any]:
        key = key or f"{order['orderId']}-1"
        response = self.rates(rates_body(order, key), site)
        assert response.status_code == 200, response.text
        payload = response.json()["payload"]
        rate = next(r for r in payload["rates"] if service in (None, r["serviceId"]))
        bought = self.purchase(payload["requestToken"], rate["rateId"], key=key, site=site)
        assert bought.status_code == 200, bought.text
        return {"rate": rate, **bought.json()["payload"]}

    def documents(self, shipment_id: str, reference: str, **params: str) -> requests.Response:
        return requests.get(
            f"{self.spapi.url}/shipping/v2/shipments/{shipment_id}/documents",
            params={"packageClientReferenceId": reference, **params},
            headers=self.headers(),
            timeout=5,
        )

    def tracking(self, tracking_id: str, carrier_id: str) -> requests.Response:
        return requests.get(
            self.spapi.url + "/shipping/v2/tracking",
            params={"trackingId": tracking_id, "carrierId": carrier_id},
            headers=self.headers(),
            timeout=5,
        )

    def cancel(self, shipment_id: str) -> requests.Response:
        return requests.put(
            f"{self.spapi.url}/shipping/v2/shipments/{shipment_id}/cancel", headers=self.headers(), timeout=5
        )

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.spapi.get_order(order_id, includedData=["FULFILLMENT", "PACKAGES"])
        assert response.status_code == 200, response.text
        return response.json()["order"]


@pytest.fixture
def ship(spapi) -> Shipping:
    return Shipping(spapi)


def error(response: requests.Response) -> tuple[str, str]:
    (entry,) = response.json()["errors"]
    return entry["code"], entry["message"]


def no_violations(spapi: Any) -> None:
    assert spapi.state()["schema_violations"] == []


# -- getRates ------------------------------------------------------------------------------------


def test_rates_for_a_us_order(spapi, ship):
    order = spapi.pick(site="US", where=light)
    body = rates_body(order)
    assert request_problems("getRates", body=body) == []
    response = ship.rates(body)
    assert response.status_code == 200, response.text
    assert response.headers["x-amzn-RateLimit-Limit"] == "80.0"
    payload = response.json()["payload"]
    assert re.fullmatch(r"[0-9A-F]{29}", payload["requestToken"])
    rates = payload["rates"]
    assert {r["carrierName"] for r in rates} == {"YunExpress", "China Post", "Yanwen", "DHL eCommerce"}
    assert {r["serviceId"] for r in rates} == set(bs.SERVICES)
    for rate in rates:
        assert rate["totalCharge"]["unit"] == "USD" and rate["totalCharge"]["value"] > 0
        assert rate["supportedDocumentSpecifications"][0]["format"] == "PDF"
        assert rate["promise"]["deliveryWindow"]["end"] > rate["promise"]["pickupWindow"]["start"]
        assert rate["requiresAdditionalInputs"] is False
    assert payload["ineligibleRates"] == []
    for rate in rates:  # the breakdown: billed weight in 100 g steps, rate items adding up to the total
        assert rate["billedWeight"] == {"value": 300, "unit": "GRAM"}  # the body's 300 g
        items = {i["rateItemID"]: Decimal(str(i["rateItemCharge"]["value"])) for i in rate["rateItemList"]}
        assert set(items) == {"BASE_RATE", "TRANSACTION_FEE"}
        assert sum(items.values()) == Decimal(str(rate["totalCharge"]["value"]))
        assert items["TRANSACTION_FEE"] == bs.handling(bs.SERVICES[rate["serviceId"]], "US") > 0
    # deterministic prices, new token and rate ids per call
    again = ship.rates(body).json()["payload"]
    assert [r["totalCharge"] for r in again["rates"]] == [r["totalCharge"] for r in rates]
    assert again["requestToken"] != payload["requestToken"]
    assert {r["rateId"] for r in again["rates"]}.isdisjoint(r["rateId"] for r in rates)
    no_violations(spapi)


def test_rates_differ_per_site(spapi, ship):
    us = ship.rates(rates_body(spapi.pick(site="US", where=light))).json()["payload"]
    uk = ship.rates(rates_body(spapi.pick(site="UK", where=light)), "UK").json()["payload"]
    jp = ship.rates(rates_body(spapi.pick(site="JP", where=light)), "JP").json()["payload"]
    assert {r["totalCharge"]["unit"] for r in uk["rates"]} == {"GBP"}
    assert {r["totalCharge"]["unit"] for r in jp["rates"]} == {"JPY"}
    assert all(float(r["totalCharge"]["value"]).is_integer() for r in jp["rates"])  # no minor units
    assert "YANWEN" in {r["carrierName"] for r in uk["rates"]} and "Yanwen" in {
        r["carrierName"] for r in us["rates"]
    }
    assert {r["serviceId"] for r in uk["rates"]} == set(bs.SITE_CARDS["UK"].services)
    assert {
        r["serviceId"]: [x["code"] for x in r["ineligibilityReasons"]] for r in uk["ineligibleRates"]
    } == {s: ["NO_COVERAGE"] for s in bs.SERVICES if s not in bs.SITE_CARDS["UK"].services}
    uk_sizes = {
        (s["size"]["width"], s["size"]["unit"]) for s in uk["rates"][0]["supportedDocumentSpecifications"]
    }
    assert uk_sizes == {(4, "INCH"), (10, "CENTIMETER")}


def test_heavy_parcel_gets_weight_restrictions(spapi, ship):
    body = rates_body(spapi.pick(site="US", where=light))
    body["packages"][0]["weight"] = {"value": 2.2, "unit": "KILOGRAM"}
    payload = ship.rates(body).json()["payload"]
    ineligible = {r["serviceId"]: r["ineligibilityReasons"][0]["code"] for r in payload["ineligibleRates"]}
    assert ineligible == {
        s.service_id: "WEIGHT_RESTRICTIONS" for s in bs.SERVICES.values() if s.max_weight_g < 2200
    }
    # the YunExpress lines carry their small-packet 2 kg limit (as in the YunExpress plugin)
    assert {r["serviceId"] for r in payload["rates"]} == {"YANWEN_EXPRESS", "DHLEC_PPS"}


@pytest.mark.parametrize(
    "site, business, ok",
    [
        ("US", None, False),  # no header = AmazonShipping_UK
        ("US", "AmazonShipping_UK", False),
        ("US", "AmazonShipping_US", True),
        ("CA", "AmazonShipping_US", True),
        ("UK", "AmazonShipping_UK", True),
        ("DE", "AmazonShipping_FR", True),
        ("FR", "AmazonShipping_UK", False),
        ("JP", "AmazonShipping_JP", True),
    ],
)
def test_business_id_must_fit_the_site(spapi, ship, site, business, ok):
    response = ship.rates(rates_body(spapi.pick(site=site, where=light)), business)
    assert (response.status_code == 200) is ok, response.text
    if not ok:
        assert "cannot ship orders of marketplace" in error(response)[1]


def test_unknown_business_id_is_refused(spapi, ship):
    response = ship.rates(rates_body(spapi.pick(site="US", where=light)), "AmazonShipping_DE")
    assert response.status_code == 400 and "is not one of" in error(response)[1]


def test_rates_refusals(start_spapi, ship):
    nordic = start_spapi(sellers=[DEMO, NORDIC])
    nship = Shipping(nordic.for_seller(NORDIC))
    se_order = nordic.for_seller(NORDIC).pick(site="SE", where=light)
    response = nship.rates(rates_body(se_order), "AmazonShipping_UK")
    assert response.status_code == 400 and "not a Buy Shipping marketplace" in error(response)[1]


@pytest.mark.parametrize(
    "mutate, status, message",
    [
        (lambda b, o: b["channelDetails"].update(channelType="EXTERNAL"), 400, "channelType must be AMAZON"),
        (lambda b, o: b["channelDetails"].pop("amazonOrderDetails"), 400, "orderId is required"),
        (
            lambda b, o: b["channelDetails"]["amazonOrderDetails"].update(orderId="111-0000000-0000000"),
            404,
            "was not found",
        ),
        (lambda b, o: b["packages"].append(b["packages"][0]), 400, "single package"),
        (
            lambda b, o: b["packages"][0]["items"][0].update(itemIdentifier="999"),
            400,
            "itemIdentifier 999 is invalid",
        ),
        (lambda b, o: b["packages"][0]["items"][0].pop("itemValue"), 400, "itemValue is required"),
        (lambda b, o: b["packages"][0]["items"][0].pop("itemIdentifier"), 400, "must be the order item id"),
        (
            lambda b, o: b["packages"][0]["items"][0].update(quantity=99),
            400,
            "exceeds the quantity still to ship",
        ),
        (lambda b, o: b.pop("shipFrom"), 400, "shipFrom"),
        (lambda b, o: b["packages"][0]["weight"].update(value=0), 400, "greater than zero"),
    ],
)
def test_rates_validation(spapi, ship, mutate, status, message):
    order = spapi.pick(site="US", where=light)
    body = rates_body(order)
    mutate(body, order)
    response = ship.rates(body)
    assert response.status_code == status, response.text
    assert message in error(response)[1]
    no_violations(spapi)


def test_rates_for_orders_that_cannot_ship(spapi, ship, start_spapi):
    other = start_spapi(sellers=[DEMO, OTHER])
    theirs = other.for_seller(OTHER).pick(site="US", where=light)
    assert Shipping(other).rates(rates_body(theirs)).status_code == 404  # another seller's order
    cancelled = spapi.pick(status="CANCELLED", site=None)
    site = site_for_marketplace(cancelled["salesChannel"]["marketplaceId"])
    body = rates_body(
        cancelled,
        items=[
            {
                "itemIdentifier": cancelled["orderItems"][0]["orderItemId"],
                "quantity": 1,
                "itemValue": {"value": 1, "unit": "USD"},
            }
        ],
    )
    response = ship.rates(body, site)
    assert response.status_code == 400 and "cancelled" in error(response)[1]
    afn = spapi.pick(by="AMAZON", site=None)
    site = site_for_marketplace(afn["salesChannel"]["marketplaceId"])
    response = ship.rates(rates_body(afn), site)
    assert response.status_code == 400 and "fulfilled by Amazon" in error(response)[1]


# -- purchaseShipment ------------------------------------------------------------------------------


def test_purchase_ships_the_order_and_confirms_itself(spapi, ship):
    order = spapi.pick(site="US", where=light)
    reference = f"{order['orderId']}-1"
    bought = ship.buy(order, service="CHINAPOST_EPACKET")
    shipment_id = bought["shipmentId"]
    [detail] = bought["packageDocumentDetails"]
    assert detail["packageClientReferenceId"] == reference
    tracking = detail["trackingId"]
    match = S10.match(tracking)
    assert match and int(match[2]) == bs.s10_check_digit(match[1])
    assert re.match(TRACKING_FORMATS["China Post"], tracking)
    [document] = detail["packageDocuments"]
    assert (document["type"], document["format"]) == ("LABEL", "PDF")
    pdf = base64.b64decode(document["contents"], validate=True)  # plain base64, no gzip
    assert tracking in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()

    after = ship.order(order["orderId"])
    assert after["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert all(it["fulfillment"]["quantityUnfulfilled"] == 0 for it in after["orderItems"])
    [package] = after["packages"]
    assert package["packageReferenceId"] == shipment_id and shipment_id.isdigit()
    assert (package["carrier"], package["trackingNumber"], package["shippingService"]) == (
        "China Post",
        tracking,
        "China Post ePacket",
    )
    assert package["packageStatus"] == {"status": "SHIPPED"}

    state = spapi.state()
    assert order["orderId"] not in state["confirmations"]
    assert state["orders"][order["orderId"]] == "SHIPPED"
    assert state["buy_shipping"][reference] == {
        **state["buy_shipping"][reference],
        "purchased": 1,
        "requests": 1,
        "shipmentId": shipment_id,
        "trackingId": tracking,
        "orderId": order["orderId"],
        "cancelled": False,
    }
    assert state["labels"][reference] == {
        "created": 1,
        "tracking_number": tracking,
        "shipment_id": shipment_id,
        "waybill": shipment_id,
        "cancelled": False,
        "order_id": order["orderId"],
        "waybills": [shipment_id],
    }
    no_violations(spapi)


@pytest.mark.parametrize(
    "service, carrier",
    [("YUNEXPRESS_AYPZXR", "Yun Express"), ("YANWEN_SPECIAL_LINE", "Yanwen"), ("DHLEC_PKD", "DHL eCommerce")],
)
def test_tracking_numbers_have_the_carrier_format(spapi, ship, service, carrier):
    bought = ship.buy(spapi.pick(site="US", where=light), service=service)
    assert re.match(TRACKING_FORMATS[carrier], bought["packageDocumentDetails"][0]["trackingId"])


def test_same_idempotency_key_returns_the_original_shipment(spapi, ship):
    order = spapi.pick(site="US", where=light)
    payload = ship.rates(rates_body(order)).json()["payload"]
    rate = payload["rates"][0]
    first = ship.purchase(payload["requestToken"], rate["rateId"], key="KEY-A")
    again = ship.purchase(payload["requestToken"], rate["rateId"], key="KEY-A")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()  # same shipment, same label bytes
    assert ship.rates(rates_body(order)).status_code == 400  # and nothing is left to rate
    state = spapi.state()["buy_shipping"]["KEY-A"]
    assert (state["purchased"], state["requests"]) == (1, 2)
    assert len(ship.order(order["orderId"])["packages"]) == 1


def test_a_used_token_does_not_buy_twice_under_another_key(spapi, ship):
    order = spapi.pick(site="US", where=light)
    payload = ship.rates(rates_body(order)).json()["payload"]
    assert ship.purchase(payload["requestToken"], payload["rates"][0]["rateId"], key="K1").status_code == 200
    response = ship.purchase(payload["requestToken"], payload["rates"][1]["rateId"], key="K2")
    assert response.status_code == 400 and "already been used" in error(response)[1]
    assert "K2" not in spapi.state()["labels"]


def test_token_expires_after_ten_minutes(spapi, ship):
    order = spapi.pick(site="US", where=light)
    payload = ship.rates(rates_body(order)).json()["payload"]
    spapi.advance(601)
    response = ship.purchase(payload["requestToken"], payload["rates"][0]["rateId"], key="K-EXP")
    assert response.status_code == 400
    assert error(response)[0] == "TOKEN_EXPIRED"
    assert "K-EXP" not in spapi.state()["labels"]
    assert ship.order(order["orderId"])["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    fresh = ship.rates(rates_body(order)).json()["payload"]  # re-rate, same key: bought once
    assert ship.purchase(fresh["requestToken"], fresh["rates"][0]["rateId"], key="K-EXP").status_code == 200
    assert spapi.state()["labels"]["K-EXP"]["created"] == 1
    no_violations(spapi)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.update(requestToken="NOPE"), "requestToken is invalid"),
        (lambda p: p.update(rateId="NOPE"), "is not a rate of this requestToken"),
        (lambda p: p["requestedDocumentSpecification"].update(format="ZPL"), "is not supported by this rate"),
        (
            lambda p: p["requestedDocumentSpecification"]["size"].update(width=5),
            "is not supported by this rate",
        ),
        (
            lambda p: p["requestedDocumentSpecification"].update(requestedDocumentTypes=["PACKSLIP"]),
            "LABEL only",
        ),
        (lambda p: p["requestedDocumentSpecification"].update(dpi=600), "dpi must be one of"),
        (lambda p: p.pop("rateId"), "rateId"),
    ],
)
def test_purchase_refusals(spapi, ship, change, message):
    order = spapi.pick(site="US", where=light)
    payload = ship.rates(rates_body(order)).json()["payload"]
    body = {
        "requestToken": payload["requestToken"],
        "rateId": payload["rates"][0]["rateId"],
        "requestedDocumentSpecification": {**LABEL_4X6, "size": dict(LABEL_4X6["size"])},
    }
    change(body)
    response = requests.post(spapi.url + PURCHASE, json=body, headers=ship.headers(key="K-BAD"), timeout=5)
    assert response.status_code == 400, response.text
    assert message in error(response)[1]
    assert spapi.state()["labels"] == {}
    no_violations(spapi)


def test_another_seller_cannot_use_a_token(start_spapi):
    spapi = start_spapi(sellers=[DEMO, OTHER])
    payload = Shipping(spapi).rates(rates_body(spapi.pick(site="US", where=light))).json()["payload"]
    response = Shipping(spapi.for_seller(OTHER)).purchase(
        payload["requestToken"], payload["rates"][0]["rateId"]
    )
    assert response.status_code == 400 and "requestToken is invalid" in error(response)[1]


def test_items_shipped_since_the_rate_are_not_sold_again(spapi, ship):
    order = spapi.pick(site="US", where=light)
    first = ship.rates(rates_body(order)).json()["payload"]
    second = ship.rates(rates_body(order)).json()["payload"]
    assert ship.purchase(first["requestToken"], first["rates"][0]["rateId"], key="A").status_code == 200
    response = ship.purchase(second["requestToken"], second["rates"][0]["rateId"], key="B")
    assert response.status_code == 400 and "exceeds the quantity still to ship" in error(response)[1]


def test_partially_shipped_order_ships_the_rest(spapi, ship):
    order = spapi.pick(status="PARTIALLY_SHIPPED", site=None)
    site = site_for_marketplace(order["salesChannel"]["marketplaceId"])
    bought = ship.buy(order, site=site, key=f"{order['orderId']}-2")
    after = ship.order(order["orderId"])
    assert after["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [p["packageReferenceId"] for p in after["packages"]] == ["1", bought["shipmentId"]]


def test_confirm_shipment_cannot_edit_a_buy_shipping_package(spapi, ship):
    order = spapi.pick(site="US", where=light)
    bought = ship.buy(order)
    body = {
        "marketplaceId": marketplace_id("US"),
        "packageDetail": {
            "packageReferenceId": bought["shipmentId"],
            "carrierCode": "Yun Express",
            "trackingNumber": "YT1234567890123456",
            "shipDate": "2026-01-02T03:04:05.000Z",
            "orderItems": [{"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 1}],
        },
    }
    response = spapi.confirm(order["orderId"], body)
    assert response.status_code == 400 and "Buy Shipping" in error(response)[1]
    body["packageDetail"]["packageReferenceId"] = "1"
    assert error(spapi.confirm(order["orderId"], body))[0] == "PackageToUpdateNotFound"
    assert spapi.state()["confirmations"] == {}


def test_opaque_package_ids(start_spapi):
    spapi = start_spapi(package_ids="opaque")
    ship = Shipping(spapi)
    order = spapi.pick(site="US", where=light)
    bought = ship.buy(order)
    [package] = ship.order(order["orderId"])["packages"]
    assert re.fullmatch(r"[1-9]\d{9}", package["packageReferenceId"])
    assert package["packageReferenceId"] != bought["shipmentId"]
    assert (
        spapi.state()["buy_shipping"][f"{order['orderId']}-1"]["packageReferenceId"]
        == package["packageReferenceId"]
    )


def test_lost_answer_purchase_took_effect_once(start_spapi):
    spapi = start_spapi(timeout_seconds=1.0)
    ship = Shipping(spapi)
    order = spapi.pick(site="US", where=light)
    payload = ship.rates(rates_body(order)).json()["payload"]
    spapi.set_faults({"timeout": 1.0})
    with pytest.raises(requests.Timeout):
        ship.purchase(payload["requestToken"], payload["rates"][0]["rateId"], key="LOST", timeout=0.3)
    spapi.set_faults({"timeout": 0.0})
    time.sleep(0.8)  # let the delayed answer go
    assert spapi.state()["labels"]["LOST"]["created"] == 1
    package = ship.order(order["orderId"])["packages"][0]
    assert package["trackingNumber"] == spapi.state()["labels"]["LOST"]["tracking_number"]
    # the retry under the same key gets the original
    again = ship.purchase(payload["requestToken"], payload["rates"][0]["rateId"], key="LOST")
    assert again.json()["payload"]["shipmentId"] == spapi.state()["labels"]["LOST"]["shipment_id"]
    assert spapi.state()["buy_shipping"]["LOST"]["purchased"] == 1


def test_5xx_fault_buys_nothing(start_spapi):
    spapi = start_spapi()
    ship = Shipping(spapi)
    order = spapi.pick(site="US", where=light)
    payload = ship.rates(rates_body(order)).json()["payload"]
    spapi.set_faults({"error_5xx": 1.0})
    assert ship.purchase(payload["requestToken"], payload["rates"][0]["rateId"], key="E").status_code in (
        500,
        503,
    )
    spapi.set_faults({"error_5xx": 0.0})
    assert "E" not in spapi.state()["labels"]


# -- documents, tracking, cancel ------------------------------------------------------------------


def test_documents_give_the_same_label_again(spapi, ship, start_spapi):
    order = spapi.pick(site="US", where=light)
    reference = f"{order['orderId']}-1"
    bought = ship.buy(order)
    response = ship.documents(bought["shipmentId"], reference, format="PDF", dpi="300")
    assert response.status_code == 200, response.text
    detail = response.json()["payload"]["packageDocumentDetail"]
    assert detail["packageDocuments"] == bought["packageDocumentDetails"][0]["packageDocuments"]
    assert detail["trackingId"] == bought["packageDocumentDetails"][0]["trackingId"]
    assert error(ship.documents(bought["shipmentId"], "someone-else"))[0] == "InvalidInput"
    assert ship.documents("1", reference).status_code == 404
    assert ship.documents(bought["shipmentId"], reference, format="PNG").status_code == 400
    no_violations(spapi)


def test_documents_of_another_seller_are_not_found(start_spapi):
    spapi = start_spapi(sellers=[DEMO, OTHER])
    order = spapi.pick(site="US", where=light)
    bought = Shipping(spapi).buy(order)
    other = Shipping(spapi.for_seller(OTHER))
    assert other.documents(bought["shipmentId"], f"{order['orderId']}-1").status_code == 404
    tracking = bought["packageDocumentDetails"][0]["trackingId"]
    assert other.tracking(tracking, bought["rate"]["carrierId"]).status_code == 404
    assert other.cancel(bought["shipmentId"]).status_code == 404


def test_tracking_progresses_with_the_clock(start_spapi):
    spapi = start_spapi(token_ttl_seconds=LONG, parcel_outcomes={})  # every parcel delivered on time
    ship = Shipping(spapi)
    bought = ship.buy(spapi.pick(site="US", where=light), service="YUNEXPRESS_AYPZXR")
    tracking, carrier = bought["packageDocumentDetails"][0]["trackingId"], bought["rate"]["carrierId"]
    parcel = spapi.state()["parcels"][tracking]
    assert parcel["aliases"] == [bought["shipmentId"]] and parcel["outcome"] == "delivered"
    emulator = spapi.server.emulator
    at = {step.kind: step.at for step in emulator.parcels.get(tracking).plan()}

    def status(kind: str) -> tuple[str, list[str]]:
        spapi.advance(max(0.0, (at[kind] - emulator.clock.now()).total_seconds() + 1))
        response = ship.tracking(tracking, carrier)
        assert response.status_code == 200, response.text
        payload = response.json()["payload"]
        assert payload["trackingId"] == tracking
        return payload["summary"]["status"], [e["eventCode"] for e in payload["eventHistory"]]

    assert status("info_received") == ("PreTransit", ["ReadyForReceive"])
    assert status("accepted") == ("InTransit", ["ReadyForReceive", "PickupDone"])
    assert status("arrived") == (
        "InTransit",
        ["ReadyForReceive", "PickupDone", "Departed", "ArrivedAtCarrierFacility"],
    )
    assert status("delivered") == (
        "Delivered",
        [
            "ReadyForReceive",
            "PickupDone",
            "Departed",
            "ArrivedAtCarrierFacility",
            "ArrivedAtCarrierFacility",
            "OutForDelivery",
            "Delivered",
        ],
    )
    payload = ship.tracking(tracking, carrier).json()["payload"]
    assert payload["summary"]["trackingDetailCodes"] == {"forward": ["Signed"], "returns": []}
    assert at["delivered"] <= SpApiEmulator.parse_time(payload["promisedDeliveryDate"])
    assert ship.tracking(tracking, "CHINAPOST").status_code == 400
    assert ship.tracking("YT0000000000000000", carrier).status_code == 404
    no_violations(spapi)


def test_a_returned_parcel_comes_back_on_the_returns_leg(start_spapi):
    spapi = start_spapi(token_ttl_seconds=LONG, parcel_outcomes={"returned": 1.0})
    ship = Shipping(spapi)
    bought = ship.buy(spapi.pick(site="US", where=light))
    tracking, carrier = bought["packageDocumentDetails"][0]["trackingId"], bought["rate"]["carrierId"]
    spapi.advance(90 * 86400)
    payload = ship.tracking(tracking, carrier).json()["payload"]
    events = [(e["eventCode"], e.get("shipmentType")) for e in payload["eventHistory"]]
    assert events[-6:] == [("OutForDelivery", None), ("DeliveryAttempted", None), ("Undeliverable", None),
                           ("ReturnInitiated", "RETURNS"), ("Departed", "RETURNS"), ("Delivered", "RETURNS")]
    assert payload["summary"] == {"status": "Undeliverable",
                                  "trackingDetailCodes": {"forward": ["Undeliverable"], "returns": []}}
    assert payload["eventHistory"][-1]["location"]["countryCode"] == "CN"  # back at the sender
    no_violations(spapi)


def test_cancel_before_pickup_refunds_and_removes_the_package(spapi, ship):
    order = spapi.pick(site="US", where=light)
    reference = f"{order['orderId']}-1"
    bought = ship.buy(order)
    response = ship.cancel(bought["shipmentId"])
    assert response.status_code == 200 and response.json() == {"payload": {}}
    assert ship.cancel(bought["shipmentId"]).status_code == 200  # a retry is harmless
    after = ship.order(order["orderId"])
    assert "packages" not in after and after["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    state = spapi.state()
    assert state["labels"][reference]["cancelled"] is True and state["labels"][reference]["created"] == 1
    assert ship.documents(bought["shipmentId"], reference).status_code == 400
    tracked = ship.tracking(bought["packageDocumentDetails"][0]["trackingId"], bought["rate"]["carrierId"])
    assert tracked.json()["payload"]["summary"]["status"] == "PickupCancelled"
    # the same key buys a new label after a cancellation (counted)
    again = ship.buy(order, key=reference)
    assert again["shipmentId"] != bought["shipmentId"]
    assert spapi.state()["labels"][reference]["created"] == 2
    no_violations(spapi)


def test_no_cancel_after_pickup(start_spapi):
    spapi = start_spapi(token_ttl_seconds=LONG, parcel_outcomes={})
    ship = Shipping(spapi)
    order = spapi.pick(site="US", where=light)
    bought = ship.buy(order)
    spapi.advance(24 * 3600 + 1)  # the pickup comes within a day
    response = ship.cancel(bought["shipmentId"])
    assert response.status_code == 400 and "picked up" in error(response)[1]
    assert ship.order(order["orderId"])["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert ship.cancel("89999999999999").status_code == 404


# -- auth, quotas, persistence ---------------------------------------------------------------------


def test_shipping_routes_need_a_token(spapi):
    for method, path in (
        ("POST", RATES),
        ("POST", PURCHASE),
        ("GET", "/shipping/v2/tracking"),
        ("GET", "/shipping/v2/shipments/1/documents"),
        ("PUT", "/shipping/v2/shipments/1/cancel"),
    ):
        response = requests.request(method, spapi.url + path, json={}, timeout=5)
        assert response.status_code == 403, (method, path)


def test_quota_per_operation(start_spapi):
    spapi = start_spapi(quotas={"getRates": {"rate": 0.001, "burst": 2}})
    ship = Shipping(spapi)
    body = rates_body(spapi.pick(site="US", where=light))
    assert [ship.rates(body).status_code for _ in range(3)] == [200, 200, 429]
    assert spapi.state()["buy_shipping_rate_requests"] == 2


def test_buy_shipping_state_survives_a_restart(start_spapi, tmp_path):
    path = str(tmp_path / "spapi.json")
    spapi = start_spapi(state_file=path, orders_per_seller=30)
    order = spapi.pick(site="US", where=light)
    bought = Shipping(spapi).buy(order)
    reloaded = spapi_emulator({"state_file": path, "orders_per_seller": 30})
    state = reloaded.state()
    assert state["labels"][f"{order['orderId']}-1"]["shipment_id"] == bought["shipmentId"]
    assert state["orders"][order["orderId"]] == "SHIPPED"
    reference = f"{order['orderId']}-1"
    [extension] = [e for e in reloaded.extensions if isinstance(e, BuyShippingEmulator)]
    shipment = extension.package_shipment(order["orderId"], bought["shipmentId"])
    assert shipment["packageClientReferenceId"] == reference
