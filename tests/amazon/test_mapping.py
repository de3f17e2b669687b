from __future__ import annotations

import copy
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from connector.amazon.mapping import confirm_shipment_body, order_from_api, package_from_api, parse_api_time
from connector.amazon.sites import (
    LWA_TOKEN_URL,
    REGION_HOSTS,
    SITES,
    endpoint_for_site,
    marketplace_id,
    site_for_marketplace,
)
from connector.model import Address, FulfillmentStatus, Money, Order


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


FULL_ORDER: dict[str, Any] = {
    "orderId": "113-1234567-7654321",
    "orderAliases": [{"aliasId": "ERP-1", "aliasType": "SELLER_ORDER_ID"}],
    "createdTime": "2026-02-27T23:10:00Z",
    "lastUpdatedTime": "2026-02-28T01:02:03.456Z",
    "programs": ["PRIME", "SOME_FUTURE_PROGRAM"],
    "salesChannel": {
        "channelName": "AMAZON",
        "marketplaceId": "ATVPDKIKX0DER",
        "marketplaceName": "Amazon.com",
    },
    "buyer": {"buyerName": "Jane Doe", "buyerEmail": "abc123@marketplace.amazon.com"},
    "recipient": {
        "deliveryAddress": {
            "name": "Jane Doe",
            "companyName": "Doe Widgets LLC",
            "addressLine1": "410 Terry Ave N",
            "addressLine2": "Floor 3",
            "addressLine3": "Attn: receiving",
            "city": "Seattle",
            "districtOrCounty": "King",
            "stateOrRegion": "WA",
            "municipality": "",
            "postalCode": "98109-5210",
            "countryCode": "US",
            "phone": "+1 206-555-0100",
            "addressType": "COMMERCIAL",
            "extendedFields": {"streetName": "Terry Ave N", "streetNumber": "410"},
        }
    },
    "proceeds": {"grandTotal": {"amount": "42.50", "currencyCode": "USD"}},
    "fulfillment": {
        "fulfillmentStatus": "UNSHIPPED",
        "fulfilledBy": "MERCHANT",
        "fulfillmentServiceLevel": "STANDARD",
        "shipByWindow": {
            "earliestDateTime": "2026-02-28T00:00:00Z",
            "latestDateTime": "2026-03-02T07:59:59Z",
        },
        "deliverByWindow": {
            "earliestDateTime": "2026-03-10T00:00:00Z",
            "latestDateTime": "2026-03-20T07:59:59Z",
        },
    },
    "orderItems": [
        {
            "orderItemId": "12345678901234",
            "quantityOrdered": 2,
            "product": {
                "asin": "B0TESTASIN",
                "title": "USB-C cable 1m",
                "sellerSku": "CABLE-1M",
                "condition": {"conditionType": "NEW"},
                "price": {"unitPrice": {"amount": "12.25", "currencyCode": "USD"}},
            },
            "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": 2},
        },
        {
            "orderItemId": "12345678901235",
            "quantityOrdered": 1,
            "product": {
                "asin": "B0TESTASI2",
                "title": "Charger",
                "sellerSku": "CHARGER-20W",
                "price": {"unitPrice": {"amount": "18.00", "currencyCode": "USD"}},
            },
            "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": 1},
        },
    ],
    "packages": [],
}


def order(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(FULL_ORDER)
    raw.update(changes)
    return raw


def test_full_order() -> None:
    o = order_from_api(order(), account="acme-us")
    assert isinstance(o, Order)
    assert (o.order_id, o.account, o.marketplace_id, o.site) == (
        "113-1234567-7654321",
        "acme-us",
        "ATVPDKIKX0DER",
        "US",
    )
    assert o.status is FulfillmentStatus.UNSHIPPED
    assert o.last_updated == datetime(2026, 2, 28, 1, 2, 3, 456000, tzinfo=timezone.utc)
    assert o.created == utc(2026, 2, 27, 23, 10)
    assert o.ship_by == utc(2026, 3, 2, 7, 59, 59)
    assert o.deliver_by == utc(2026, 3, 20, 7, 59, 59)
    assert o.total == Money(Decimal("42.50"), "USD")
    assert isinstance(o.total.amount, Decimal) and str(o.total.amount) == "42.50"
    assert o.programs == ("PRIME", "SOME_FUTURE_PROGRAM")
    assert o.ship_to == Address(
        name="Jane Doe",
        line1="410 Terry Ave N",
        line2="Floor 3",
        line3="Attn: receiving",
        city="Seattle",
        state="WA",
        postal_code="98109-5210",
        country_code="US",
        phone="+1 206-555-0100",
        email="abc123@marketplace.amazon.com",
        company="Doe Widgets LLC",
        district="King",
    )
    assert o.ship_to.missing_fields() == []
    first, second = o.items
    assert (first.order_item_id, first.sku, first.asin, first.title) == (
        "12345678901234",
        "CABLE-1M",
        "B0TESTASIN",
        "USB-C cable 1m",
    )
    assert (first.quantity, first.quantity_shipped) == (2, 0)
    assert first.unit_price == Money(Decimal("12.25"), "USD")
    assert first.ioss_number == ""
    assert (second.sku, second.quantity) == ("CHARGER-20W", 1)
    assert o.buyer_cancel_requested is False
    assert o.shipped_package_refs == ()
    # the model can persist what the mapping produced
    assert Order.from_dict(o.to_dict(), ship_to=o.ship_to) == o


def test_partially_shipped_order() -> None:
    raw = order(fulfillment={"fulfillmentStatus": "PARTIALLY_SHIPPED"})
    raw["orderItems"][0]["quantityOrdered"] = 3
    raw["orderItems"][0]["fulfillment"] = {"quantityFulfilled": 1, "quantityUnfulfilled": 2}
    raw["orderItems"][1]["quantityOrdered"] = 4
    raw["orderItems"][1]["fulfillment"] = {"quantityFulfilled": 1}  # no quantityUnfulfilled: 4 - 1
    raw["packages"] = [
        {
            "packageReferenceId": "1",
            "carrier": "YunExpress",
            "trackingNumber": "YT1",
            "packageStatus": {"status": "IN_TRANSIT"},
            "packageItems": [{"orderItemId": "12345678901234", "quantity": 1}],
        },
        {"packageReferenceId": "2", "carrier": "Yanwen", "trackingNumber": "UG2"},
    ]
    o = order_from_api(raw, account="a")
    assert o.status is FulfillmentStatus.PARTIALLY_SHIPPED
    assert [(i.quantity, i.quantity_shipped) for i in o.items] == [(2, 1), (3, 1)]
    assert o.shipped_package_refs == ("1", "2")


def test_quantities_without_a_fulfillment_section() -> None:
    raw = order()
    del raw["fulfillment"]
    for item in raw["orderItems"]:
        del item["fulfillment"]
    o = order_from_api(raw, account="a")
    assert o.status is FulfillmentStatus.OTHER
    assert [(i.quantity, i.quantity_shipped) for i in o.items] == [(2, 0), (1, 0)]
    assert o.ship_by is None and o.deliver_by is None


def test_missing_address() -> None:
    raw = order()
    del raw["recipient"]
    assert order_from_api(raw, account="a").ship_to is None
    # without the PII role Amazon sends only the non-restricted parts
    raw["recipient"] = {
        "deliveryAddress": {
            "city": "Canton",
            "stateOrRegion": "MI",
            "postalCode": "48817",
            "countryCode": "US",
        }
    }
    ship_to = order_from_api(raw, account="a").ship_to
    assert ship_to is not None and ship_to.missing_fields() == ["name", "line1"]
    raw["recipient"] = {"deliveryAddress": {}}
    assert order_from_api(raw, account="a").ship_to is None


def test_buyer_cancel_request() -> None:
    raw = order()
    raw["orderItems"][1]["cancellation"] = {
        "cancellationRequest": {"requester": "BUYER", "cancelReason": "Ordered by mistake"}
    }
    assert order_from_api(raw, account="a").buyer_cancel_requested is True
    raw["orderItems"][1]["cancellation"] = {"cancellationExecution": {"cancelledBy": "MERCHANT"}}
    assert order_from_api(raw, account="a").buyer_cancel_requested is False


def test_ioss_number_on_an_eu_order() -> None:
    raw = order(
        salesChannel={"channelName": "AMAZON", "marketplaceId": "A1PA6795UKMFR9"},
        proceeds={"grandTotal": {"amount": "89.99", "currencyCode": "EUR"}},
    )
    raw["orderItems"][0]["fulfillment"]["shipping"] = {
        "internationalShipping": {"iossNumber": "IM2760000742"}
    }
    o = order_from_api(raw, account="acme-eu")
    assert o.site == "DE"
    assert o.total == Money(Decimal("89.99"), "EUR")
    assert [i.ioss_number for i in o.items] == ["IM2760000742", ""]


def test_uk_marketplace_maps_to_site_uk() -> None:
    raw = order(salesChannel={"channelName": "AMAZON", "marketplaceId": "A1F83G8C2ARO7P"})
    assert order_from_api(raw, account="a").site == "UK"


def test_non_latin_strings_are_kept_exactly() -> None:
    raw = order(salesChannel={"channelName": "AMAZON", "marketplaceId": "A1VC38T7YXB528"})
    raw["recipient"] = {
        "deliveryAddress": {
            "name": "山田 太郎",
            "addressLine1": "渋谷区道玄坂1-2-3",
            "addressLine2": "渋谷マークシティ 4F",
            "city": "渋谷区",
            "stateOrRegion": "東京都",
            "postalCode": "150-0043",
            "countryCode": "JP",
            "phone": "03-1234-5678",
        }
    }
    raw["orderItems"][0]["product"]["title"] = "Echo Dot (第4世代) スマートスピーカー — «Ünïcødé» العربية"
    o = order_from_api(raw, account="a")
    assert o.site == "JP"
    assert o.ship_to.name == "山田 太郎"
    assert o.ship_to.line1 == "渋谷区道玄坂1-2-3"
    assert o.ship_to.state == "東京都"
    assert o.items[0].title == "Echo Dot (第4世代) スマートスピーカー — «Ünïcødé» العربية"


@pytest.mark.parametrize(
    "status, expected",
    [
        ("UNSHIPPED", FulfillmentStatus.UNSHIPPED),
        ("PARTIALLY_SHIPPED", FulfillmentStatus.PARTIALLY_SHIPPED),
        ("SHIPPED", FulfillmentStatus.SHIPPED),
        ("CANCELLED", FulfillmentStatus.CANCELLED),
        ("PENDING", FulfillmentStatus.PENDING),
        ("PENDING_AVAILABILITY", FulfillmentStatus.PENDING),
        ("UNFULFILLABLE", FulfillmentStatus.OTHER),
        ("A_STATUS_AMAZON_ADDS_IN_2027", FulfillmentStatus.OTHER),
    ],
)
def test_status_mapping_is_lenient(status: str, expected: FulfillmentStatus) -> None:
    raw = order(fulfillment={"fulfillmentStatus": status})
    assert order_from_api(raw, account="a").status is expected


def test_unknown_fields_and_sections_are_ignored() -> None:
    raw = order(someNewSection={"x": [1, 2]}, payment=None, tax={"weird": True})
    raw["orderItems"][0]["newItemThing"] = {"y": 1}
    assert order_from_api(raw, account="a").order_id == "113-1234567-7654321"


def _without(path: list[Any]) -> dict[str, Any]:
    raw = order()
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return raw


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            _without(["orderItems", 1, "orderItemId"]),
            "order 113-1234567-7654321: orderItems[1].orderItemId is missing",
        ),
        (_without(["orderId"]), "order <unknown>: orderId is missing"),
        (_without(["lastUpdatedTime"]), "order 113-1234567-7654321: lastUpdatedTime is missing"),
        (
            _without(["salesChannel", "marketplaceId"]),
            "order 113-1234567-7654321: salesChannel.marketplaceId is missing",
        ),
        (_without(["salesChannel"]), "order 113-1234567-7654321: salesChannel.marketplaceId is missing"),
        (_without(["orderItems"]), "order 113-1234567-7654321: orderItems is missing"),
        (order(orderItems=[]), "order 113-1234567-7654321: orderItems is empty"),
        (
            _without(["orderItems", 0, "quantityOrdered"]),
            "order 113-1234567-7654321: orderItems[0].quantityOrdered is missing",
        ),
        (
            _without(["orderItems", 0, "product", "sellerSku"]),
            "order 113-1234567-7654321: orderItems[0].product.sellerSku is missing",
        ),
        (
            _without(["orderItems", 0, "product"]),
            "order 113-1234567-7654321: orderItems[0].product.sellerSku is missing",
        ),
    ],
)
def test_missing_required_field_names_the_field_and_the_order(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        order_from_api(raw, account="a")
    assert str(info.value) == message


@pytest.mark.parametrize(
    "change, fragment",
    [
        (
            {"salesChannel": {"channelName": "AMAZON", "marketplaceId": "XXNOTAMARKET"}},
            "salesChannel.marketplaceId 'XXNOTAMARKET' is not a known marketplace",
        ),
        ({"lastUpdatedTime": "yesterday"}, "lastUpdatedTime is not an ISO 8601 time"),
        (
            {"proceeds": {"grandTotal": {"amount": "12,50", "currencyCode": "EUR"}}},
            "proceeds.grandTotal.amount is not a decimal number",
        ),
        (
            {"proceeds": {"grandTotal": {"amount": "12.50", "currencyCode": "EURO"}}},
            "proceeds.grandTotal.currencyCode is not an ISO 4217 code",
        ),
    ],
)
def test_garbled_values_name_the_field(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match="order 113-1234567-7654321: " + fragment):
        order_from_api(order(**change), account="a")


def _ship_by(value: str) -> dict[str, Any]:
    raw = order()
    raw["fulfillment"]["shipByWindow"]["latestDateTime"] = value
    return raw


@pytest.mark.parametrize(("raw", "fragment"), [
    # Well-formed placeholders that overflowed when stored in UTC, failing the account's whole poll.
    (_ship_by("9999-12-31T23:59:59-05:00"),
     r"fulfillment.shipByWindow.latestDateTime is out of range \(years 1970-2199\)"),
    (_ship_by("0001-01-01T00:00:00+05:00"), r"fulfillment.shipByWindow.latestDateTime is out of range"),
    (order(proceeds={"grandTotal": {"amount": "1E+999990", "currencyCode": "USD"}}),
     r"proceeds.grandTotal.amount is out of range \(0 to 1,000,000,000,000\): '1E\+999990'"),
    (order(proceeds={"grandTotal": {"amount": "-50.00", "currencyCode": "USD"}}),
     r"proceeds.grandTotal.amount is out of range"),
])
def test_values_out_of_range_name_the_field(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match="order 113-1234567-7654321: " + fragment):
        order_from_api(raw, account="a")


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("product.price.unitPrice", {"amount": "-50.00", "currencyCode": "USD"},
     r"product.price.unitPrice.amount is out of range"),
    ("quantityOrdered", 10**12, r"quantityOrdered is out of range \(at most 100,000\)"),
    ("fulfillment", {"quantityFulfilled": 0, "quantityUnfulfilled": 9},
     r"fulfillment.quantityUnfulfilled is 9, more than quantityOrdered \(1\)"),
    ("fulfillment", {"quantityFulfilled": 5, "quantityUnfulfilled": 0},
     r"fulfillment.quantityFulfilled is 5, more than quantityOrdered \(1\)"),
])
def test_item_values_that_cannot_be_so_are_refused_before_a_label_is_bought(field, value, fragment) -> None:
    """A line Amazon says has 9 units to ship of 1 ordered would buy a label for 9 (weight, customs)
    that confirmShipment then refuses."""
    raw = order()
    item = raw["orderItems"][0]
    if field == "fulfillment":
        item["quantityOrdered"] = 1
    if field == "product.price.unitPrice":
        item["product"]["price"]["unitPrice"] = value
    else:
        item[field] = value
    with pytest.raises(ValueError, match=r"orderItems\[0\]." + fragment):
        order_from_api(raw, account="a")


@pytest.mark.parametrize("quantity", ["two", "²"])  # "²" is a digit to str.isdigit, not to int()
def test_garbled_quantity_names_the_item(quantity: str) -> None:
    raw = order()
    raw["orderItems"][1]["quantityOrdered"] = quantity
    with pytest.raises(ValueError, match=r"orderItems\[1\].quantityOrdered must be an integer"):
        order_from_api(raw, account="a")


def test_incomplete_money_is_treated_as_absent() -> None:
    raw = order(proceeds={"grandTotal": {"currencyCode": "USD"}})  # amount withheld while PENDING
    del raw["orderItems"][0]["product"]["price"]
    o = order_from_api(raw, account="a")
    assert o.total is None and o.items[0].unit_price is None


def test_package_from_api() -> None:
    raw = order(
        packages=[
            {"packageReferenceId": "1", "carrier": "YunExpress", "trackingNumber": "YT1"},
            {"packageReferenceId": "2", "carrier": "Yanwen", "trackingNumber": "UG2"},
        ]
    )
    assert package_from_api(raw, "2") == {
        "packageReferenceId": "2",
        "carrier": "Yanwen",
        "trackingNumber": "UG2",
    }
    assert package_from_api(raw, "3") is None
    assert package_from_api(order(), "1") is None
    del raw["packages"]
    assert package_from_api(raw, "1") is None


def test_confirm_shipment_body_is_pure_and_minimal() -> None:
    body = confirm_shipment_body(
        "113-1234567-7654321",
        marketplace_id="A1PA6795UKMFR9",
        package_reference_id="12",
        carrier_code="China Post",
        tracking_number="LX123456789CN",
        ship_date=utc(2026, 3, 1, 2, 3, 4),
        items=[("12345678901234", 2)],
    )
    assert body == {
        "marketplaceId": "A1PA6795UKMFR9",
        "packageDetail": {
            "packageReferenceId": "12",
            "carrierCode": "China Post",
            "trackingNumber": "LX123456789CN",
            "shipDate": "2026-03-01T02:03:04.000Z",
            "orderItems": [{"orderItemId": "12345678901234", "quantity": 2}],
        },
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-12-25T02:30:00Z", utc(2024, 12, 25, 2, 30)),
        ("2024-12-25T02:30:00.000Z", utc(2024, 12, 25, 2, 30)),
        ("2024-12-25T02:30:00.1234567Z", datetime(2024, 12, 25, 2, 30, 0, 123456, tzinfo=timezone.utc)),
        ("2024-12-25T10:30:00+0800", utc(2024, 12, 25, 2, 30)),
        ("2024-12-25T10:30:00+08:00", utc(2024, 12, 25, 2, 30)),
        ("2024-12-25T02:30:00", utc(2024, 12, 25, 2, 30)),
    ],
)
def test_api_times_are_parsed_leniently_on_every_python(text: str, expected: datetime) -> None:
    assert parse_api_time(text) == expected
    raw = order(lastUpdatedTime=text)
    assert order_from_api(raw, account="a").last_updated == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-12-25", "02/21/2022", "2024-13-01T00:00:00Z", ""])
def test_non_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_api_time(text)


# -- the site table ----------------------------------------------------------------------------------


def test_site_table() -> None:
    expected = {
        "US",
        "CA",
        "MX",
        "BR",
        "UK",
        "DE",
        "FR",
        "IT",
        "ES",
        "NL",
        "SE",
        "PL",
        "BE",
        "IE",
        "TR",
        "AE",
        "SA",
        "EG",
        "IN",
        "JP",
        "AU",
        "SG",
    }
    assert expected <= set(SITES)
    assert marketplace_id("UK") == "A1F83G8C2ARO7P" and site_for_marketplace("A1F83G8C2ARO7P") == "UK"
    assert marketplace_id("gb") == "A1F83G8C2ARO7P"
    assert site_for_marketplace("ATVPDKIKX0DER") == "US"
    assert {code: s.region for code, s in SITES.items() if s.region != "eu"} == {
        "US": "na",
        "CA": "na",
        "MX": "na",
        "BR": "na",
        "JP": "fe",
        "AU": "fe",
        "SG": "fe",
    }
    assert (SITES["JP"].currency, SITES["SE"].currency, SITES["UK"].currency, SITES["UK"].country) == (
        "JPY",
        "SEK",
        "GBP",
        "GB",
    )
    assert REGION_HOSTS == {
        "na": "https://sellingpartnerapi-na.amazon.com",
        "eu": "https://sellingpartnerapi-eu.amazon.com",
        "fe": "https://sellingpartnerapi-fe.amazon.com",
    }
    assert endpoint_for_site("DE") == REGION_HOSTS["eu"]
    assert LWA_TOKEN_URL == "https://api.amazon.com/auth/o2/token"
    assert len({s.marketplace_id for s in SITES.values()}) == len(SITES)
    with pytest.raises(ValueError, match="unknown Amazon marketplace id"):
        site_for_marketplace("NOPE")
    with pytest.raises(ValueError, match="unknown Amazon site"):
        marketplace_id("XX")


# an id that climbs out of the labels folder, built from parts: written as one string, the check
# that no file points outside the repository (tests/test_standalone.py) would take it for a link
CLIMB = "/".join(["..", "..", "..", "etc", "cron.d", "x"])


@pytest.mark.parametrize("order_id", [CLIMB, "113-1234567/7654321", "..\\\\labels", "."])
def test_an_order_id_that_would_leave_the_labels_folder_is_garbled(order_id: str) -> None:
    """The label is stored as ``<labels_dir>/<order id>-<package>.pdf``: an id with a path separator
    (or a dot name) would write it elsewhere (write_atomically makes the folders), so the order is
    refused as garbled data (held malformed_order), never bought for."""
    with pytest.raises(ValueError, match="orderId .*path"):
        order_from_api(order(orderId=order_id), account="a")
