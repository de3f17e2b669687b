"""The Shipping API v2 (Amazon Buy Shipping) emulator, mounted on the SP-API emulator.

Buy Shipping is an SP-API: it shares the SP-API host's sellers, access tokens, quotas, orders,
clock and faults. So this is not an emulator of its own but an extension of the SP-API emulator:
the plugin registers ``EmulatorSpec(name="amazon_shipping", factory=BuyShippingEmulator,
mount_on="spapi")`` and the sandbox calls ``BuyShippingEmulator(spapi, options)``, which mounts
its routes on the running SP-API emulator (``spapi.mount``) and uses its public extension API.

Routes (each named by its operationId, for quotas and ``fault_operations``):
``POST /shipping/v2/shipments/rates`` (getRates), ``POST /shipping/v2/shipments``
(purchaseShipment), ``GET /shipping/v2/shipments/{shipmentId}/documents``
(getShipmentDocuments), ``GET /shipping/v2/tracking`` (getTracking),
``PUT /shipping/v2/shipments/{shipmentId}/cancel`` (cancelShipment). Requests and answers are
validated against Amazon's model (``spapi_models/shippingV2.json``, registered with the SP-API
emulator's validator); the quotas are the model's (80 per second, burst 100; configured ones win).

Behaviour (data in :mod:`.sandbox_data`): ``channelType: AMAZON`` orders of the caller on a Buy
Shipping site, ``x-amzn-shipping-business-id`` checked against the order's site (missing =
``AmazonShipping_UK``), four China carriers offered differently per site (plus
``ineligibleRates``), one package per shipment with ``itemIdentifier`` = orderItemId,
requestTokens valid 10 simulated minutes and single-use (then ``TOKEN_EXPIRED``),
``x-amzn-IdempotencyKey`` (same key -> the original shipment, no second label), plain-base64 PDF
labels, tracking from the framework's parcel lives (:class:`connector.kit.sandbox.ParcelLives` of
the SP-API emulator: an outcome per tracking id -- delivered, late, never picked up, failed
delivery, returned, lost -- and a timeline over the service's transit days on the simulated
clock; Amazon's event codes, the way back as the ``RETURNS`` leg, times in UTC), cancellation
(refund, package removed) until the carrier's pickup (the first scan). A purchase adds the
package to the order as confirmShipment does (``packageReferenceId`` = the shipment id, or an
unrelated number with the option ``package_ids: opaque``), locks it against confirmShipment, and
is never listed under ``confirmations``; ``GET /_sandbox/state`` of the SP-API emulator reports it under
``buy_shipping`` and, for the exactly-once audits, under ``labels``
(``{idempotencyKey: {"created": n, ...}}``).

Options (``sandbox.emulators.amazon_shipping``): ``package_ids`` (``shipment_id`` | ``opaque``),
``parcel_outcomes`` and ``first_scan_hours`` (given here, they configure the SP-API emulator's
parcel lives, which only Buy Shipping uses).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.kit.sandbox import ParcelLife, Request, Response, make_label_pdf, route

from . import sandbox_data as bs
from .api import QUOTAS

if TYPE_CHECKING:
    from connector.kit.amazon import SpApiEmulator

MODEL = Path(__file__).with_name("spapi_models") / "shippingV2.json"
"""Amazon's Shipping API v2 model, vendored from
https://github.com/amzn/selling-partner-api-models/tree/main/models/shipping-api-model (Apache-2.0,
see LICENSE and NOTICE next to it)."""

LOCKED = "was created by a label purchased through Amazon Buy Shipping"
"""Why confirmShipment may not edit a package a purchase created."""


def _empty_store() -> dict[str, Any]:
    return {"counter": 0, "token_counter": 0, "tokens": {}, "shipments": {}, "keys": {}, "tracking": {},
            "rate_requests": 0}


def register_model() -> None:
    """Make the SP-API emulator's validator know the Shipping API v2 operations."""
    from connector.kit.amazon import SpApiEmulator

    SpApiEmulator.add_models(MODEL)


def request_problems(operation: str, **request: Any) -> list[str]:
    """What Amazon's model refuses in a Shipping API request (empty: valid), e.g.
    ``request_problems("getRates", body={...})``."""
    from connector.kit.amazon import SpApiEmulator

    register_model()
    return SpApiEmulator.request_problems(operation, **request)


def spapi_emulator(options: dict[str, Any] | None = None) -> SpApiEmulator:
    """A fresh SP-API emulator with Buy Shipping mounted (what the sandbox builds; for tests)."""
    from connector.kit.amazon import SpApiEmulator

    spapi = SpApiEmulator(options)
    BuyShippingEmulator(spapi, options)
    return spapi


class BuyShippingEmulator:
    """Shipping API v2 on the SP-API emulator ``spapi`` (see the module docstring)."""

    def __init__(self, spapi: SpApiEmulator, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.spapi = spapi
        self.package_ids = str(options.get("package_ids", "shipment_id"))
        if self.package_ids not in ("shipment_id", "opaque"):
            raise ValueError("package_ids must be 'shipment_id' or 'opaque'")
        spapi.parcels.configure({k: v for k, v in options.items()
                                 if k in ("parcel_outcomes", "first_scan_hours")})
        spapi.add_models(MODEL)
        spapi.add_quotas({op: {"rate": rate, "burst": burst} for op, (rate, burst) in QUOTAS.items()})
        self.store = spapi.substore("buy_shipping", _empty_store)
        spapi.mount(self)

    # -- routes --------------------------------------------------------------------------------
    #
    # getRates -> purchaseShipment (x-amzn-IdempotencyKey) -> getShipmentDocuments / getTracking /
    # cancelShipment, for Amazon orders (channelType AMAZON) of Buy Shipping sites. Every route is
    # an SP-API operation named like its operationId: the host serves it (token, quota, answer
    # validation) and calls the route method with the request and the calling seller.

    def serve_route(self, name: str, handler: Callable[[Request, Any], tuple[int, Any]],
                    request: Request) -> Response:
        return self.spapi.call(name, request, handler)

    # -- checks --------------------------------------------------------------------------------

    def _body(self, request: Request, operation: str, model: str) -> dict[str, Any]:
        """The JSON body of ``operation``, checked against Amazon's model: a ``model`` object."""
        body = self.spapi.json_body(request)
        self.spapi.check_request(operation, body=body)
        if not isinstance(body, dict):
            raise self.spapi.invalid(f"The request body must be a {model} object.")
        return body

    def _business_id(self, request: Request) -> str:
        """The x-amzn-shipping-business-id of the request (Amazon's default when absent)."""
        value = request.headers.get("x-amzn-shipping-business-id", "").strip()
        if not value:
            return bs.DEFAULT_BUSINESS_ID
        if value not in bs.BUSINESS_ID_VALUES:
            raise self.spapi.invalid(f"x-amzn-shipping-business-id {value} is not one of "
                                     f"{', '.join(sorted(bs.BUSINESS_ID_VALUES))}.")
        return value

    def _buy_shipping_site(self, order: dict[str, Any], business_id: str) -> str:
        """The order's site when Buy Shipping can ship it under ``business_id``; else 400."""
        invalid = self.spapi.invalid
        order_id = order["orderId"]
        marketplace = order["salesChannel"].get("marketplaceId")
        site = self.spapi.site_of(order)
        if site not in bs.BUY_SHIPPING_SITES:
            raise invalid(f"Amazon Buy Shipping is not available for order {order_id}: marketplace "
                          f"{marketplace} ({site or 'unknown'}) is not a Buy Shipping marketplace.")
        if business_id not in bs.ACCEPTED_BUSINESS_IDS[site]:
            accepted = " or ".join(sorted(bs.ACCEPTED_BUSINESS_IDS[site]))
            raise invalid(f"x-amzn-shipping-business-id {business_id} cannot ship orders of marketplace "
                          f"{marketplace} ({site}); use {accepted}.")
        fulfillment = order.get("fulfillment", {})
        if fulfillment.get("fulfilledBy") != "MERCHANT":
            raise invalid(f"Order {order_id} is fulfilled by Amazon; Buy Shipping is for merchant-"
                          "fulfilled orders.")
        status = fulfillment.get("fulfillmentStatus")
        if status == "CANCELLED":
            raise invalid(f"Order {order_id} is cancelled; no label can be bought for it.")
        if status not in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"):
            raise invalid(f"Order {order_id} is {status} and cannot be shipped yet.")
        return site

    # -- getRates ------------------------------------------------------------------------------

    @route("POST", r"/shipping/v2/shipments/rates", name="getRates")
    def get_rates(self, request: Request, seller: Any) -> tuple[int, Any]:
        spapi, invalid = self.spapi, self.spapi.invalid
        body = self._body(request, "getRates", "GetRatesRequest")
        business_id = self._business_id(request)
        channel = body["channelDetails"]
        if channel.get("channelType") != "AMAZON":
            raise invalid("The sandbox sells Buy Shipping for Amazon orders only: "
                          "channelDetails.channelType must be AMAZON.")
        order_id = (channel.get("amazonOrderDetails") or {}).get("orderId")
        if not order_id:
            raise invalid("channelDetails.amazonOrderDetails.orderId is required when channelType is "
                          "AMAZON.")
        if not spapi.ORDER_ID.match(str(order_id)):
            raise invalid(f"orderId {order_id} is not a valid order id (3-7-7 format expected).")
        order = spapi.order_for(order_id, seller)
        site = self._buy_shipping_site(order, business_id)
        if len(body["packages"]) != 1:
            raise invalid("Each shipment is limited to a single package: send exactly one in packages.")
        package = body["packages"][0]
        reference = str(package["packageClientReferenceId"]).strip()
        if not reference:
            raise invalid("packages[0].packageClientReferenceId must not be empty.")
        for i, item in enumerate(package["items"]):
            if not item.get("itemIdentifier"):
                raise invalid(f"packages[0].items[{i}].itemIdentifier must be the order item id "
                              "(orderItemId) of an item of the Amazon order.")
            if "itemValue" not in item:
                raise invalid(f"packages[0].items[{i}].itemValue is required to generate a label.")
        lines = [(it["itemIdentifier"], it["quantity"]) for it in package["items"]]
        wanted = spapi.package_items(order, lines, field="itemIdentifier",
                                     empty="packages[0].items must list at least one order item.")
        weight_g = bs.grams(package["weight"])
        dims = package["dimensions"]
        if weight_g <= 0 or min(float(dims["length"]), float(dims["width"]), float(dims["height"])) <= 0:
            raise invalid("packages[0].weight and dimensions must be greater than zero.")
        now = spapi.now()
        ship_date = now
        if body.get("shipDate"):
            ship_date = spapi.parse_time(body["shipDate"])
            if ship_date is None:
                raise invalid("shipDate must be an ISO 8601 date-time.")
        destination = (order.get("recipient", {}).get("deliveryAddress", {}).get("countryCode")
                       or ("GB" if site == "UK" else site))

        store = self.store
        store["token_counter"] += 1
        store["rate_requests"] += 1
        token = hashlib.sha256(f"{spapi.seed}:rates:{store['token_counter']}:{seller.name}".encode()) \
            .hexdigest()[:29].upper()
        card = bs.SITE_CARDS[site]
        iso = spapi.format_time
        rates, ineligible, offered = [], [], {}
        for service in bs.SERVICES.values():
            carrier = bs.carrier_name(service.carrier_id, site)
            reasons = []
            if service.service_id not in card.services:
                reasons.append({"code": "NO_COVERAGE", "message": f"{service.name} does not serve "
                                f"{site} orders."})
            elif destination not in service.destinations:
                reasons.append({"code": "NO_COVERAGE", "message": f"{service.name} does not deliver to "
                                f"{destination}."})
            elif weight_g > service.max_weight_g:
                reasons.append({"code": "WEIGHT_RESTRICTIONS", "message": f"{service.name} takes parcels "
                                f"up to {service.max_weight_g} g."})
            if reasons:
                ineligible.append({"serviceId": service.service_id, "serviceName": service.name,
                                   "carrierName": carrier, "carrierId": service.carrier_id,
                                   "ineligibilityReasons": reasons})
                continue
            rate_id = hashlib.sha256(f"{token}:{service.service_id}".encode()).hexdigest()[:29].upper()
            charge = bs.price(service, site, weight_g)
            fee = bs.handling(service, site)  # rate items: BASE_RATE + TRANSACTION_FEE = totalCharge
            earliest = ship_date + timedelta(days=max(1, service.transit_days - 3))
            promise = {
                "deliveryWindow": {"start": iso(earliest),
                                   "end": iso(ship_date + timedelta(days=service.transit_days))},
                "pickupWindow": {"start": iso(ship_date), "end": iso(ship_date + timedelta(days=1))},
            }
            rates.append({
                "rateId": rate_id,
                "carrierId": service.carrier_id,
                "carrierName": carrier,
                "serviceId": service.service_id,
                "serviceName": service.name,
                "billedWeight": {"value": bs.billed_weight_g(weight_g), "unit": "GRAM"},
                "totalCharge": {"value": bs.money_number(charge), "unit": card.currency},
                "promise": promise,
                "supportedDocumentSpecifications": [
                    {"format": "PDF", "size": {"width": w, "length": length, "unit": unit},
                     "printOptions": [{"supportedDPIs": [203, 300], "supportedPageLayouts": ["DEFAULT"],
                                       "supportedFileJoiningOptions": [False],
                                       "supportedDocumentDetails": [{"name": "LABEL", "isMandatory": True}]}]}
                    for w, length, unit in card.label_sizes],
                "requiresAdditionalInputs": False,
                "rateItemList": [{"rateItemID": "BASE_RATE", "rateItemType": "MANDATORY",
                                  "rateItemCharge": {"value": bs.money_number(charge - fee),
                                                     "unit": card.currency}},
                                 {"rateItemID": "TRANSACTION_FEE", "rateItemType": "MANDATORY",
                                  "rateItemCharge": {"value": bs.money_number(fee),
                                                     "unit": card.currency}}],
                "paymentType": "PAY_THROUGH_AMAZON",
            })
            offered[rate_id] = {"serviceId": service.service_id, "carrierId": service.carrier_id,
                                "carrierName": carrier, "serviceName": service.name,
                                "totalCharge": {"value": bs.money_number(charge), "unit": card.currency},
                                "transitDays": service.transit_days, "promise": promise}
        tokens = store["tokens"]
        for stale in [t for t, r in tokens.items() if r["createdAt"] < now.timestamp() - 86400]:
            del tokens[stale]
        tokens[token] = {"seller": seller.name, "orderId": order_id, "site": site, "businessId": business_id,
                         "createdAt": now.timestamp(), "shipDate": ship_date.timestamp(),
                         "packageClientReferenceId": reference, "destination": destination,
                         "items": [{"orderItemId": i, "quantity": q} for i, q in wanted.items()],
                         "rates": offered, "usedBy": None}
        return 200, {"payload": {"requestToken": token, "rates": rates, "ineligibleRates": ineligible}}

    # -- purchaseShipment ----------------------------------------------------------------------

    @route("POST", r"/shipping/v2/shipments", name="purchaseShipment")
    def purchase_shipment(self, request: Request, seller: Any) -> tuple[int, Any]:
        spapi, invalid = self.spapi, self.spapi.invalid
        body = self._body(request, "purchaseShipment", "PurchaseShipmentRequest")
        business_id = self._business_id(request)
        store = self.store
        key = request.headers.get("x-amzn-idempotencykey", "").strip()
        keys = store["keys"].setdefault(seller.name, {})
        record = keys.get(key) if key else None
        if record is not None:
            record["requests"] += 1
            shipment = store["shipments"][record["shipmentId"]]
            if shipment["cancelledAt"] is None:
                # "recognize subsequent retries of the same request": the original shipment, no new label
                return 200, {"payload": self._purchase_result(shipment)}

        token = str(body["requestToken"])
        offer = store["tokens"].get(token)
        if offer is None or offer["seller"] != seller.name:
            raise invalid("requestToken is invalid or unknown; get rates first.")
        if spapi.now().timestamp() - offer["createdAt"] > bs.TOKEN_TTL.total_seconds():
            raise spapi.error(400, "TOKEN_EXPIRED", "The requestToken has expired: a shipment must be "
                              "purchased within 10 minutes of getRates. Get rates for the shipment again.")
        if offer["usedBy"] is not None:
            raise invalid("requestToken has already been used for a purchase; get rates again.")
        rate = offer["rates"].get(str(body["rateId"]))
        if rate is None:
            raise invalid(f"rateId {body['rateId']} is not a rate of this requestToken.")
        order = spapi.order_for(offer["orderId"], seller)
        site = self._buy_shipping_site(order, business_id)
        spec = body["requestedDocumentSpecification"]
        card = bs.SITE_CARDS[site]
        size = spec["size"]
        if spec["format"] != "PDF" or not any(
                size.get("unit") == unit and abs(float(size["width"]) - w) < 1e-6
                and abs(float(size["length"]) - length) < 1e-6 for w, length, unit in card.label_sizes):
            supported = ", ".join(f"PDF {w:g}x{length:g} {unit}" for w, length, unit in card.label_sizes)
            raise invalid(f"requestedDocumentSpecification {spec['format']} {size.get('width')}x"
                          f"{size.get('length')} {size.get('unit')} is not supported by this rate "
                          f"(supported: {supported}).")
        if set(spec["requestedDocumentTypes"]) != {"LABEL"}:
            raise invalid("requestedDocumentSpecification.requestedDocumentTypes: this rate supports "
                          "LABEL only.")
        if spec.get("dpi") is not None and spec["dpi"] not in (203, 300):
            raise invalid("requestedDocumentSpecification.dpi must be one of 203, 300.")
        # the items may have shipped since the rate (another label, a confirmShipment)
        spapi.package_items(order, [(i["orderItemId"], i["quantity"]) for i in offer["items"]],
                            field="itemIdentifier", empty="no items")

        store["counter"] += 1
        number = store["counter"]
        prefix = int(hashlib.sha256(f"spapi-shipments:{spapi.seed}".encode()).hexdigest()[:8], 16) % 10**5
        shipment_id = f"8{prefix:05d}{number:08d}"
        rng = random.Random(f"spapi-buy-shipping:{spapi.seed}:{number}")
        tracking = bs.tracking_number(rate["carrierId"], rng)
        while tracking in store["tracking"]:
            tracking = bs.tracking_number(rate["carrierId"], rng)
        if self.package_ids == "shipment_id":
            package_ref = shipment_id
        else:  # an Amazon-assigned number unrelated to the shipment id
            digest = int(hashlib.sha256(shipment_id.encode()).hexdigest()[:12], 16)
            package_ref = str(10**9 + digest % (9 * 10**9))
        now = spapi.now()
        stamp = spapi.format_time(now)
        package = {
            "packageReferenceId": package_ref,
            "createdTime": stamp,
            "packageStatus": {"status": "SHIPPED"},
            "carrier": rate["carrierName"],
            "shipTime": spapi.format_time(datetime.fromtimestamp(offer["shipDate"], timezone.utc)),
            "shippingService": rate["serviceName"],
            "trackingNumber": tracking,
            "packageItems": [dict(i) for i in offer["items"]],
        }
        spapi.put_package(order, package, now=stamp)
        spapi.lock_package(offer["orderId"], package_ref, LOCKED)  # confirmed by the purchase itself
        offer["usedBy"] = shipment_id
        shipment = {
            "seller": seller.name, "orderId": offer["orderId"], "site": site, "businessId": business_id,
            "idempotencyKey": key, "packageClientReferenceId": offer["packageClientReferenceId"],
            "packageReferenceId": package_ref, "trackingId": tracking, "carrierId": rate["carrierId"],
            "carrierName": rate["carrierName"], "serviceId": rate["serviceId"],
            "serviceName": rate["serviceName"], "totalCharge": dict(rate["totalCharge"]),
            "transitDays": rate["transitDays"], "promise": copy.deepcopy(rate["promise"]),
            "destination": offer["destination"], "purchasedAt": now.timestamp(), "cancelledAt": None,
            "refunded": False, "shipmentId": shipment_id,
        }
        store["shipments"][shipment_id] = shipment
        store["tracking"][tracking] = shipment_id
        self._life(shipment)
        if key:
            entry = keys.setdefault(key, {"purchased": 0, "requests": 0, "shipmentIds": []})
            entry["purchased"] += 1
            entry["requests"] += 1
            entry["shipmentIds"].append(shipment_id)
            entry["shipmentId"] = shipment_id
        return 200, {"payload": self._purchase_result(shipment)}

    @staticmethod
    def _label(shipment: dict[str, Any]) -> dict[str, Any]:
        """The LABEL document, regenerated identically on every request (no buyer PII on it)."""
        pdf = make_label_pdf([
            shipment["carrierName"], shipment["trackingId"], shipment["serviceName"],
            f"Amazon Buy Shipping - order {shipment['orderId']}",
            f"Destination: {shipment['destination']}", f"Ref: {shipment['packageClientReferenceId']}",
        ])
        return {"type": "LABEL", "format": "PDF", "contents": base64.b64encode(pdf).decode("ascii")}

    def _purchase_result(self, shipment: dict[str, Any]) -> dict[str, Any]:
        return {"shipmentId": shipment["shipmentId"],
                "packageDocumentDetails": [{"packageClientReferenceId": shipment["packageClientReferenceId"],
                                            "packageDocuments": [self._label(shipment)],
                                            "trackingId": shipment["trackingId"]}],
                "promise": copy.deepcopy(shipment["promise"])}

    # -- documents, tracking, cancel -----------------------------------------------------------

    def _shipment_for(self, shipment_id: str, seller: Any) -> dict[str, Any]:
        shipment = self.store["shipments"].get(shipment_id)
        if shipment is None or shipment["seller"] != seller.name:
            raise self.spapi.error(404, "NotFound", f"Shipment {shipment_id} was not found.")
        return shipment

    @route("GET", r"/shipping/v2/shipments/(?P<shipmentId>[^/]+)/documents", name="getShipmentDocuments")
    def get_shipment_documents(self, request: Request, seller: Any) -> tuple[int, Any]:
        spapi, invalid = self.spapi, self.spapi.invalid
        shipment_id = request.params["shipmentId"]
        spapi.check_request("getShipmentDocuments", path_params={"shipmentId": shipment_id},
                            query=request.query)
        self._business_id(request)
        shipment = self._shipment_for(shipment_id, seller)
        reference = spapi.arg(request, "packageClientReferenceId") or ""
        if reference != shipment["packageClientReferenceId"]:
            raise invalid(f"packageClientReferenceId {reference} is not a package of shipment {shipment_id}.")
        if shipment["cancelledAt"] is not None:
            raise invalid(f"Shipment {shipment_id} is cancelled; its documents are no longer available.")
        fmt = spapi.arg(request, "format")
        if fmt is not None and fmt != "PDF":
            raise invalid(f"format {fmt} is not supported for shipment {shipment_id} (supported: PDF).")
        dpi = spapi.arg(request, "dpi")
        if dpi is not None and dpi not in ("203", "300"):
            raise invalid("dpi must be one of 203, 300.")
        return 200, {"payload": {"shipmentId": shipment_id, "packageDocumentDetail": {
            "packageClientReferenceId": shipment["packageClientReferenceId"],
            "packageDocuments": [self._label(shipment)], "trackingId": shipment["trackingId"]}}}

    @route("GET", r"/shipping/v2/tracking", name="getTracking")
    def get_tracking(self, request: Request, seller: Any) -> tuple[int, Any]:
        spapi = self.spapi
        spapi.check_request("getTracking", query=request.query)
        self._business_id(request)
        tracking = spapi.arg(request, "trackingId") or ""
        carrier_id = spapi.arg(request, "carrierId") or ""
        shipment_id = self.store["tracking"].get(tracking)
        shipment = self.store["shipments"].get(shipment_id or "")
        if shipment is None or shipment["seller"] != seller.name:
            raise spapi.error(404, "NotFound", f"No shipment purchased through the Shipping API has tracking "
                              f"id {tracking}.")
        if carrier_id != shipment["carrierId"]:
            raise spapi.invalid(f"carrierId {carrier_id} does not match tracking id {tracking}.")
        purchased = datetime.fromtimestamp(shipment["purchasedAt"], timezone.utc)
        events, summary = bs.tracking_events(self._life(shipment), now=spapi.now(), site=shipment["site"],
                                             destination=shipment["destination"])
        promised = purchased + timedelta(days=shipment["transitDays"])
        return 200, {"payload": {"trackingId": tracking, "alternateLegTrackingId": "",
                                 "eventHistory": events, "promisedDeliveryDate": spapi.format_time(promised),
                                 "summary": summary}}

    @route("PUT", r"/shipping/v2/shipments/(?P<shipmentId>[^/]+)/cancel", name="cancelShipment")
    def cancel_shipment(self, request: Request, seller: Any) -> tuple[int, Any]:
        spapi = self.spapi
        shipment_id = request.params["shipmentId"]
        spapi.check_request("cancelShipment", path_params={"shipmentId": shipment_id}, query=request.query)
        self._business_id(request)
        shipment = self._shipment_for(shipment_id, seller)
        if shipment["cancelledAt"] is not None:  # cancelling twice is a no-op (a safe retry)
            return 200, {"payload": {}}
        now = spapi.now()
        if self._life(shipment).scanned(now):
            raise spapi.invalid(f"Shipment {shipment_id} has been picked up by the carrier and can no longer "
                                "be cancelled.")
        shipment["cancelledAt"] = now.timestamp()
        shipment["refunded"] = True
        self.spapi.parcels.cancel(shipment["trackingId"], now)
        order = spapi.order_for(shipment["orderId"], seller)
        spapi.drop_package(order, shipment["packageReferenceId"], now=spapi.format_time(now))
        return 200, {"payload": {}}

    def _life(self, shipment: dict[str, Any]) -> ParcelLife:
        """The parcel's life, on the SP-API emulator's parcel lives (registered at the purchase; a
        shipment of an older state file gets one now): the promise's transit days, the tracking id,
        also found by the shipment id."""
        days = int(shipment["transitDays"])
        return self.spapi.parcels.register(
            shipment["trackingId"], created_at=datetime.fromtimestamp(shipment["purchasedAt"], timezone.utc),
            transit_days=(max(1, days - 3), days), aliases=[shipment["shipmentId"]])

    # -- state ---------------------------------------------------------------------------------

    def package_shipment(self, order_id: str, package_reference_id: str) -> dict[str, Any] | None:
        """The live (not cancelled) shipment behind an order package, if a purchase made it."""
        for shipment in self.store["shipments"].values():
            if (shipment["orderId"] == order_id and shipment["packageReferenceId"] == package_reference_id
                    and shipment["cancelledAt"] is None):
                return shipment
        return None

    def sandbox_state(self) -> dict[str, Any]:
        """``buy_shipping`` and ``labels`` per idempotency key (purchases without a key are
        listed under ``shipment:<id>``), for the exactly-once audits; merged into the SP-API
        emulator's ``GET /_sandbox/state``."""
        store = self.store
        buy: dict[str, Any] = {}
        labels: dict[str, Any] = {}
        keyed: set[str] = set()
        for seller, keys in store["keys"].items():
            for key, entry in keys.items():
                shipment = store["shipments"][entry["shipmentId"]]
                keyed.update(entry["shipmentIds"])
                name = key if key not in buy else f"{seller}/{key}"
                buy[name] = {"purchased": entry["purchased"], "requests": entry["requests"],
                             "shipmentId": shipment["shipmentId"], "trackingId": shipment["trackingId"],
                             "orderId": shipment["orderId"], "cancelled": shipment["cancelledAt"] is not None,
                             "seller": seller, "carrierName": shipment["carrierName"],
                             "serviceId": shipment["serviceId"], "totalCharge": dict(shipment["totalCharge"]),
                             "packageReferenceId": shipment["packageReferenceId"],
                             "shipmentIds": list(entry["shipmentIds"])}
        for shipment_id, shipment in store["shipments"].items():
            if shipment_id not in keyed:
                buy[f"shipment:{shipment_id}"] = {
                    "purchased": 1, "requests": 1, "shipmentId": shipment_id,
                    "trackingId": shipment["trackingId"], "orderId": shipment["orderId"],
                    "cancelled": shipment["cancelledAt"] is not None, "seller": shipment["seller"],
                    "carrierName": shipment["carrierName"], "serviceId": shipment["serviceId"],
                    "totalCharge": dict(shipment["totalCharge"]),
                    "packageReferenceId": shipment["packageReferenceId"], "shipmentIds": [shipment_id]}
        for name, entry in buy.items():
            labels[name] = {"created": entry["purchased"], "tracking_number": entry["trackingId"],
                            "shipment_id": entry["shipmentId"], "waybill": entry["shipmentId"],
                            "cancelled": entry["cancelled"], "order_id": entry["orderId"],
                            "waybills": list(entry["shipmentIds"])}
        return {"buy_shipping": buy, "labels": labels, "buy_shipping_rate_requests": store["rate_requests"]}
