"""Amazon Shipping API v2 calls on top of the public :meth:`SpApiClient.call`.

Thin, stateless helpers: each builds one request, sends it through the seller account's SP-API
client (rate limiting, LWA, logging, retry policy) and returns the ``payload`` of the answer.
They decide nothing; the carrier (:mod:`.client`) does. The API: Amazon's model
(``spapi_models/shippingV2.json``, vendored from
https://github.com/amzn/selling-partner-api-models/tree/main/models/shipping-api-model) and
Amazon's tutorial:
https://developer-docs.amazon.com/amazon-shipping/docs/tutorial-purchase-a-shipment-from-a-rate

* Every operation's published quota is 80 requests per second, burst 100 (:data:`QUOTAS`, given
  to the client's rate limiter as defaults: configured quotas win).
* Every call carries ``x-amzn-shipping-business-id``. The model says Amazon assumes
  ``AmazonShipping_UK`` without it, so a US call without it is a UK call:
  :func:`business_id_for_site` gives the header for a site (table :data:`BUSINESS_IDS`,
  overridable per call).
* ``getRates``, ``getShipmentDocuments`` and ``getTracking`` buy nothing: they are sent as
  idempotent calls (a 5xx, a timeout or an unreadable answer is retried by the client).
* ``purchaseShipment`` and ``cancelShipment`` change something: a 5xx / timeout / reset raises
  ``TransientError(ambiguous=True)``. A purchase is sent with ``x-amzn-IdempotencyKey``, which the
  model describes as what Amazon uses "to recognize subsequent retries of the same request", so a
  second purchase under the same key returns the original shipment instead of a second label.
* Label ``contents`` are plain base64 (the model's ``Contents``; no gzip, unlike the older
  Merchant Fulfillment API): :func:`decode_contents`.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connector.kit.amazon import TransientError, ship_date_iso

if TYPE_CHECKING:
    from connector.kit.amazon import SpApiClient

RATES_PATH = "/shipping/v2/shipments/rates"
PURCHASE_PATH = "/shipping/v2/shipments"
DOCUMENTS_PATH = "/shipping/v2/shipments/{shipmentId}/documents"
TRACKING_PATH = "/shipping/v2/tracking"
CANCEL_PATH = "/shipping/v2/shipments/{shipmentId}/cancel"

BUSINESS_ID_HEADER = "x-amzn-shipping-business-id"
IDEMPOTENCY_HEADER = "x-amzn-IdempotencyKey"

QUOTAS: dict[str, tuple[float, int]] = {
    "getRates": (80.0, 100),
    "purchaseShipment": (80.0, 100),
    "getShipmentDocuments": (80.0, 100),
    "getTracking": (80.0, 100),
    "cancelShipment": (80.0, 100),
}
"""operationId -> (rate per second, burst): the usage plan each operation's description in the
model publishes."""

# The header's enum in the model; Amazon's default is AmazonShipping_UK.
BUSINESS_ID_VALUES: tuple[str, ...] = (
    "AmazonShipping_US", "AmazonShipping_IN", "AmazonShipping_UK", "AmazonShipping_UAE",
    "AmazonShipping_SA", "AmazonShipping_EG", "AmazonShipping_IT", "AmazonShipping_ES",
    "AmazonShipping_FR", "AmazonShipping_JP",
)

BUSINESS_ID_VERIFIED_SITES: frozenset[str] = frozenset({"US", "UK", "IN", "IT", "ES", "FR", "JP"})
"""Sites whose header value has a same-named entry in the enum."""

BUSINESS_IDS: dict[str, str] = {
    "US": "AmazonShipping_US",
    "UK": "AmazonShipping_UK",
    "IN": "AmazonShipping_IN",
    "IT": "AmazonShipping_IT",
    "ES": "AmazonShipping_ES",
    "FR": "AmazonShipping_FR",
    "JP": "AmazonShipping_JP",
    # UNVERIFIED: the enum has no CA/MX/BR/DE/NL value. The NA sites are served by the NA region
    # like the US, so they take the US business; DE and NL take the EU default (UK). The plugin
    # setting ``business_ids`` overrides these.
    "CA": "AmazonShipping_US",
    "MX": "AmazonShipping_US",
    "BR": "AmazonShipping_US",
    "DE": "AmazonShipping_UK",
    "NL": "AmazonShipping_UK",
    # The enum's Middle East values, for completeness (the site rules decide whether Buy Shipping
    # is offered there).
    "AE": "AmazonShipping_UAE",
    "SA": "AmazonShipping_SA",
    "EG": "AmazonShipping_EG",
}
"""Site code -> ``x-amzn-shipping-business-id``. Always sent explicitly where known."""

DEFAULT_LABEL_SIZE: dict[str, Any] = {"width": 4, "length": 6, "unit": "INCH"}


def add_quotas(client: SpApiClient) -> None:
    """Give the client's rate limiter the Shipping API's published quotas (configured ones win)."""
    client.limiter.add_defaults(QUOTAS)


def business_id_for_site(site: str, overrides: Mapping[str, str] | None = None) -> str:
    """The ``x-amzn-shipping-business-id`` for a site code (``GB`` is read as ``UK``).

    ``overrides`` (site -> value) win over :data:`BUSINESS_IDS`. ValueError for a site without
    a value or a value outside the model's enum.
    """
    key = site.strip().upper()
    key = "UK" if key == "GB" else key
    value = (overrides or {}).get(key) or BUSINESS_IDS.get(key)
    if not value:
        raise ValueError(f"no x-amzn-shipping-business-id is known for site {site!r}; "
                         f"set one in business_ids")
    if value not in BUSINESS_ID_VALUES:
        raise ValueError(f"x-amzn-shipping-business-id {value!r} for site {site} is not one of "
                         f"{', '.join(BUSINESS_ID_VALUES)}")
    return value


def resolve_business_id(business_id: str | None, site: str | None) -> str:
    """``business_id`` when given, else the value for ``site``; one of them is required (the
    header is never left to Amazon's UK default by accident)."""
    if business_id:
        return business_id
    if site:
        return business_id_for_site(site)
    raise ValueError("a Shipping API call needs business_id or site (x-amzn-shipping-business-id)")


def _headers(business_id: str, idempotency_key: str | None = None) -> dict[str, str]:
    if business_id not in BUSINESS_ID_VALUES:
        raise ValueError(f"x-amzn-shipping-business-id {business_id!r} is not one of "
                         f"{', '.join(BUSINESS_ID_VALUES)}")
    headers = {BUSINESS_ID_HEADER: business_id}
    if idempotency_key is not None:
        if not idempotency_key.strip():
            raise ValueError("purchaseShipment: the idempotency key is empty")
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return headers


def _send(client: SpApiClient, operation: str, method: str, path: str, *, idempotent: bool,
          **request: Any) -> Any:
    add_quotas(client)  # cheap and idempotent: any client works, not only the carrier's
    return client.call(operation, method, path, idempotent=idempotent, **request)


def _payload(body: Any, operation: str) -> dict[str, Any]:
    payload = body.get("payload") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        # a 2xx without the payload: the outcome is unknown for a write, a glitch for a read
        raise TransientError(f"{operation} answered without a payload object", status=200,
                             operation=operation, ambiguous=operation in ("purchaseShipment",
                                                                          "cancelShipment"))
    return payload


# -- request bodies (pure) ---------------------------------------------------------------------


def rates_body(*, order_id: str, ship_from: Mapping[str, Any], package: Mapping[str, Any],
               ship_date: datetime | None = None) -> dict[str, Any]:
    """A GetRatesRequest for one package of an Amazon order (``channelType: AMAZON``).

    ``ship_from`` is a Shipping v2 ``Address`` dict and ``package`` a ``Package`` dict (the caller
    maps them); ``shipTo`` is not sent: with AMAZON, Amazon uses the order's address.
    """
    if not order_id or not order_id.strip():
        raise ValueError("getRates: order_id is empty")
    body: dict[str, Any] = {
        "shipFrom": dict(ship_from),
        "packages": [dict(package)],
        "channelDetails": {"channelType": "AMAZON", "amazonOrderDetails": {"orderId": order_id}},
    }
    if ship_date is not None:
        body["shipDate"] = ship_date_iso(ship_date)
    return body


def purchase_body(*, request_token: str, rate_id: str, label_format: str = "PDF",
                  label_size: Mapping[str, Any] | None = None, dpi: int | None = None,
                  document_types: Sequence[str] = ("LABEL",)) -> dict[str, Any]:
    """A PurchaseShipmentRequest asking for the label documents of one rate."""
    if not request_token or not rate_id:
        raise ValueError("purchaseShipment needs a requestToken and a rateId")
    spec: dict[str, Any] = {
        "format": label_format,
        "size": dict(label_size or DEFAULT_LABEL_SIZE),
        "needFileJoining": False,
        "requestedDocumentTypes": list(document_types),
    }
    if dpi is not None:
        spec["dpi"] = dpi
    return {"requestToken": request_token, "rateId": rate_id, "requestedDocumentSpecification": spec}


# -- calls -----------------------------------------------------------------------------------------
#
# Each takes ``business_id`` (an x-amzn-shipping-business-id value) or ``site`` (a site code
# resolved through BUSINESS_IDS); one of the two is required.


def get_rates(client: SpApiClient, *, order_id: str, ship_from: Mapping[str, Any],
              package: Mapping[str, Any], ship_date: datetime | None = None,
              business_id: str | None = None, site: str | None = None) -> dict[str, Any]:
    """``POST /shipping/v2/shipments/rates`` -> the ``GetRatesResult`` (requestToken, rates,
    ineligibleRates). The requestToken is valid for 10 minutes."""
    headers = _headers(resolve_business_id(business_id, site))
    body = rates_body(order_id=order_id, ship_from=ship_from, package=package, ship_date=ship_date)
    return _payload(_send(client, "getRates", "POST", RATES_PATH, json=body, headers=headers,
                          idempotent=True), "getRates")


def purchase_shipment(client: SpApiClient, *, request_token: str, rate_id: str, idempotency_key: str,
                      label_format: str = "PDF", label_size: Mapping[str, Any] | None = None,
                      dpi: int | None = None, business_id: str | None = None,
                      site: str | None = None) -> dict[str, Any]:
    """``POST /shipping/v2/shipments`` with ``x-amzn-IdempotencyKey`` -> the
    ``PurchaseShipmentResult`` (shipmentId, packageDocumentDetails, promise).

    ``InvalidInputError`` with ``code == "TOKEN_EXPIRED"`` means the rate is older than 10
    minutes: rate again and purchase with the SAME key. ``TransientError(ambiguous=True)``: the
    label may have been bought.
    """
    headers = _headers(resolve_business_id(business_id, site), idempotency_key)
    body = purchase_body(request_token=request_token, rate_id=rate_id, label_format=label_format,
                         label_size=label_size, dpi=dpi)
    return _payload(_send(client, "purchaseShipment", "POST", PURCHASE_PATH, json=body, headers=headers,
                          idempotent=False), "purchaseShipment")


def get_shipment_documents(client: SpApiClient, shipment_id: str, package_client_reference_id: str, *,
                           label_format: str | None = "PDF", dpi: int | None = None,
                           business_id: str | None = None, site: str | None = None) -> dict[str, Any]:
    """``GET /shipping/v2/shipments/{shipmentId}/documents`` -> the ``GetShipmentDocumentsResult``
    (shipmentId, packageDocumentDetail). Buys nothing: the label of a purchased shipment again."""
    if not shipment_id or not package_client_reference_id:
        raise ValueError("getShipmentDocuments needs a shipmentId and a packageClientReferenceId")
    headers = _headers(resolve_business_id(business_id, site))
    params: dict[str, str] = {"packageClientReferenceId": package_client_reference_id}
    if label_format:
        params["format"] = label_format
    if dpi is not None:
        params["dpi"] = str(dpi)
    path = DOCUMENTS_PATH.format(shipmentId=quote(shipment_id, safe=""))
    return _payload(_send(client, "getShipmentDocuments", "GET", path, params=params, headers=headers,
                          idempotent=True), "getShipmentDocuments")


def get_tracking(client: SpApiClient, tracking_id: str, carrier_id: str, *,
                 business_id: str | None = None, site: str | None = None) -> dict[str, Any]:
    """``GET /shipping/v2/tracking?trackingId=&carrierId=`` -> the ``GetTrackingResult``
    (summary.status, eventHistory, promisedDeliveryDate)."""
    if not tracking_id or not carrier_id:
        raise ValueError("getTracking needs a trackingId and a carrierId")
    headers = _headers(resolve_business_id(business_id, site))
    params = {"trackingId": tracking_id, "carrierId": carrier_id}
    return _payload(_send(client, "getTracking", "GET", TRACKING_PATH, params=params, headers=headers,
                          idempotent=True), "getTracking")


def cancel_shipment(client: SpApiClient, shipment_id: str, *, business_id: str | None = None,
                    site: str | None = None) -> None:
    """``PUT /shipping/v2/shipments/{shipmentId}/cancel``; None on success (an empty payload)."""
    if not shipment_id:
        raise ValueError("cancelShipment: shipment_id is empty")
    headers = _headers(resolve_business_id(business_id, site))
    path = CANCEL_PATH.format(shipmentId=quote(shipment_id, safe=""))
    body = _send(client, "cancelShipment", "PUT", path, headers=headers, idempotent=False)
    if body is not None:  # Amazon answers {"payload": {}}; an empty 2xx is accepted too
        _payload(body, "cancelShipment")


def decode_contents(contents: str) -> bytes:
    """A ``PackageDocument.contents`` value: plain base64. ValueError if not."""
    if not isinstance(contents, str) or not contents.strip():
        raise ValueError("document contents are empty")
    try:
        return base64.b64decode("".join(contents.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"document contents are not base64: {exc}") from None


__all__ = [
    "BUSINESS_IDS", "BUSINESS_ID_HEADER", "BUSINESS_ID_VALUES", "BUSINESS_ID_VERIFIED_SITES",
    "DEFAULT_LABEL_SIZE", "IDEMPOTENCY_HEADER", "QUOTAS", "add_quotas", "business_id_for_site",
    "cancel_shipment", "decode_contents", "get_rates", "get_shipment_documents",
    "get_tracking", "purchase_body", "purchase_shipment", "rates_body", "resolve_business_id",
]
