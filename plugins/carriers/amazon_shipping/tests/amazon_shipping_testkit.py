"""Helpers for the Amazon Buy Shipping plugin tests: SP-API clients, the carrier, sample requests,
seed orders, and a small HTTP driver for the SP-API emulator.

A uniquely named module (not ``conftest``) so that test modules can import it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import requests
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier
from mfn_carrier_amazon_shipping.settings import AmazonShippingSettings

from connector.kit import Address, CarrierContext, CustomsLine, Money, Parcel, ShipmentRequest
from connector.kit.amazon import (
    LWA_TOKEN_URL,
    REGION_HOSTS,
    SpApiClient,
    SpApiEmulator,
    connect_account,
    marketplace_id,
    site_for_marketplace,
)
from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import connect

ENDPOINT = REGION_HOSTS["na"]
DEFAULT_SELLER: dict[str, Any] = SpApiEmulator.DEFAULT_SELLER
UNKNOWN_SKU = "DISCONTINUED-SKU-9"  # the SKU the emulator's seed orders carry that no catalog knows
SELLER = Address(
    name="Li Wei",
    company="Shenzhen Demo Trading Co., Ltd.",
    line1="8 Keji South Road",
    line2="Nanshan",
    city="Shenzhen",
    state="Guangdong",
    postal_code="518057",
    country_code="CN",
    phone="+86 755 0000 0000",
)
BUYER = Address(
    name="Jane Q. Buyer",
    line1="1200 Pine Street",
    city="Seattle",
    state="WA",
    postal_code="98101",
    country_code="US",
)
ORDER_ID = "111-1234567-1234567"
REFERENCE = f"{ORDER_ID}-1"
OTHER_SELLER = {
    "name": "other-seller",
    "refresh_token": "Atzr|other",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
    "marketplaces": ["US", "UK"],
}


def make_client(
    *,
    account: str = "demo-seller",
    endpoint: str = ENDPOINT,
    token_url: str = LWA_TOKEN_URL,
    refresh_token: str = "Atzr|sandbox-demo",
    client_id: str = DEFAULT_SELLER["client_id"],
    client_secret: str = DEFAULT_SELLER["client_secret"],
    read_timeout: float = 5,
    session: requests.Session | None = None,
    max_attempts: int = 3,
) -> SpApiClient:
    """An SpApiClient with tiny back-off (for canned HTTP or the emulator)."""
    return connect_account(account=account, endpoint=endpoint, token_url=token_url,
                           refresh_token=refresh_token, client_id=client_id, client_secret=client_secret,
                           session=session,
                           timeout=(2, read_timeout), max_attempts=max_attempts, backoff_base=0.01,
                           backoff_max=0.02)


def emulator_client(server: EmulatorServer, seller: dict[str, Any] | None = None, **kw: Any) -> SpApiClient:
    seller = seller or DEFAULT_SELLER
    return make_client(
        account=seller["name"],
        endpoint=server.url,
        token_url=server.url + "/auth/o2/token",
        refresh_token=seller["refresh_token"],
        client_id=seller["client_id"],
        client_secret=seller["client_secret"],
        **kw,
    )


def carrier_for(clients: Mapping[str, SpApiClient], **settings: Any) -> AmazonShippingCarrier:
    """The carrier the daemon would build from ``carriers.amazon_shipping: settings`` with these
    accounts' clients in its context."""
    context = CarrierContext(http=requests.Session(), amazon=dict(clients))
    carrier = connect(AmazonShippingCarrier, AmazonShippingSettings, settings, context=context)
    assert isinstance(carrier, AmazonShippingCarrier)
    return carrier


def make_request(
    reference: str = REFERENCE,
    *,
    order_id: str = ORDER_ID,
    site: str = "US",
    service: str = "cheapest",
    account: str = "demo-seller",
    lines: tuple[tuple[str, int], ...] = (("PHONE-CASE-01", 1),),
    weight_g: int = 250,
    currency: str = "USD",
) -> ShipmentRequest:
    contents = tuple(
        CustomsLine(
            sku=sku,
            name_en=f"Item {sku}",
            name_cn="商品",
            hs_code="392690",
            quantity=qty,
            unit_value=Money(Decimal("4.50"), currency),
            unit_weight_g=100,
        )
        for sku, qty in lines
    )
    parcel = Parcel(
        weight_g=weight_g,
        length_cm=Decimal("20.5"),
        width_cm=Decimal("15"),
        height_cm=Decimal("3"),
        contents=contents,
    )
    return ShipmentRequest(
        reference=reference,
        order_id=order_id,
        site=site,
        service=service,
        ship_from=SELLER,
        ship_to=BUYER,
        parcel=parcel,
        account=account,
        marketplace_id=marketplace_id(site),
    )


def api_order(
    order_id: str = ORDER_ID,
    *,
    site: str = "US",
    items: tuple[tuple[str, str, int, int], ...] = (("50760246463087", "PHONE-CASE-01", 1, 1),),
    packages: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A v2026 order as getOrder returns it with FULFILLMENT + PACKAGES: items are
    (orderItemId, sellerSku, quantityOrdered, quantityUnfulfilled)."""
    order: dict[str, Any] = {
        "orderId": order_id,
        "createdTime": "2026-01-01T00:00:00Z",
        "lastUpdatedTime": "2026-01-01T00:00:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id(site)},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {
                "orderItemId": iid,
                "quantityOrdered": ordered,
                "product": {"sellerSku": sku},
                "fulfillment": {"quantityFulfilled": ordered - left, "quantityUnfulfilled": left},
            }
            for iid, sku, ordered, left in items
        ],
    }
    if packages:
        order["packages"] = packages
    return order


def seed_order(
    server: EmulatorServer,
    *,
    site: str | None = "US",
    status: str = "UNSHIPPED",
    seller: str = "demo-seller",
    multi: bool | None = None,
    skip: int = 0,
    max_units: int = 5,
) -> dict[str, Any]:
    """A snapshot of a seed order of ``seller`` (MERCHANT, ``status``, every SKU in the seed catalog,
    at most ``max_units`` units still to ship, so the parcel stays light)."""
    emulator = server.emulator
    with emulator.lock:
        found = [
            copy.deepcopy(r["order"])
            for r in emulator.store["orders"].values()
            if r["seller"] == seller
            and (site is None or r["order"]["salesChannel"]["marketplaceId"] == marketplace_id(site))
            and r["order"]["fulfillment"]["fulfillmentStatus"] == status
            and r["order"]["fulfillment"]["fulfilledBy"] == "MERCHANT"
            and not any(it.get("cancellation") for it in r["order"]["orderItems"])
            and all(it["product"]["sellerSku"] != UNKNOWN_SKU for it in r["order"]["orderItems"])
            and (multi is None or (len(r["order"]["orderItems"]) > 1) == multi)
            and sum(it["fulfillment"]["quantityUnfulfilled"] for it in r["order"]["orderItems"]) <= max_units
        ]
    assert len(found) > skip, f"no seed order for site={site} status={status}"
    return found[skip]


def request_for(
    order: dict[str, Any],
    package_ref: str = "1",
    *,
    service: str = "cheapest",
    seller: str = "demo-seller",
    site: str | None = None,
) -> ShipmentRequest:
    """The engine's request for the units of ``order`` still to ship, with its reference format."""
    site = site or site_for_marketplace(order["salesChannel"]["marketplaceId"])
    lines = tuple(
        (it["product"]["sellerSku"], it["fulfillment"]["quantityUnfulfilled"])
        for it in order["orderItems"]
        if it["fulfillment"]["quantityUnfulfilled"] > 0
    )
    currency = order["orderItems"][0]["product"]["price"]["unitPrice"]["currencyCode"]
    return make_request(
        f"{order['orderId']}-{package_ref}",
        order_id=order["orderId"],
        site=site,
        service=service,
        account=seller,
        lines=lines,
        weight_g=sum(q for _, q in lines) * 120,
        currency=currency,
    )


class SpApiDriver:
    """Just enough of an SP-API client to drive the emulator over raw HTTP (one seller)."""

    def __init__(self, server: EmulatorServer, seller: dict[str, Any] | None = None) -> None:
        self.server = server
        self.url = server.url
        self.seller = seller or DEFAULT_SELLER
        self._token: str | None = None

    def for_seller(self, seller: dict[str, Any]) -> SpApiDriver:
        """A driver for another seller of the same emulator."""
        return SpApiDriver(self.server, seller)

    @property
    def token(self) -> str:
        if self._token is None:
            form = {"grant_type": "refresh_token", "refresh_token": self.seller["refresh_token"],
                    "client_id": self.seller["client_id"], "client_secret": self.seller["client_secret"]}
            response = requests.post(self.url + "/auth/o2/token", data=form, timeout=5)
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def headers(self) -> dict[str, str]:
        return {"x-amz-access-token": self.token}

    def get_order(self, order_id: str, **params: Any) -> requests.Response:
        params = {k: ",".join(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()}
        return requests.get(f"{self.url}/orders/2026-01-01/orders/{order_id}", params=params,
                            headers=self.headers(), timeout=5)

    def confirm(self, order_id: str, body: Any) -> requests.Response:
        return requests.post(f"{self.url}/orders/v0/orders/{order_id}/shipmentConfirmation", json=body,
                             headers=self.headers(), timeout=5)

    def state(self) -> dict[str, Any]:
        return requests.get(self.url + "/_sandbox/state", timeout=5).json()

    def advance(self, seconds: float) -> None:
        requests.post(self.url + "/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)

    def set_faults(self, spec: Any) -> None:
        requests.post(self.url + "/_sandbox/faults", json=spec, timeout=5).raise_for_status()

    def orders(self, predicate: Callable[[dict[str, Any]], bool] = lambda o: True) -> list[dict[str, Any]]:
        """Snapshots of this seller's seed orders (white box, to pick orders; behaviour is checked
        over HTTP)."""
        emulator = self.server.emulator
        with emulator.lock:
            return [copy.deepcopy(r["order"]) for r in emulator.store["orders"].values()
                    if r["seller"] == self.seller["name"] and predicate(r["order"])]

    def pick(self, *, status: str = "UNSHIPPED", site: str | None = None, by: str = "MERCHANT",
             where: Callable[[dict[str, Any]], bool] = lambda o: True) -> dict[str, Any]:
        found = self.orders(lambda o: o["fulfillment"]["fulfillmentStatus"] == status
                            and o["fulfillment"]["fulfilledBy"] == by
                            and (site is None or o["salesChannel"]["marketplaceId"] == marketplace_id(site))
                            and where(o))
        assert found, f"no seed order with status={status} site={site}"
        return found[0]
