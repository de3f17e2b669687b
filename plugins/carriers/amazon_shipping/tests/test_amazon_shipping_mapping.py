"""Pure mapping: the reference contract, request bodies validated against Amazon's model, rate
choice, labels, tracking; and the Shipping API helpers (``api``)."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from amazon_shipping_testkit import ORDER_ID, REFERENCE, SELLER, api_order, make_request
from mfn_carrier_amazon_shipping import api, mapping
from mfn_carrier_amazon_shipping.sandbox import request_problems as validate_request

from connector.kit import Address, Money, TrackingStatus
from connector.kit.sandbox import make_label_pdf


def test_reference_contract():
    assert mapping.parse_reference("111-1234567-1234567-1") == ("111-1234567-1234567", "1")
    assert mapping.parse_reference(" 203-0000001-0000002-12 ") == ("203-0000001-0000002", "12")
    for bad in ("111-1234567-1234567", "111-1234567-1234567-0", "PKG-1", "111-123456-1234567-1", None):
        with pytest.raises(mapping.MappingError):
            mapping.parse_reference(bad)  # type: ignore[arg-type]


def test_rates_body_validates_against_the_model():
    request = make_request(lines=(("PHONE-CASE-01", 2), ("USB-CABLE-1M", 1)), weight_g=480)
    order = api_order(
        items=(("A1", "PHONE-CASE-01", 1, 1), ("A2", "PHONE-CASE-01", 3, 1), ("B1", "USB-CABLE-1M", 2, 2))
    )
    lines = mapping.order_item_lines(order, request)
    assert [(line.order_item_id, line.quantity) for line in lines] == [("A1", 1), ("A2", 1), ("B1", 1)]
    body = api.rates_body(
        order_id=ORDER_ID,
        ship_from=mapping.address_body(SELLER),
        package=mapping.package_body(request, lines),
    )
    assert validate_request("getRates", body=body) == []
    package = body["packages"][0]
    assert package["insuredValue"] == {"value": 13.5, "unit": "USD"}
    assert sum(i["quantity"] for i in package["items"]) == 3
    assert body["shipFrom"] == {
        "name": "Li Wei",
        "addressLine1": "8 Keji South Road",
        "city": "Shenzhen",
        "stateOrRegion": "Guangdong",
        "postalCode": "518057",
        "countryCode": "CN",
        "addressLine2": "Nanshan",
        "companyName": "Shenzhen Demo Trading Co., Ltd.",
        "phoneNumber": "+86 755 0000 0000",
    }
    from datetime import datetime, timezone

    dated = api.rates_body(
        order_id=ORDER_ID,
        ship_from=body["shipFrom"],
        package=package,
        ship_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    assert dated["shipDate"] == "2026-01-02T03:04:05.000Z" and validate_request("getRates", body=dated) == []


def test_items_already_shipped_or_unknown():
    request = make_request(lines=(("PHONE-CASE-01", 2),))
    with pytest.raises(mapping.NoLongerToShip):
        mapping.order_item_lines(api_order(items=(("A1", "PHONE-CASE-01", 2, 1),)), request)
    with pytest.raises(mapping.MappingError, match="not an item") as caught:
        mapping.order_item_lines(api_order(items=(("A1", "OTHER", 2, 2),)), request)
    assert not isinstance(caught.value, mapping.NoLongerToShip)


def test_ship_from_needs_an_address():
    with pytest.raises(mapping.MappingError, match="line1, city"):
        mapping.address_body(Address(name="x", country_code="CN"))
    assert (
        mapping.address_body(Address(company="Co", line1="l", city="Yiwu", country_code="cn"))["name"] == "Co"
    )


def test_purchase_body_validates_against_the_model():
    body = api.purchase_body(
        request_token="T", rate_id="R", label_size={"width": 10, "length": 15, "unit": "CENTIMETER"}, dpi=300
    )
    assert validate_request("purchaseShipment", body=body) == []
    assert body["requestedDocumentSpecification"]["dpi"] == 300
    with pytest.raises(ValueError):
        api.purchase_body(request_token="", rate_id="R")


def _rates(*pairs: tuple[str, float]) -> dict:
    return {
        "rates": [
            {"rateId": f"R-{s}", "serviceId": s, "totalCharge": {"value": v, "unit": "USD"}} for s, v in pairs
        ],
        "ineligibleRates": [
            {"serviceId": "X", "ineligibilityReasons": [{"code": "NO_COVERAGE", "message": "not here"}]}
        ],
    }


def test_select_rate():
    payload = _rates(("A", 5.0), ("B", 3.0), ("C", 3.0))
    assert (
        mapping.select_rate(payload, "", rate_choice="service", allowed=["A", "B", "C"])["serviceId"] == "B"
    )
    assert (
        mapping.select_rate(payload, "cheapest", rate_choice="service", allowed=["A", "C"])["serviceId"]
        == "C"
    )
    assert mapping.select_rate(payload, "A", rate_choice="service", allowed=["B"])["serviceId"] == "A"
    assert mapping.select_rate(payload, "A", rate_choice="cheapest", allowed=["A", "B"])["serviceId"] == "B"
    with pytest.raises(mapping.MappingError, match="NO_COVERAGE: not here"):
        mapping.select_rate(payload, "X", rate_choice="service", allowed=["X"])
    with pytest.raises(mapping.MappingError, match="offered: A, B, C"):
        mapping.select_rate(payload, "Z", rate_choice="service", allowed=["Z"])
    with pytest.raises(mapping.MappingError, match="allowed services"):
        mapping.select_rate(payload, "", rate_choice="service", allowed=["Z"])


def test_labels_are_plain_base64():
    pdf = make_label_pdf(["x"])
    payload = {
        "shipmentId": "1",
        "packageDocumentDetails": [
            {
                "packageClientReferenceId": REFERENCE,
                "trackingId": "T",
                "packageDocuments": [
                    {"type": "LABEL", "format": "PDF", "contents": base64.b64encode(pdf).decode()}
                ],
            }
        ],
    }
    shipment, label = mapping.shipment_from_purchase(payload, REFERENCE, "S")
    assert label == pdf and (shipment.carrier_shipment_id, shipment.tracking_number) == ("1", "T")
    assert api.decode_contents(base64.encodebytes(pdf).decode()) == pdf
    for bad in ("", "@@@", None):
        with pytest.raises(ValueError):
            api.decode_contents(bad)  # type: ignore[arg-type]
    payload["packageDocumentDetails"][0]["packageDocuments"][0]["format"] = "ZPL"
    with pytest.raises(mapping.MappingError, match="not PDF"):
        mapping.shipment_from_purchase(payload, REFERENCE, "S")
    with pytest.raises(mapping.MappingError, match="without shipmentId"):
        mapping.shipment_from_purchase({"packageDocumentDetails": []}, REFERENCE, "S")


@pytest.mark.parametrize(
    "summary, status",
    [
        ("PreTransit", TrackingStatus.PENDING),
        ("InTransit", TrackingStatus.IN_TRANSIT),
        ("OutForDelivery", TrackingStatus.OUT_FOR_DELIVERY),
        ("Delivered", TrackingStatus.DELIVERED),
        ("DeliveryAttempted", TrackingStatus.FAILED_ATTEMPT),
        ("AwaitingCustomerPickup", TrackingStatus.FAILED_ATTEMPT),
        ("Rejected", TrackingStatus.RETURNING),  # on the way back until the RETURNS leg is delivered
        ("Undeliverable", TrackingStatus.RETURNING),
        ("PickupCancelled", TrackingStatus.CANCELLED),
        ("Lost", TrackingStatus.UNKNOWN),
    ],
)
def test_every_summary_status_is_mapped(summary, status):
    info = mapping.tracking_info({"summary": {"status": summary}, "eventHistory": []}, "T")
    assert info.status == status


def test_tracking_without_summary_uses_the_last_event():
    info = mapping.tracking_info(
        {
            "eventHistory": [
                {"eventCode": "OutForDelivery", "eventTime": "2026-01-02T00:00:00Z"},
                {"eventCode": "Departed", "eventTime": "2026-01-01T00:00:00Z"},
                {"eventCode": "Weird", "eventTime": "not a time"},
            ]
        },
        "T",
    )
    assert info.status == TrackingStatus.OUT_FOR_DELIVERY and len(info.events) == 2


def test_the_returns_leg_and_the_first_scan_say_more_than_the_summary():
    def info(summary: str, *events: tuple[str, str | None]) -> Any:
        history = [{"eventCode": code, "eventTime": f"2026-01-0{i + 1}T00:00:00Z",
                    **({"shipmentType": leg} if leg else {})} for i, (code, leg) in enumerate(events)]
        return mapping.tracking_info({"summary": {"status": summary}, "eventHistory": history}, "T")

    returning = info("Undeliverable", ("DeliveryAttempted", None), ("Undeliverable", None),
                     ("ReturnInitiated", "RETURNS"), ("Departed", "RETURNS"))
    assert returning.status == TrackingStatus.RETURNING
    assert [e.status for e in returning.events][-2:] == [TrackingStatus.RETURNING] * 2
    assert returning.events[-1].description_en == "Return to the sender: departed the origin facility"
    returned = info("Undeliverable", ("Undeliverable", None), ("Delivered", "RETURNS"))
    assert returned.status == TrackingStatus.RETURNED
    assert returned.events[-1].description == returned.events[-1].description_en == "Returned to the sender"
    picked_up = info("InTransit", ("ReadyForReceive", None), ("PickupDone", None))
    assert picked_up.status == TrackingStatus.ACCEPTED
    assert info("InTransit", ("PickupDone", None), ("Departed", None)).status == TrackingStatus.IN_TRANSIT
    assert info("Delivered", ("Delivered", None)).events[0].description_en == "Delivered"


def test_every_model_status_and_event_code_is_mapped():
    import json

    from mfn_carrier_amazon_shipping.sandbox import MODEL

    model = json.loads(MODEL.read_text(encoding="utf-8"))["definitions"]
    assert set(model["Status"]["enum"]) == set(mapping.SUMMARY_STATUS)
    assert set(model["EventCode"]["enum"]) == set(mapping.EVENT_STATUS)


def test_quotes_and_transit_days():
    rate = {
        "serviceId": "A",
        "totalCharge": {"value": 2, "unit": "GBP"},
        "promise": {
            "pickupWindow": {"start": "2026-01-01T00:00:00Z"},
            "deliveryWindow": {"end": "2026-01-08T06:00:00Z"},
        },
    }
    [quote] = mapping.quotes_from_rates(
        {"rates": [rate, {**rate, "serviceId": "B"}]}, services=["A"], tracking_levels={"A": "fully_tracked"}
    )
    assert (quote.price.amount, quote.price.currency, quote.transit_days) == (Decimal("2"), "GBP", 8)
    assert mapping.transit_days({"promise": {}}) is None


def test_quotes_carry_the_billed_weight_and_the_handling_rate_items():
    rate = {
        "serviceId": "A",
        "totalCharge": {"value": 12.5, "unit": "USD"},
        "billedWeight": {"value": 0.75, "unit": "KILOGRAM"},
        "rateItemList": [
            {"rateItemID": "BASE_RATE", "rateItemType": "MANDATORY",
             "rateItemCharge": {"value": 10.4, "unit": "USD"}},
            {"rateItemID": "TRANSACTION_FEE", "rateItemCharge": {"value": 1.25, "unit": "USD"}},
            {"rateItemID": "WAYBILL_CHARGE", "rateItemCharge": {"value": 0.35, "unit": "USD"}},
            {"rateItemID": "FUEL_SURCHARGE", "rateItemCharge": {"value": 0.5, "unit": "USD"}},
        ],
    }
    [quote] = mapping.quotes_from_rates({"rates": [rate]}, services=["A"], tracking_levels={},
                                        handling_items=["TRANSACTION_FEE", "WAYBILL_CHARGE"])
    # 1.25 + 0.35 = 1.60 of the 12.50; 0.75 kg = 750 g
    assert quote.handling_fee == Money(Decimal("1.60"), "USD") and quote.chargeable_weight_g == 750
    [fuel_too] = mapping.quotes_from_rates({"rates": [rate]}, services=["A"], tracking_levels={},
                                           handling_items=["TRANSACTION_FEE", "FUEL_SURCHARGE"])
    assert fuel_too.handling_fee == Money(Decimal("1.75"), "USD")
    # items listed but none of them handling: a breakdown with no handling fee
    [none_listed] = mapping.quotes_from_rates({"rates": [rate]}, services=["A"], tracking_levels={},
                                              handling_items=["COD"])
    assert none_listed.handling_fee == Money(Decimal("0"), "USD")


@pytest.mark.parametrize(("weight", "grams"), [
    ({"value": 250, "unit": "GRAM"}, 250),
    ({"value": 1.2345, "unit": "KILOGRAM"}, 1235),  # 1234.5 g, half up
    ({"value": 8, "unit": "OUNCE"}, 227),  # 226.796 g
    ({"value": 1, "unit": "POUND"}, 454),  # 453.592 g
    ({"value": 1, "unit": "STONE"}, None),
    ({"value": "heavy", "unit": "GRAM"}, None),
    (None, None),
])
def test_billed_weight_in_grams(weight, grams):  # noqa: ANN001
    assert mapping.billed_weight_g({"billedWeight": weight} if weight else {}) == grams


def test_a_rate_without_a_breakdown_has_no_handling_fee_nor_chargeable_weight():
    rate = {"serviceId": "A", "totalCharge": {"value": 3, "unit": "GBP"}}
    [quote] = mapping.quotes_from_rates({"rates": [rate]}, services=["A"], tracking_levels={},
                                        handling_items=["TRANSACTION_FEE"])
    assert quote.handling_fee is None and quote.chargeable_weight_g is None
    # an item in another currency than the total: no breakdown rather than a wrong one
    usd_fee = {"rateItemID": "TRANSACTION_FEE", "rateItemCharge": {"value": 1, "unit": "USD"}}
    odd = {**rate, "rateItemList": [usd_fee]}
    assert mapping.handling_fee(odd, ["TRANSACTION_FEE"], "GBP") is None


def test_handling_rate_items_setting_is_the_models_rate_item_ids():
    import json

    from mfn_carrier_amazon_shipping.sandbox import MODEL
    from mfn_carrier_amazon_shipping.settings import DEFAULT_HANDLING_RATE_ITEMS, RATE_ITEM_IDS, SCHEMA

    model = json.loads(MODEL.read_text(encoding="utf-8"))["definitions"]
    assert set(RATE_ITEM_IDS) == set(model["RateItemID"]["enum"])
    setting = SCHEMA["properties"]["handling_rate_items"]
    assert setting["default"] == list(DEFAULT_HANDLING_RATE_ITEMS) == ["TRANSACTION_FEE", "WAYBILL_CHARGE"]
    assert "UNVERIFIED" in setting["description"]
    # IOSS: the model's TaxDetail knows GST only, so the plugin sends no IOSS number
    assert model["TaxType"]["enum"] == ["GST"]


# -- api: the Shipping API helpers ---------------------------------------------------------------


def test_business_ids():
    assert api.business_id_for_site("gb") == "AmazonShipping_UK"
    assert api.business_id_for_site("US") == "AmazonShipping_US"
    assert api.business_id_for_site("DE", {"DE": "AmazonShipping_IT"}) == "AmazonShipping_IT"
    assert set(api.BUSINESS_IDS.values()) <= set(api.BUSINESS_ID_VALUES)
    with pytest.raises(ValueError, match="no x-amzn-shipping-business-id"):
        api.business_id_for_site("SE")
    with pytest.raises(ValueError, match="not one of"):
        api.business_id_for_site("US", {"US": "AmazonShipping_DE"})
    with pytest.raises(ValueError, match="needs business_id or site"):
        api.resolve_business_id(None, None)


def test_quotas_and_business_ids_are_the_models():
    import json
    import re

    from mfn_carrier_amazon_shipping.sandbox import MODEL

    doc = json.loads(MODEL.read_text(encoding="utf-8"))
    plan = re.compile(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|\s*$", re.M)  # the "Usage Plan" table row
    plans = {}
    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") in api.QUOTAS:
                rate, burst = plan.search(op["description"]).groups()
                plans[op["operationId"]] = (float(rate), int(burst))
    assert plans == api.QUOTAS
    header = next(p for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)
                  for p in op.get("parameters", []) if p.get("name") == api.BUSINESS_ID_HEADER)
    assert set(header["enum"]) == set(api.BUSINESS_ID_VALUES)
    assert "default is AmazonShipping_UK" in header["description"]


def test_answers_in_an_unexpected_shape_are_malformed_not_crashes_nor_refusals():
    """A garbled answer is the answer's fault (asked again), never an AttributeError from deep
    inside nor a permanent 'not an item of the order'."""
    request = make_request(lines=(("PHONE-CASE-01", 1),))
    garbled = api_order()
    del garbled["orderItems"][0]["product"]["sellerSku"]
    with pytest.raises(mapping.MalformedAnswer, match=r"orderItems\[0\] has no product.sellerSku"):
        mapping.order_item_lines(garbled, request)
    counted = api_order()
    counted["orderItems"][0]["fulfillment"]["quantityUnfulfilled"] = "lots"
    with pytest.raises(mapping.MalformedAnswer, match="order_item_lines: .*ValueError"):
        mapping.order_item_lines(counted, request)
    for payload in ({"shipmentId": "1", "packageDocumentDetails": ["LABEL"]},
                    {"shipmentId": "1", "packageDocumentDetails": [{"packageDocuments": [None]}]}):
        with pytest.raises(mapping.MalformedAnswer, match="shipment_from_purchase: .*AttributeError"):
            mapping.shipment_from_purchase(payload, REFERENCE, "S")
    with pytest.raises(mapping.MalformedAnswer, match="tracking_info"):
        mapping.tracking_info({"eventHistory": ["Delivered"]}, "T")
    with pytest.raises(mapping.MalformedAnswer, match="select_rate"):
        mapping.select_rate({"rates": 5}, "S", rate_choice="service", allowed=["S"])
