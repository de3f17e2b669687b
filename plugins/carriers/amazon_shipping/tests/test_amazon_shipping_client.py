"""The carrier against canned HTTP (``responses``): the requests it sends (validated against
Amazon's model), headers, TOKEN_EXPIRED, labels, errors, and reconciliation after a lost answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from amazon_shipping_testkit import (
    ENDPOINT,
    ORDER_ID,
    REFERENCE,
    api_order,
    carrier_for,
    make_client,
    make_request,
)
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier
from mfn_carrier_amazon_shipping.sandbox import request_problems as validate_request

from connector.kit import PermanentCarrierError, TrackingStatus, TransientCarrierError
from connector.kit.amazon import LWA_TOKEN_URL
from connector.kit.sandbox import make_label_pdf

ORDER_URL = f"{ENDPOINT}/orders/2026-01-01/orders/{ORDER_ID}"
RATES_URL = f"{ENDPOINT}/shipping/v2/shipments/rates"
PURCHASE_URL = f"{ENDPOINT}/shipping/v2/shipments"
SHIPMENT_ID = "87852211788104"
DOCS_URL = f"{ENDPOINT}/shipping/v2/shipments/{SHIPMENT_ID}/documents"
TRACKING_URL = f"{ENDPOINT}/shipping/v2/tracking"
PDF = make_label_pdf(["YunExpress", "YT1111222233334444"])
TRACKING = "YT1111222233334444"


def rate(service: str, carrier_id: str, value: float, *, unit: str = "USD", n: int = 1) -> dict[str, Any]:
    return {
        "rateId": f"RATE-{service}-{n}",
        "carrierId": carrier_id,
        "carrierName": carrier_id.title(),
        "serviceId": service,
        "serviceName": service.replace("_", " "),
        "totalCharge": {"value": value, "unit": unit},
        "promise": {
            "pickupWindow": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
            "deliveryWindow": {"start": "2026-01-07T00:00:00Z", "end": "2026-01-10T12:00:00Z"},
        },
        "supportedDocumentSpecifications": [],
        "requiresAdditionalInputs": False,
    }


def rates_answer(n: int = 1) -> dict[str, Any]:
    return {
        "payload": {
            "requestToken": f"TOKEN-{n}",
            "rates": [
                rate("YUNEXPRESS_AYPZXR", "YUNEXPRESS", 5.15, n=n),
                rate("CHINAPOST_EPACKET", "CHINAPOST", 4.10, n=n),
                rate("DHLEC_PKD", "DHLEC", 7.90, n=n),
            ],
            "ineligibleRates": [
                {
                    "serviceId": "YANWEN_EXPRESS",
                    "serviceName": "Yanwen Direct Line Express",
                    "carrierName": "Yanwen",
                    "carrierId": "YANWEN",
                    "ineligibilityReasons": [{"code": "WEIGHT_RESTRICTIONS", "message": "too heavy"}],
                }
            ],
        }
    }


def purchase_answer(contents: str | None = None) -> dict[str, Any]:
    return {
        "payload": {
            "shipmentId": SHIPMENT_ID,
            "packageDocumentDetails": [
                {
                    "packageClientReferenceId": REFERENCE,
                    "trackingId": TRACKING,
                    "packageDocuments": [
                        {
                            "type": "LABEL",
                            "format": "PDF",
                            "contents": contents or base64.b64encode(PDF).decode(),
                        }
                    ],
                }
            ],
            "promise": {},
        }
    }


def documents_answer() -> dict[str, Any]:
    return {
        "payload": {
            "shipmentId": SHIPMENT_ID,
            "packageDocumentDetail": {
                "packageClientReferenceId": REFERENCE,
                "trackingId": TRACKING,
                "packageDocuments": [
                    {"type": "LABEL", "format": "PDF", "contents": base64.b64encode(PDF).decode()}
                ],
            },
        }
    }


def json_answer(status: int, body: Any) -> tuple[int, dict[str, str], str]:
    return status, {"x-amzn-RequestId": "req-1"}, json.dumps(body)


def errors(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


class Amazon:
    """Canned SP-API: LWA + the calls the carrier makes, with every call recorded."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        rsps.add(responses.POST, LWA_TOKEN_URL, json={"access_token": "Atza|t", "expires_in": 3600})

    def calls(self, url: str, method: str | None = None) -> list[Any]:
        return [
            c
            for c in self.rsps.calls
            if c.request.url.split("?")[0] == url and (method is None or c.request.method == method)
        ]

    def order(self, order: dict[str, Any] | None = None, status: int = 200, url: str = ORDER_URL) -> None:
        self.rsps.add(
            responses.GET,
            url,
            json={"order": order or api_order()} if status == 200 else errors("NotFound", "no such order"),
            status=status,
        )

    def rates(self, *answers: tuple[int, Any]) -> None:
        queue = list(answers) or [(200, rates_answer())]
        self.rsps.add_callback(
            responses.POST,
            RATES_URL,
            callback=lambda _: json_answer(*(queue.pop(0) if len(queue) > 1 else queue[0])),
        )

    def purchase(self, *answers: Any) -> None:
        queue = list(answers) or [(200, purchase_answer())]

        def answer(_: Any) -> Any:
            item = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(item, Exception):
                raise item
            return json_answer(*item)

        self.rsps.add_callback(responses.POST, PURCHASE_URL, callback=answer)


@pytest.fixture
def amazon() -> Iterator[Amazon]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield Amazon(rsps)


@pytest.fixture
def carrier() -> Callable[..., AmazonShippingCarrier]:
    def make(**settings: Any) -> AmazonShippingCarrier:
        client = make_client()
        return carrier_for({client.account: client}, **settings)

    return make


def body(call: Any) -> Any:
    return json.loads(call.request.body)


# -- buying ------------------------------------------------------------------------------------


def test_create_sends_model_valid_requests(amazon, carrier):
    amazon.order()
    amazon.rates()
    amazon.purchase()
    shipment = carrier().create_shipment(make_request(service="YUNEXPRESS_AYPZXR"))
    assert (
        shipment.carrier,
        shipment.reference,
        shipment.carrier_shipment_id,
        shipment.tracking_number,
        shipment.service,
    ) == ("amazon_shipping", REFERENCE, SHIPMENT_ID, TRACKING, "YUNEXPRESS_AYPZXR")

    [rates_call] = amazon.calls(RATES_URL)
    sent = body(rates_call)
    assert validate_request("getRates", body=sent) == []
    assert sent["channelDetails"] == {"channelType": "AMAZON", "amazonOrderDetails": {"orderId": ORDER_ID}}
    assert "shipTo" not in sent  # Amazon uses the order's address
    [package] = sent["packages"]
    assert package["packageClientReferenceId"] == REFERENCE
    assert package["weight"] == {"value": 250, "unit": "GRAM"}
    assert package["dimensions"] == {"length": 20.5, "width": 15, "height": 3, "unit": "CENTIMETER"}
    assert package["insuredValue"] == {"value": 4.5, "unit": "USD"}
    assert package["items"] == [
        {
            "itemValue": {"value": 4.5, "unit": "USD"},
            "description": "Item PHONE-CASE-01",
            "itemIdentifier": "50760246463087",
            "quantity": 1,
            "weight": {"value": 100, "unit": "GRAM"},
            "isHazmat": False,
        }
    ]
    assert sent["shipFrom"]["countryCode"] == "CN" and sent["shipFrom"]["stateOrRegion"] == "Guangdong"
    assert rates_call.request.headers["x-amzn-shipping-business-id"] == "AmazonShipping_US"
    assert "x-amzn-IdempotencyKey" not in rates_call.request.headers

    [purchase_call] = amazon.calls(PURCHASE_URL)
    bought = body(purchase_call)
    assert validate_request("purchaseShipment", body=bought) == []
    assert bought == {
        "requestToken": "TOKEN-1",
        "rateId": "RATE-YUNEXPRESS_AYPZXR-1",
        "requestedDocumentSpecification": {
            "format": "PDF",
            "size": {"width": 4, "length": 6, "unit": "INCH"},
            "needFileJoining": False,
            "requestedDocumentTypes": ["LABEL"],
        },
    }
    assert purchase_call.request.headers["x-amzn-IdempotencyKey"] == REFERENCE
    assert purchase_call.request.headers["x-amzn-shipping-business-id"] == "AmazonShipping_US"
    assert purchase_call.request.headers["x-amz-access-token"] == "Atza|t"


def test_cheapest_and_unavailable_services(amazon, carrier):
    amazon.order()
    amazon.rates()
    amazon.purchase()
    assert carrier().create_shipment(make_request(service="cheapest")).service == "CHINAPOST_EPACKET"
    assert body(amazon.calls(PURCHASE_URL)[0])["rateId"] == "RATE-CHINAPOST_EPACKET-1"
    assert (
        carrier(rate_choice="cheapest").create_shipment(make_request(service="DHLEC_PKD")).service
        == "CHINAPOST_EPACKET"
    )
    assert carrier(services=["DHLEC_PKD"]).create_shipment(make_request(service="")).service == "DHLEC_PKD"
    with pytest.raises(PermanentCarrierError, match="YANWEN_EXPRESS is not eligible: WEIGHT_RESTRICTIONS"):
        carrier().create_shipment(make_request(service="YANWEN_EXPRESS"))
    with pytest.raises(PermanentCarrierError, match="DHLEC_PPS is not offered"):
        carrier().create_shipment(make_request(service="DHLEC_PPS"))


def test_token_expired_rates_again_and_buys_once_under_the_same_key(amazon, carrier):
    amazon.order()
    amazon.rates((200, rates_answer(1)), (200, rates_answer(2)))
    amazon.purchase((400, errors("TOKEN_EXPIRED", "The requestToken has expired.")), (200, purchase_answer()))
    shipment = carrier().create_shipment(make_request(service="YUNEXPRESS_AYPZXR"))
    assert shipment.carrier_shipment_id == SHIPMENT_ID
    purchases = amazon.calls(PURCHASE_URL)
    assert len(amazon.calls(RATES_URL)) == 2 and len(purchases) == 2
    assert [body(c)["requestToken"] for c in purchases] == ["TOKEN-1", "TOKEN-2"]
    assert [body(c)["rateId"] for c in purchases] == ["RATE-YUNEXPRESS_AYPZXR-1", "RATE-YUNEXPRESS_AYPZXR-2"]
    assert {c.request.headers["x-amzn-IdempotencyKey"] for c in purchases} == {REFERENCE}


def test_token_expired_twice_is_transient(amazon, carrier):
    amazon.order()
    amazon.rates()
    amazon.purchase((400, errors("TOKEN_EXPIRED", "expired")))
    with pytest.raises(TransientCarrierError, match="TOKEN_EXPIRED"):
        carrier().create_shipment(make_request())
    assert len(amazon.calls(PURCHASE_URL)) == 2  # the second rate was tried, never a third


def test_a_rate_without_a_readable_total_charge_is_malformed_not_a_refusal(amazon, carrier):
    amazon.order()
    answer = rates_answer()
    del answer["payload"]["rates"][1]["totalCharge"]  # required by the model's Rate
    amazon.rates((200, answer))
    amazon.purchase()
    with pytest.raises(TransientCarrierError, match="CHINAPOST_EPACKET.*totalCharge") as raised:
        carrier().create_shipment(make_request(service="cheapest"))
    assert raised.value.code == "malformed"
    assert amazon.calls(PURCHASE_URL) == []


def test_rates_without_a_request_token_are_malformed_and_buy_nothing(amazon, carrier):
    amazon.order()
    answer = rates_answer()
    del answer["payload"]["requestToken"]  # required by the model's GetRatesResult
    amazon.rates((200, answer))
    amazon.purchase()
    with pytest.raises(TransientCarrierError, match="without a requestToken") as raised:
        carrier().create_shipment(make_request(service="YUNEXPRESS_AYPZXR"))
    assert raised.value.code == "malformed"
    assert amazon.calls(PURCHASE_URL) == []


@pytest.mark.parametrize(
    "site, expected",
    [
        ("US", "AmazonShipping_US"),
        ("CA", "AmazonShipping_US"),
        ("MX", "AmazonShipping_US"),
        ("BR", "AmazonShipping_US"),
        ("UK", "AmazonShipping_UK"),
        ("DE", "AmazonShipping_UK"),
        ("NL", "AmazonShipping_UK"),
        ("FR", "AmazonShipping_FR"),
        ("IT", "AmazonShipping_IT"),
        ("ES", "AmazonShipping_ES"),
        ("IN", "AmazonShipping_IN"),
        ("JP", "AmazonShipping_JP"),
    ],
)
def test_business_id_header_per_site(amazon, carrier, site, expected):
    amazon.order(api_order(site=site))
    amazon.rates()
    amazon.purchase()
    carrier().create_shipment(make_request(site=site))
    for url in (RATES_URL, PURCHASE_URL):
        assert amazon.calls(url)[0].request.headers["x-amzn-shipping-business-id"] == expected


def test_business_id_is_configurable(amazon, carrier):
    amazon.order(api_order(site="DE"))
    amazon.rates()
    amazon.purchase()
    carrier(business_ids={"DE": "AmazonShipping_FR"}).create_shipment(make_request(site="DE"))
    assert amazon.calls(RATES_URL)[0].request.headers["x-amzn-shipping-business-id"] == "AmazonShipping_FR"


def test_label_is_plain_base64_and_kept_for_get_label(amazon, carrier):
    wrapped = base64.encodebytes(PDF).decode()  # line breaks inside base64 are fine
    amazon.order()
    amazon.rates()
    amazon.purchase((200, purchase_answer(wrapped)))
    plugin = carrier()
    shipment = plugin.create_shipment(make_request())
    assert plugin.get_label(shipment) == PDF
    assert amazon.calls(DOCS_URL) == []  # from memory

    amazon.rsps.add(responses.GET, DOCS_URL, json=documents_answer())
    assert carrier().get_label(shipment) == PDF  # another process: getShipmentDocuments
    [call] = amazon.calls(DOCS_URL)
    assert parse_qs(urlsplit(call.request.url).query) == {
        "packageClientReferenceId": [REFERENCE],
        "format": ["PDF"],
    }
    assert (
        validate_request(
            "getShipmentDocuments",
            path_params={"shipmentId": SHIPMENT_ID},
            query=parse_qs(urlsplit(call.request.url).query),
        )
        == []
    )


@pytest.mark.parametrize(
    "contents, message",
    [("%%%not-base64%%%", "not base64"), (base64.b64encode(b"GIF89a").decode(), "not a PDF")],
)
def test_unusable_label_after_purchase_is_transient(amazon, carrier, contents, message):
    amazon.order()
    amazon.rates()
    amazon.purchase((200, purchase_answer(contents)))
    with pytest.raises(TransientCarrierError, match=message):
        carrier().create_shipment(make_request())


# -- reconciliation ----------------------------------------------------------------------------


def bought_order(**package: Any) -> dict[str, Any]:
    entry = {
        "packageReferenceId": SHIPMENT_ID,
        "carrier": "YunExpress",
        "trackingNumber": TRACKING,
        "shippingService": "YunExpress Global Tracked Line DDP",
        "packageItems": [{"orderItemId": "50760246463087", "quantity": 1}],
        **package,
    }
    return api_order(items=(("50760246463087", "PHONE-CASE-01", 1, 0),), packages=[entry])


def test_ambiguous_purchase_is_found_by_reference_not_bought_again(amazon, carrier):
    amazon.order()  # before the purchase
    amazon.rates()
    amazon.purchase(requests.ReadTimeout("read timed out"))
    with pytest.raises(TransientCarrierError, match="may have been bought"):
        carrier().create_shipment(make_request())
    assert len(amazon.calls(PURCHASE_URL)) == 1  # a write is never retried blindly

    amazon.rsps.replace(responses.GET, ORDER_URL, json={"order": bought_order()})
    amazon.rsps.add(responses.GET, DOCS_URL, json=documents_answer())
    found = carrier().find_by_reference(REFERENCE)
    assert (found.carrier_shipment_id, found.tracking_number, found.service) == (
        SHIPMENT_ID,
        TRACKING,
        "YUNEXPRESS_AYPZXR",
    )
    # the engine may call create again: it finds the package and does not buy
    again = carrier().create_shipment(make_request())
    assert again.carrier_shipment_id == SHIPMENT_ID
    assert len(amazon.calls(PURCHASE_URL)) == 1 and len(amazon.calls(RATES_URL)) == 1
    order_calls = amazon.calls(ORDER_URL)
    assert parse_qs(urlsplit(order_calls[-1].request.url).query) == {"includedData": ["FULFILLMENT,PACKAGES"]}


def test_find_by_reference_none_when_the_order_has_no_package(amazon, carrier):
    amazon.order()
    assert carrier().find_by_reference(REFERENCE) is None
    assert amazon.calls(DOCS_URL) == []


def test_a_package_of_another_reference_is_not_ours(amazon, carrier):
    amazon.order(bought_order())
    amazon.rsps.add(responses.GET, DOCS_URL, status=400, json=errors("InvalidInput", "not a package of"))
    assert carrier().find_by_reference(f"{ORDER_ID}-2") is None
    assert amazon.calls(TRACKING_URL) == []  # the proof works on this account: no guessing


def test_fallback_by_tracking_when_no_proof_is_possible(amazon, carrier):
    amazon.order(bought_order(packageReferenceId="1234567890"))
    amazon.rsps.add(
        responses.GET,
        f"{ENDPOINT}/shipping/v2/shipments/1234567890/documents",
        status=404,
        json=errors("NotFound", "no shipment"),
    )
    amazon.rsps.add(
        responses.GET,
        TRACKING_URL,
        json={
            "payload": {
                "trackingId": TRACKING,
                "alternateLegTrackingId": "",
                "eventHistory": [],
                "promisedDeliveryDate": "2026-01-10T00:00:00Z",
                "summary": {"status": "PreTransit"},
            }
        },
    )
    found = carrier().find_by_reference(REFERENCE)
    assert (found.carrier_shipment_id, found.tracking_number) == ("", TRACKING)
    [call] = amazon.calls(TRACKING_URL)
    assert parse_qs(urlsplit(call.request.url).query) == {
        "trackingId": [TRACKING],
        "carrierId": ["YUNEXPRESS"],
    }
    with pytest.raises(PermanentCarrierError, match="Seller Central"):
        carrier().get_label(found)
    assert carrier(reconcile_by_tracking=False).find_by_reference(REFERENCE) is None


def test_fallback_refuses_to_guess_between_two_packages(amazon, carrier):
    order = bought_order(packageReferenceId="1234567890")
    order["packages"].append(
        {**order["packages"][0], "packageReferenceId": "1234567891", "trackingNumber": "YT9999888877776666"}
    )
    amazon.order(order)
    for ref in ("1234567890", "1234567891"):
        amazon.rsps.add(
            responses.GET,
            f"{ENDPOINT}/shipping/v2/shipments/{ref}/documents",
            status=404,
            json=errors("NotFound", "no shipment"),
        )
    amazon.rsps.add(
        responses.GET,
        TRACKING_URL,
        json={
            "payload": {
                "trackingId": "x",
                "alternateLegTrackingId": "",
                "eventHistory": [],
                "promisedDeliveryDate": "2026-01-10T00:00:00Z",
                "summary": {},
            }
        },
    )
    with pytest.raises(TransientCarrierError, match="reconcile by hand"):
        carrier().find_by_reference(REFERENCE)


def test_seller_confirmed_packages_are_not_taken(amazon, carrier):
    order = bought_order(packageReferenceId="1", carrier="China Post", trackingNumber="RB123456785CN")
    amazon.order(order)
    amazon.rsps.add(
        responses.GET,
        f"{ENDPOINT}/shipping/v2/shipments/1/documents",
        status=404,
        json=errors("NotFound", "no shipment"),
    )
    amazon.rsps.add(responses.GET, TRACKING_URL, status=404, json=errors("NotFound", "unknown tracking id"))
    assert carrier().find_by_reference(REFERENCE) is None


def test_find_by_reference_looks_in_every_account(amazon):
    first, second = make_client(account="acme-us"), make_client(account="acme-eu")
    plugin = carrier_for({"acme-us": first, "acme-eu": second})
    calls = []

    def answer(request: Any) -> Any:
        calls.append(request)
        if len(calls) == 1:
            return json_answer(404, errors("NotFound", "Order not found"))
        return json_answer(200, {"order": bought_order()})

    amazon.rsps.add_callback(responses.GET, ORDER_URL, callback=answer)
    amazon.rsps.add(responses.GET, DOCS_URL, json=documents_answer())
    assert plugin.find_by_reference(REFERENCE).carrier_shipment_id == SHIPMENT_ID
    assert len(calls) == 2


@pytest.mark.parametrize("reference", ["PKG-1", "111-1234567-1234567", "111-1234567-1234567-x", ""])
def test_references_outside_the_contract_are_refused(carrier, reference):
    with pytest.raises(PermanentCarrierError, match="reference"):
        carrier().find_by_reference(reference)
    with pytest.raises(PermanentCarrierError, match="reference"):
        carrier().create_shipment(make_request(reference))


def test_reference_must_name_the_order(carrier):
    with pytest.raises(PermanentCarrierError, match="does not name order"):
        carrier().create_shipment(make_request("111-7654321-7654321-1"))


# -- refusals and errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, code, kind",
    [
        (400, "InvalidInput", PermanentCarrierError),
        (404, "NotFound", PermanentCarrierError),
        (403, "Unauthorized", PermanentCarrierError),
        (503, "ServiceUnavailable", TransientCarrierError),
    ],
)
def test_rates_errors_are_classified(amazon, carrier, status, code, kind):
    amazon.order()
    amazon.rates((status, errors(code, "Amazon says no")))
    with pytest.raises(kind, match="Amazon says no") as caught:
        carrier().create_shipment(make_request())
    assert caught.value.carrier == "amazon_shipping"
    assert amazon.calls(PURCHASE_URL) == []


def test_purchase_5xx_is_transient_and_not_retried(amazon, carrier):
    amazon.order()
    amazon.rates()
    amazon.purchase((500, errors("InternalFailure", "boom")))
    with pytest.raises(TransientCarrierError, match="may have been bought"):
        carrier().create_shipment(make_request())
    assert len(amazon.calls(PURCHASE_URL)) == 1


def test_rates_5xx_is_retried_because_rating_buys_nothing(amazon, carrier):
    amazon.order()
    amazon.rates((503, errors("ServiceUnavailable", "busy")), (200, rates_answer()))
    amazon.purchase()
    shipment = carrier().create_shipment(make_request(service="YUNEXPRESS_AYPZXR"))
    assert shipment.carrier_shipment_id == SHIPMENT_ID
    assert len(amazon.calls(RATES_URL)) == 2 and len(amazon.calls(PURCHASE_URL)) == 1


def test_the_shipping_quotas_join_the_shared_limiter_and_configuration_wins():
    from connector.kit.amazon import RateLimiter, connect_account

    limiter = RateLimiter({"getOrder": (0.5, 30), "getRates": (1.0, 2)})  # getRates as configured
    client = connect_account(account="acme", endpoint=ENDPOINT, refresh_token="r", client_id="c",
                             client_secret="s", limiter=limiter)
    carrier_for({"acme": client})
    assert limiter.quota("acme", "getRates") == (1.0, 2)
    assert limiter.quota("acme", "purchaseShipment") == (80.0, 100)
    assert limiter.quota("acme", "cancelShipment") == (80.0, 100)


def test_requests_that_cannot_be_bought(amazon, carrier):
    with pytest.raises(PermanentCarrierError, match="not offered on SE"):
        carrier().create_shipment(make_request(site="SE"))
    with pytest.raises(PermanentCarrierError, match="account 'nobody'"):
        carrier().create_shipment(make_request(account="nobody"))
    amazon.order(status=404)
    with pytest.raises(PermanentCarrierError, match="is not an order of seller account"):
        carrier().create_shipment(make_request())
    amazon.rsps.replace(responses.GET, ORDER_URL, json={"order": api_order()})
    with pytest.raises(PermanentCarrierError, match="SKU OTHER-SKU is not an item"):
        carrier().create_shipment(make_request(lines=(("OTHER-SKU", 1),)))
    amazon.rsps.replace(
        responses.GET,
        ORDER_URL,
        json={"order": api_order(items=(("50760246463087", "PHONE-CASE-01", 1, 0),))},
    )
    with pytest.raises(TransientCarrierError, match="no longer to ship"):
        carrier().create_shipment(make_request())
    assert amazon.calls(RATES_URL) == [] and amazon.calls(PURCHASE_URL) == []


def test_factory_needs_accounts():
    with pytest.raises(ValueError, match="SP-API clients"):
        carrier_for({})  # a context without seller accounts


# -- quote, track, cancel ----------------------------------------------------------------------


def test_quote_lists_the_offered_services(amazon, carrier):
    amazon.order()
    amazon.rates()
    quotes = carrier().quote(make_request())
    assert [(q.service, str(q.price), q.transit_days, q.tracking_level) for q in quotes] == [
        ("CHINAPOST_EPACKET", "4.1 USD", 10, "tracked"),
        ("YUNEXPRESS_AYPZXR", "5.15 USD", 10, "fully_tracked"),
        ("DHLEC_PKD", "7.9 USD", 10, "fully_tracked"),
    ]
    assert [q.service for q in carrier().quote(make_request(service="DHLEC_PKD"))] == ["DHLEC_PKD"]
    assert amazon.calls(PURCHASE_URL) == []


def test_track_maps_amazon_events(amazon, carrier):
    amazon.rsps.add(
        responses.GET,
        TRACKING_URL,
        json={
            "payload": {
                "trackingId": TRACKING,
                "alternateLegTrackingId": "",
                "promisedDeliveryDate": "2026-01-10T00:00:00Z",
                "summary": {"status": "Delivered"},
                "eventHistory": [
                    {
                        "eventCode": "Delivered",
                        "eventTime": "2026-01-09T10:00:00Z",
                        "location": {"countryCode": "US"},
                    },
                    {
                        "eventCode": "ReadyForReceive",
                        "eventTime": "2026-01-01T00:00:00Z",
                        "location": {"city": "Shenzhen", "stateOrRegion": "Guangdong", "countryCode": "CN"},
                    },
                    {"eventCode": "PickupDone", "eventTime": "2026-01-02T00:00:00Z"},
                ],
            }
        },
    )
    amazon.rsps.add(responses.GET, TRACKING_URL, status=404, json=errors("NotFound", "unknown"))
    [info] = carrier().track([TRACKING, TRACKING])
    assert info.status == TrackingStatus.DELIVERED
    assert [(e.code, e.status, e.location) for e in info.events] == [
        ("ReadyForReceive", TrackingStatus.PENDING, "Shenzhen, Guangdong, CN"),
        ("PickupDone", TrackingStatus.ACCEPTED, ""),
        ("Delivered", TrackingStatus.DELIVERED, "US"),
    ]
    [unknown] = carrier().track(["YT0000000000000000"])
    assert unknown.status == TrackingStatus.UNKNOWN and unknown.events == ()


def test_a_number_no_carrier_pattern_knows_fails_alone_not_its_batch(amazon, carrier):
    """After a restart the carrierId of a number comes from tracking_patterns only. A number none
    matches is that parcel's trouble: the engine tracks in batches, and an exception from track()
    failed every parcel of the batch, at every pass, as long as that parcel was in it."""
    amazon.rsps.add(responses.GET, TRACKING_URL, json={"payload": {
        "trackingId": TRACKING, "summary": {"status": "InTransit"},
        "eventHistory": [{"eventCode": "PickupDone", "eventTime": "2026-01-02T00:00:00Z"}]}})
    stranger, known = carrier().track(["1Z999AA10123456784", TRACKING])
    assert known.tracking_number == TRACKING and known.status == TrackingStatus.ACCEPTED and not known.error
    assert stranger.tracking_number == "1Z999AA10123456784" and stranger.status == TrackingStatus.UNKNOWN
    assert "matches no carrier in tracking_patterns" in stranger.error


def test_a_number_amazon_refuses_to_track_fails_alone_not_its_batch(amazon, carrier):
    """getTracking refusing one number (400: e.g. its pattern named the wrong carrierId) is about
    that number's request: the others of the batch are still tracked."""
    refused = "LX123456785CN"
    only_it = responses.matchers.query_param_matcher({"trackingId": refused}, strict_match=False)
    amazon.rsps.add(responses.GET, TRACKING_URL, status=400, json=errors("InvalidInput", "invalid carrierId"),
                    match=[only_it])
    amazon.rsps.add(responses.GET, TRACKING_URL, json={"payload": {
        "trackingId": TRACKING, "summary": {"status": "Delivered"},
        "eventHistory": [{"eventCode": "Delivered", "eventTime": "2026-01-09T10:00:00Z"}]}})
    bad, good = carrier().track([refused, TRACKING])
    assert good.status == TrackingStatus.DELIVERED and not good.error
    assert bad.status == TrackingStatus.UNKNOWN and "invalid carrierId" in bad.error


def test_cancel(amazon, carrier):
    url = f"{ENDPOINT}/shipping/v2/shipments/{SHIPMENT_ID}/cancel"
    amazon.order()
    amazon.rates()
    amazon.purchase()
    plugin = carrier()
    shipment = plugin.create_shipment(make_request())
    amazon.rsps.add(responses.PUT, url, json={"payload": {}})
    assert plugin.cancel(shipment) is True
    amazon.rsps.replace(responses.PUT, url, status=400, json=errors("InvalidInput", "already picked up"))
    with pytest.raises(PermanentCarrierError, match="already picked up"):
        carrier().cancel(shipment)  # a new process finds the account through getOrder
    assert amazon.calls(url)[-1].request.headers["x-amzn-shipping-business-id"] == "AmazonShipping_US"


def test_a_garbled_order_read_is_transient_not_a_refusal(amazon, carrier):
    """getOrder answered an item without its SKU: the order is read again later, where it used to
    be held for good as 'SKU ... is not an item of the Amazon order'."""
    garbled = api_order()
    del garbled["orderItems"][0]["product"]["sellerSku"]
    amazon.order(garbled)
    with pytest.raises(TransientCarrierError, match="has no product.sellerSku") as caught:
        carrier().create_shipment(make_request())
    assert caught.value.code == "malformed" and not amazon.calls(RATES_URL)  # nothing rated, nothing bought


def test_a_purchase_answer_of_the_wrong_shape_is_transient(amazon, carrier):
    amazon.order()
    amazon.rates()
    amazon.purchase((200, {"payload": {"shipmentId": "1", "packageDocumentDetails": ["LABEL"]}}))
    with pytest.raises(TransientCarrierError, match="not in the expected shape") as caught:
        carrier().create_shipment(make_request())
    assert caught.value.code == "malformed"
