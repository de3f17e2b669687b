"""The plugin against its emulator (mounted on the SP-API emulator) over loopback HTTP: rates,
purchase, labels, the order read back, lost answers reconciled without a second label,
TOKEN_EXPIRED, cancel, tracking."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import requests
from amazon_shipping_testkit import (
    DEFAULT_SELLER,
    OTHER_SELLER,
    carrier_for,
    emulator_client,
    request_for,
    seed_order,
)
from mfn_carrier_amazon_shipping import sandbox_data as bs
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier
from pypdf import PdfReader

from connector.kit import Money, PermanentCarrierError, TrackingStatus, TransientCarrierError
from connector.kit.amazon import SpApiEmulator, marketplace_id
from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import sandbox_control as control

TRACKING_FORMATS = SpApiEmulator.TRACKING_FORMATS

pytestmark = pytest.mark.e2e

FORMAT_OF = {
    "YunExpress": TRACKING_FORMATS["Yun Express"],
    "China Post": TRACKING_FORMATS["China Post"],
    "Yanwen": TRACKING_FORMATS["Yanwen"],
    "YANWEN": TRACKING_FORMATS["YANWEN"],
    "DHL eCommerce": TRACKING_FORMATS["DHL eCommerce"],
}


class HookSession(requests.Session):
    """A session that runs ``before(method, url)`` ahead of every request."""

    def __init__(self, before: Callable[[str, str], None]) -> None:
        super().__init__()
        self.before = before

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.before(method, url)
        return super().request(method, url, *args, **kwargs)


def on_first_purchase(action: Callable[[], None]) -> Callable[[str, str], None]:
    fired = []

    def before(method: str, url: str) -> None:
        if method == "POST" and url.endswith("/shipping/v2/shipments") and not fired:
            fired.append(True)
            action()

    return before


def hooked_carrier(
    server: EmulatorServer, before: Callable[[str, str], None], *, read_timeout: float = 5, **settings: Any
) -> AmazonShippingCarrier:
    client = emulator_client(server, session=HookSession(before), read_timeout=read_timeout)
    return carrier_for({client.account: client}, **settings)


def read_order(server: EmulatorServer, order_id: str, seller: dict[str, Any] | None = None) -> dict[str, Any]:
    order = emulator_client(server, seller).get_order(order_id, ("FULFILLMENT", "PACKAGES"))
    assert order is not None
    return order


def test_buy_label_end_to_end(spapi_server, connect):
    server = spapi_server()
    carrier = connect(server)
    order = seed_order(server, site="US")
    request = request_for(order)

    quotes = carrier.quote(request)
    assert quotes and [q.price.amount for q in quotes] == sorted(q.price.amount for q in quotes)
    assert {q.service.split("_")[0] for q in quotes} == {"YUNEXPRESS", "CHINAPOST", "YANWEN", "DHLEC"}
    assert all(
        q.price.currency == "USD" and q.carrier == "amazon_shipping" and q.transit_days for q in quotes
    )
    for q in quotes:  # the emulator's TRANSACTION_FEE item is the handling fee; billed in 100 g steps
        assert q.handling_fee == Money(bs.handling(bs.SERVICES[q.service], "US"), "USD")
        assert q.chargeable_weight_g == bs.billed_weight_g(request.parcel.weight_g)
        assert q.chargeable_weight_g % 100 == 0 and q.chargeable_weight_g >= request.parcel.weight_g

    shipment = carrier.create_shipment(request)
    assert shipment.service == quotes[0].service  # "cheapest"
    assert shipment.carrier_shipment_id.isdigit() and shipment.tracking_number
    pdf = carrier.get_label(shipment)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1 and shipment.tracking_number in reader.pages[0].extract_text()

    # a new process (nothing in memory) gets the same label through getShipmentDocuments
    assert connect(server).get_label(shipment) == pdf

    on_amazon = read_order(server, order["orderId"])
    assert on_amazon["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    [package] = [p for p in on_amazon["packages"] if p["trackingNumber"] == shipment.tracking_number]
    assert package["packageReferenceId"] == shipment.carrier_shipment_id
    assert package["carrier"] in FORMAT_OF
    import re

    assert re.match(FORMAT_OF[package["carrier"]], shipment.tracking_number)
    assert {(i["orderItemId"], i["quantity"]) for i in package["packageItems"]} == {
        (it["orderItemId"], it["quantityOrdered"]) for it in order["orderItems"]
    }

    state = control(server, "state")
    assert state["labels"][request.reference]["created"] == 1
    assert state["labels"][request.reference]["tracking_number"] == shipment.tracking_number
    assert state["buy_shipping"][request.reference]["purchased"] == 1
    assert order["orderId"] not in state["confirmations"]  # it confirmed itself
    assert state["schema_violations"] == []

    # found again by reference from a new process, and create is idempotent: no second label
    found = connect(server).find_by_reference(request.reference)
    assert (found.carrier_shipment_id, found.tracking_number) == (
        shipment.carrier_shipment_id,
        shipment.tracking_number,
    )
    assert connect(server).create_shipment(request).carrier_shipment_id == shipment.carrier_shipment_id
    assert control(server, "state")["buy_shipping"][request.reference]["purchased"] == 1


def test_each_carrier_issues_its_own_tracking_format(spapi_server, connect):
    server = spapi_server()
    carrier = connect(server)
    for n, service in enumerate(
        ("YUNEXPRESS_AYPZXR", "CHINAPOST_EPACKET", "YANWEN_SPECIAL_LINE", "DHLEC_PKD")
    ):
        order = seed_order(server, site="US", skip=n)
        shipment = carrier.create_shipment(request_for(order, service=service))
        assert shipment.service == service
        package = next(
            p
            for p in read_order(server, order["orderId"])["packages"]
            if p["trackingNumber"] == shipment.tracking_number
        )
        import re

        assert re.match(FORMAT_OF[package["carrier"]], shipment.tracking_number), (service, shipment)


def test_lost_purchase_answer_is_found_not_bought_again(spapi_server, connect):
    server = spapi_server(timeout_seconds=1.5)
    carrier = hooked_carrier(
        server, on_first_purchase(lambda: control(server, "faults", {"timeout": 1.0})), read_timeout=0.5
    )
    order = seed_order(server, site="US")
    request = request_for(order)
    with pytest.raises(TransientCarrierError, match="may have been bought"):
        carrier.create_shipment(request)
    control(server, "faults", {"timeout": 0.0})
    state = control(server, "state")
    assert state["buy_shipping"][request.reference]["purchased"] == 1  # it did happen

    fresh = connect(server)  # as after a crash: nothing in memory
    found = fresh.find_by_reference(request.reference)
    assert found is not None
    assert found.carrier_shipment_id == state["buy_shipping"][request.reference]["shipmentId"]
    assert found.tracking_number == state["buy_shipping"][request.reference]["trackingId"]
    assert PdfReader(io.BytesIO(fresh.get_label(found))).pages
    # the engine may also simply retry create: it finds the package and buys nothing
    assert fresh.create_shipment(request).carrier_shipment_id == found.carrier_shipment_id
    after = control(server, "state")["buy_shipping"][request.reference]
    assert (after["purchased"], after["requests"]) == (1, 1)
    assert len(read_order(server, order["orderId"])["packages"]) == 1


def test_token_expired_rates_again_and_buys_once(spapi_server):
    server = spapi_server()
    carrier = hooked_carrier(
        server, on_first_purchase(lambda: control(server, "clock", {"advance_seconds": 601}))
    )
    order = seed_order(server, site="US")
    request = request_for(order)
    shipment = carrier.create_shipment(request)
    state = control(server, "state")
    assert state["buy_shipping_rate_requests"] == 2
    assert state["buy_shipping"][request.reference]["purchased"] == 1
    assert state["buy_shipping"][request.reference]["shipmentId"] == shipment.carrier_shipment_id


def test_opaque_package_ids_fall_back_to_tracking(spapi_server, connect):
    """Where Amazon's packageReferenceId is not the shipment id, the proof cannot work: the one
    Buy Shipping package getTracking knows is taken, without a shipment id (label: Seller Central)."""
    server = spapi_server(timeout_seconds=1.5, package_ids="opaque")
    carrier = hooked_carrier(
        server, on_first_purchase(lambda: control(server, "faults", {"timeout": 1.0})), read_timeout=0.5
    )
    order = seed_order(server, site="US")
    request = request_for(order)
    with pytest.raises(TransientCarrierError):
        carrier.create_shipment(request)
    control(server, "faults", {"timeout": 0.0})
    bought = control(server, "state")["buy_shipping"][request.reference]

    found = connect(server).find_by_reference(request.reference)
    assert found is not None and found.carrier_shipment_id == ""
    assert found.tracking_number == bought["trackingId"]
    with pytest.raises(PermanentCarrierError, match="Seller Central"):
        connect(server).get_label(found)

    # without the fallback: not found, and buying again is refused before any purchase
    strict = connect(server, reconcile_by_tracking=False)
    assert strict.find_by_reference(request.reference) is None
    with pytest.raises(TransientCarrierError, match="no longer to ship"):
        strict.create_shipment(request)
    assert control(server, "state")["buy_shipping"][request.reference]["purchased"] == 1


def test_partially_shipped_order_gets_a_second_package(spapi_server, connect):
    server = spapi_server()
    carrier = connect(server)
    order = seed_order(server, site=None, status="PARTIALLY_SHIPPED")
    request = request_for(order, "2")
    shipment = carrier.create_shipment(request)
    on_amazon = read_order(server, order["orderId"])
    assert on_amazon["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [p["packageReferenceId"] for p in on_amazon["packages"]] == ["1", shipment.carrier_shipment_id]
    assert (
        connect(server).find_by_reference(request.reference).carrier_shipment_id
        == shipment.carrier_shipment_id
    )
    assert connect(server).find_by_reference(f"{order['orderId']}-3") is None


def test_cancel_before_pickup_and_tracking_with_the_clock(spapi_server, connect):
    server = spapi_server(parcel_outcomes={})  # every parcel picked up within a day
    carrier = connect(server)
    first, second = seed_order(server, site="US"), seed_order(server, site="US", skip=1)
    kept = carrier.create_shipment(request_for(first, service="YUNEXPRESS_AYPZXR"))
    dropped = carrier.create_shipment(request_for(second))

    [info] = carrier.track([kept.tracking_number])
    assert info.status == TrackingStatus.PENDING and [e.code for e in info.events] == ["ReadyForReceive"]

    assert carrier.cancel(dropped) is True
    assert read_order(server, second["orderId"])["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    state = control(server, "state")
    assert state["labels"][dropped.reference]["cancelled"] is True
    assert connect(server).find_by_reference(dropped.reference) is None
    with pytest.raises(PermanentCarrierError):
        connect(server).get_label(dropped)
    assert carrier.track([dropped.tracking_number])[0].status == TrackingStatus.CANCELLED

    control(server, "clock", {"advance_seconds": 25 * 3600})
    with pytest.raises(PermanentCarrierError, match="picked up"):
        connect(server).cancel(kept)
    # a new process tracks by the number's format
    [info] = connect(server).track([kept.tracking_number])
    assert info.status == TrackingStatus.ACCEPTED  # picked up, nothing since
    assert [e.status for e in info.events] == [TrackingStatus.PENDING, TrackingStatus.ACCEPTED]
    assert info.events[1].location.startswith("Shenzhen")

    control(server, "clock", {"advance_seconds": 10 * 86400})
    [info] = carrier.track([kept.tracking_number])
    assert info.status == TrackingStatus.DELIVERED and info.events[-1].code == "Delivered"
    assert control(server, "state")["schema_violations"] == []


def test_uk_order_uses_the_uk_business_and_a_wrong_one_is_refused(spapi_server, connect):
    server = spapi_server()
    order = seed_order(server, site="UK")
    shipment = connect(server).create_shipment(request_for(order))
    assert read_order(server, order["orderId"])["packages"][-1]["trackingNumber"] == shipment.tracking_number

    other = seed_order(server, site="UK", skip=1)
    wrong = connect(server, business_ids={"UK": "AmazonShipping_US"})
    with pytest.raises(PermanentCarrierError, match="cannot ship orders of marketplace"):
        wrong.create_shipment(request_for(other))
    assert f"{other['orderId']}-1" not in control(server, "state")["labels"]


def test_orders_of_a_second_account_are_found_there(spapi_server, connect):
    server = spapi_server(sellers=[DEFAULT_SELLER, OTHER_SELLER])
    carrier = connect(server, sellers=[DEFAULT_SELLER, OTHER_SELLER])
    order = seed_order(server, site="UK", seller="other-seller")
    request = request_for(order, seller="other-seller")
    shipment = carrier.create_shipment(request)
    found = connect(server, sellers=[DEFAULT_SELLER, OTHER_SELLER]).find_by_reference(request.reference)
    assert found.carrier_shipment_id == shipment.carrier_shipment_id
    # the first account does not know the order: only the second one is asked for the label
    assert connect(server, sellers=[DEFAULT_SELLER, OTHER_SELLER]).get_label(found).startswith(b"%PDF-")


def test_non_buy_shipping_site_is_refused_before_any_call(spapi_server, connect):
    server = spapi_server()
    order = seed_order(server, site="US")
    request = request_for(order, site="SE")
    with pytest.raises(PermanentCarrierError, match="not offered on SE"):
        connect(server).create_shipment(request)
    assert control(server, "state")["requests"] == 0
    assert marketplace_id("SE")
