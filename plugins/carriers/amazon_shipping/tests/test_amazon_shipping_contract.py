"""The carrier contract (``connector.kit.testing``) run against Amazon Buy Shipping and its emulator
(mounted on the SP-API emulator).

Two adaptations, both about Buy Shipping being an Amazon API rather than a carrier's:

* The emulator's orders are seeded, and Buy Shipping only sells labels for real orders of the
  seller: :meth:`make_request` takes a fresh seeded US order per request and uses the engine's
  reference format ``<orderId>-1`` (``new_reference`` keeps the contract's synthetic order ids,
  which Amazon does not know: ``find_by_reference`` answers None for them).
* One label takes several SP-API calls (getOrder, getRates, purchaseShipment). The contract's
  "ambiguous failure" and "5xx buys nothing" tests fault *every* request, so the purchase would
  never be reached; here they fault the purchase only (``fault_operations``), which is the call
  whose lost answer matters. Every other contract test faults every request.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from amazon_shipping_testkit import UNKNOWN_SKU, request_for
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier

from connector.kit import Carrier, ShipmentRequest
from connector.kit.amazon import marketplace_id
from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import CarrierContract


@pytest.fixture
def emulator(spapi_server: Callable[..., EmulatorServer]) -> EmulatorServer:
    return spapi_server()


@pytest.fixture
def carrier(emulator: EmulatorServer, connect: Callable[..., AmazonShippingCarrier]) -> AmazonShippingCarrier:
    # Short read timeout (the contract answers late on purpose); no label cache, so get_label
    # always takes the stateless getShipmentDocuments path.
    return connect(emulator, read_timeout=0.5, label_cache_size=0)


class TestAmazonShippingContract(CarrierContract):
    carrier_code = "amazon_shipping"
    site = "US"
    service = "YUNEXPRESS_AYPZXR"

    @pytest.fixture(autouse=True)
    def _seeded_orders(self, emulator: EmulatorServer) -> Iterator[None]:
        self._server = emulator
        self._used: set[str] = set()
        yield
        emulator.emulator.fault_operations = None

    def _fresh_order(self) -> dict[str, Any]:
        emulator = self._server.emulator
        with emulator.lock:
            for record in emulator.store["orders"].values():
                order = record["order"]
                items = order["orderItems"]
                if (
                    record["seller"] == "demo-seller"
                    and order["orderId"] not in self._used
                    and order["salesChannel"]["marketplaceId"] == marketplace_id(self.site)
                    and order["fulfillment"]
                    == {**order["fulfillment"], "fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"}
                    and not any(it.get("cancellation") for it in items)
                    and all(it["product"]["sellerSku"] != UNKNOWN_SKU for it in items)
                    and sum(it["fulfillment"]["quantityUnfulfilled"] for it in items) <= 5
                ):
                    self._used.add(order["orderId"])
                    return copy.deepcopy(order)
        pytest.fail("the SP-API emulator has no unused seeded order left for the contract", pytrace=False)

    def make_request(self, reference: str | None = None, **overrides: Any) -> ShipmentRequest:
        if reference is not None:
            order_id, _, ref = reference.rpartition("-")
            with self._server.emulator.lock:
                record = self._server.emulator.store["orders"].get(order_id)
                order = copy.deepcopy(record["order"]) if record else None
            if order is None:  # not a seeded order: the contract's request, which Amazon refuses
                return super().make_request(reference, **overrides)
            request = request_for(order, ref, service=self._service())
        else:
            request = request_for(self._fresh_order(), "1", service=self._service())
        return dataclasses.replace(request, **overrides) if overrides else request

    def _fault_the_purchase_only(self) -> None:
        self._server.emulator.fault_operations = frozenset({"purchaseShipment"})

    @pytest.mark.parametrize("fault", ["timeout", "reset"])
    def test_ambiguous_failure_then_reconcile(self, carrier: Carrier, fault: str) -> None:
        self._fault_the_purchase_only()
        super().test_ambiguous_failure_then_reconcile(carrier, fault)

    def test_server_error_is_transient_and_buys_nothing(self, carrier: Carrier) -> None:
        self._fault_the_purchase_only()
        super().test_server_error_is_transient_and_buys_nothing(carrier)
