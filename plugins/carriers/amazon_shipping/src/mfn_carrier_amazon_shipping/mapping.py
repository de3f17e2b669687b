"""Pure mapping between the connector's types and Shipping API v2 bodies (no I/O).

* :func:`parse_reference` -- the engine's reference contract ``{orderId}-{packageRef}``;
* :func:`package_body` / :func:`address_body` -- the GetRatesRequest parts, items identified by
  their Amazon ``orderItemId`` (Amazon: "the Order Item ID should be sent in the itemIdentifier
  attribute", https://developer-docs.amazon.com/amazon-shipping/docs/tutorial-purchase-a-shipment-from-a-rate),
  found from the order's SKUs by :func:`order_item_lines`;
* :func:`select_rate` -- the rate to buy; :func:`quotes_from_rates`;
* :func:`shipment_from_purchase` / :func:`label_from_documents` -- plain-base64 labels;
  :func:`shipment` -- what the client returns for a shipment it found;
* :func:`tracking_info` -- getTracking to :class:`~connector.kit.TrackingInfo`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

from connector.kit import Money, Quote, Shipment, TrackingEvent, TrackingInfo, TrackingStatus
from connector.kit.amazon import parse_api_time

from . import CODE
from .api import decode_contents
from .settings import CHEAPEST

if TYPE_CHECKING:
    from connector.kit import Address, ShipmentRequest

T = TypeVar("T")
REFERENCE = re.compile(r"^(?P<order>\d{3}-\d{7}-\d{7})-(?P<package>[1-9]\d{0,8})$")


class MappingError(ValueError):
    """The request cannot be expressed, or an answer lacks what we need (message names it)."""


class MalformedAnswer(MappingError):
    """Amazon's answer is not in the shape its model gives (a field missing, a string where an
    object was): the answer's fault, not the order's, so worth asking again."""


def reads_answer(read: Callable[..., T]) -> Callable[..., T]:
    """For a function that reads an answer of Amazon's: whatever shape it did not expect comes out
    as a :class:`MalformedAnswer` naming it, never as an AttributeError from deep inside."""

    @functools.wraps(read)
    def reading(*args: Any, **kwargs: Any) -> T:
        try:
            return read(*args, **kwargs)
        except MappingError:
            raise
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise MalformedAnswer(f"{read.__name__}: Amazon's answer is not in the expected shape "
                                  f"({type(exc).__name__}: {exc})") from None

    return reading


class NoLongerToShip(MappingError):
    """The order's items were shipped since the package was planned: maybe by a label of ours
    whose answer was lost, maybe by hand. Never buy on top of it; reconcile."""


def parse_reference(reference: str) -> tuple[str, str]:
    """``(order_id, package_ref)`` of an engine reference ``"111-1234567-1234567-1"``.

    The contract with the engine (``steps.plan``: ``f"{order.order_id}-{ref}"``): the reference
    names the Amazon order, which is how a lost purchase is found again without any local state.
    """
    match = REFERENCE.match(reference.strip()) if isinstance(reference, str) else None
    if not match:
        raise MappingError(
            f"reference {reference!r} is not '<amazon order id>-<package number>' "
            "(e.g. 111-1234567-1234567-1); Buy Shipping finds lost purchases through it"
        )
    return match["order"], match["package"]


def address_body(address: Address) -> dict[str, Any]:
    """A Shipping v2 ``Address`` (required: name, addressLine1, city, stateOrRegion, postalCode,
    countryCode)."""
    missing = [
        name
        for name, value in (
            ("name", address.name or address.company),
            ("line1", address.line1),
            ("city", address.city),
            ("country_code", address.country_code),
        )
        if not value.strip()
    ]
    if missing:
        raise MappingError(f"ship-from address lacks {', '.join(missing)}")
    body: dict[str, Any] = {
        "name": address.name or address.company,
        "addressLine1": address.line1,
        "city": address.city,
        "stateOrRegion": address.state or address.city,
        "postalCode": address.postal_code,
        "countryCode": address.country_code.upper(),
    }
    for key, value in (
        ("addressLine2", address.line2),
        ("addressLine3", address.line3),
        ("companyName", address.company),
        ("email", address.email),
        ("phoneNumber", address.phone),
    ):
        if value:
            body[key] = value
    return body


@dataclass(frozen=True)
class ItemLine:
    order_item_id: str
    quantity: int
    sku: str


@reads_answer
def order_item_lines(order: Mapping[str, Any], request: ShipmentRequest) -> list[ItemLine]:
    """The parcel's customs lines as (orderItemId, quantity) of the Amazon order.

    Each SKU's quantity is spread over the order's items with that ``product.sellerSku`` that
    still have units to ship (``fulfillment.quantityUnfulfilled``; needs includedData
    FULFILLMENT). MappingError when a SKU is not (or no longer) to ship on the order.
    """
    remaining: dict[str, int] = {}
    by_sku: dict[str, list[str]] = {}
    for i, item in enumerate(order.get("orderItems") or []):
        item_id = str(item.get("orderItemId") or "")
        sku = str((item.get("product") or {}).get("sellerSku") or "")
        if not (item_id and sku):  # the order read is garbled: never taken for "not on the order"
            raise MalformedAnswer(f"getOrder {request.order_id}: orderItems[{i}] has no "
                                  f"{'orderItemId' if not item_id else 'product.sellerSku'}")
        fulfillment = item.get("fulfillment") or {}
        left = fulfillment.get("quantityUnfulfilled")
        if left is None:
            left = int(item.get("quantityOrdered") or 0) - int(fulfillment.get("quantityFulfilled") or 0)
        by_sku.setdefault(sku, []).append(item_id)
        remaining[item_id] = int(left)
    lines: list[ItemLine] = []
    for line in request.parcel.contents:
        wanted = line.quantity
        for item_id in by_sku.get(line.sku, []):
            take = min(wanted, remaining[item_id])
            if take > 0:
                lines.append(ItemLine(item_id, take, line.sku))
                remaining[item_id] -= take
                wanted -= take
        if wanted and line.sku in by_sku:
            raise NoLongerToShip(
                f"order {request.order_id}: SKU {line.sku} x{line.quantity} is no longer "
                "to ship on the Amazon order; a label may already exist for it"
            )
        if wanted:
            raise MappingError(f"order {request.order_id}: SKU {line.sku} is not an item of the Amazon order")
    return lines


def _number(value: Decimal | int | float) -> float | int:
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else float(d)


def package_body(request: ShipmentRequest, lines: Sequence[ItemLine]) -> dict[str, Any]:
    """The one ``Package`` of a GetRatesRequest: centimetres, grams, the declared value insured,
    ``packageClientReferenceId`` = our reference, one item per order item."""
    parcel = request.parcel
    if parcel.weight_g <= 0:
        raise MappingError(f"order {request.order_id}: parcel weight must be positive")
    customs = {c.sku: c for c in parcel.contents}
    items = []
    for line in lines:
        c = customs[line.sku]
        items.append(
            {
                "itemValue": {"value": _number(c.unit_value.amount), "unit": c.unit_value.currency},
                "description": c.name_en[:100],
                "itemIdentifier": line.order_item_id,
                "quantity": line.quantity,
                "weight": {"value": c.unit_weight_g, "unit": "GRAM"},
                "isHazmat": bool(parcel.has_battery),
            }
        )
    declared = parcel.declared_value
    return {
        "dimensions": {
            "length": _number(parcel.length_cm),
            "width": _number(parcel.width_cm),
            "height": _number(parcel.height_cm),
            "unit": "CENTIMETER",
        },
        "weight": {"value": parcel.weight_g, "unit": "GRAM"},
        "insuredValue": {"value": _number(declared.amount), "unit": declared.currency},
        "isHazmat": bool(parcel.has_battery),
        "packageClientReferenceId": request.reference,
        "items": items,
    }


# -- rates -------------------------------------------------------------------------------------------


def _charge(rate: Mapping[str, Any]) -> Decimal:
    try:
        return Decimal(str(rate["totalCharge"]["value"]))
    except (KeyError, TypeError, InvalidOperation):
        raise MalformedAnswer(f"rate {rate.get('serviceId')!r} has no readable totalCharge") from None


@reads_answer
def select_rate(
    payload: Mapping[str, Any], service: str, *, rate_choice: str, allowed: Iterable[str]
) -> dict[str, Any]:
    """The rate to buy.

    ``rate_choice == "cheapest"`` or a service of ``""``/``"cheapest"``: the cheapest rate among
    ``allowed`` serviceIds (ties: the serviceId, for determinism). Otherwise the rate whose
    serviceId is ``service``. MappingError (with Amazon's ineligibility reasons when it gave
    them) when there is none.
    """
    rates = [r for r in payload.get("rates") or [] if isinstance(r, dict) and r.get("rateId")]
    allowed = set(allowed)
    if rate_choice == CHEAPEST or service in ("", CHEAPEST):
        eligible = [r for r in rates if r.get("serviceId") in allowed]
        if not eligible:
            offered = ", ".join(sorted(str(r.get("serviceId")) for r in rates)) or "none"
            raise MappingError(f"no Buy Shipping rate among the allowed services (offered: {offered})")
        return min(eligible, key=lambda r: (_charge(r), str(r.get("serviceId"))))
    for rate in rates:
        if rate.get("serviceId") == service:
            return rate
    for rate in payload.get("ineligibleRates") or []:
        if rate.get("serviceId") == service:
            reasons = "; ".join(
                f"{r.get('code')}: {r.get('message')}" for r in rate.get("ineligibilityReasons") or []
            )
            raise MappingError(
                f"Buy Shipping service {service} is not eligible: {reasons or 'no reason given'}"
            )
    offered = ", ".join(sorted(str(r.get("serviceId")) for r in rates)) or "none"
    raise MappingError(f"Buy Shipping service {service} is not offered for this order (offered: {offered})")


def transit_days(rate: Mapping[str, Any]) -> int | None:
    """Whole days from the start of the pickup window to the end of the delivery window."""
    promise = rate.get("promise") or {}
    try:
        start = parse_api_time((promise.get("pickupWindow") or {})["start"])
        end = parse_api_time((promise.get("deliveryWindow") or {})["end"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0, math.ceil((end - start).total_seconds() / 86400))


# Weight.unit (Shipping API v2 model) -> grams per unit.
GRAMS_PER_UNIT: dict[str, Decimal] = {
    "GRAM": Decimal(1), "KILOGRAM": Decimal(1000),
    "OUNCE": Decimal("28.349523125"), "POUND": Decimal("453.59237"),
}


def billed_weight_g(rate: Mapping[str, Any]) -> int | None:
    """The rate's ``billedWeight`` in whole grams (to the nearest gram); ``None`` when absent or
    unreadable."""
    weight = rate.get("billedWeight")
    if not isinstance(weight, Mapping):
        return None
    per_unit = GRAMS_PER_UNIT.get(str(weight.get("unit")))
    try:
        value = Decimal(str(weight.get("value")))
    except InvalidOperation:
        return None
    if per_unit is None or not value.is_finite() or value < 0:
        return None
    return int((value * per_unit).to_integral_value(rounding=ROUND_HALF_UP))


def handling_fee(rate: Mapping[str, Any], handling_items: Iterable[str], currency: str) -> Money | None:
    """The sum of the ``rateItemList`` charges whose ``rateItemID`` is in ``handling_items``
    (the fixed per-parcel part of the price); ``None`` when the rate has no item list, an item to
    add is unreadable or in another currency than the total: no breakdown rather than a wrong one.
    A list without any of those items is a breakdown with no handling: zero."""
    items = rate.get("rateItemList")
    if not isinstance(items, list) or not items:
        return None
    wanted = set(handling_items)
    total = Decimal(0)
    for item in items:
        if not isinstance(item, Mapping) or item.get("rateItemID") not in wanted:
            continue
        charge = item.get("rateItemCharge")
        try:
            if str(charge["unit"]) != currency:
                return None
            total += Decimal(str(charge["value"]))
        except (KeyError, TypeError, InvalidOperation):
            return None
    return Money(total, currency)


@reads_answer
def quotes_from_rates(
    payload: Mapping[str, Any], *, services: Iterable[str], tracking_levels: Mapping[str, str],
    handling_items: Iterable[str] = (),
) -> list[Quote]:
    """One :class:`Quote` per offered rate among ``services`` (cheapest first), with the rate's
    ``billedWeight`` as chargeable weight and the sum of its ``handling_items`` rate items
    (``handling_rate_items`` setting) as handling fee."""
    wanted = set(services)
    handling_items = tuple(handling_items)
    quotes = []
    for rate in payload.get("rates") or []:
        service = rate.get("serviceId")
        if service not in wanted:
            continue
        charge = rate.get("totalCharge") or {}
        try:
            price = Money(_charge(rate), str(charge.get("unit")))
        except ValueError:
            continue  # an unreadable currency: no quote rather than a wrong one
        quotes.append(
            Quote(
                carrier=CODE,
                service=service,
                price=price,
                transit_days=transit_days(rate),
                tracking_level=tracking_levels.get(service, "tracked"),
                handling_fee=handling_fee(rate, handling_items, price.currency),
                chargeable_weight_g=billed_weight_g(rate),
            )
        )
    return sorted(quotes, key=lambda q: (q.price.amount, q.service))


# -- purchase and documents ----------------------------------------------------------------------


def _label_of(detail: Mapping[str, Any], where: str) -> bytes:
    for document in detail.get("packageDocuments") or []:
        if document.get("type") == "LABEL":
            if document.get("format") != "PDF":
                raise MappingError(f"{where}: the label is {document.get('format')}, not PDF")
            try:
                data = decode_contents(document.get("contents", ""))
            except ValueError as exc:
                raise MappingError(f"{where}: {exc}") from None
            if not data.startswith(b"%PDF-"):
                raise MappingError(f"{where}: the decoded label is not a PDF")
            return data
    raise MappingError(f"{where}: no LABEL document in the answer")


@reads_answer
def shipment_from_purchase(
    payload: Mapping[str, Any], reference: str, service: str
) -> tuple[Shipment, bytes]:
    """The :class:`Shipment` and the label PDF of a PurchaseShipmentResult."""
    shipment_id = str(payload.get("shipmentId") or "")
    details = [
        d
        for d in payload.get("packageDocumentDetails") or []
        if d.get("packageClientReferenceId") in (reference, None)
    ] or list(payload.get("packageDocumentDetails") or [])
    if not shipment_id or not details:
        raise MappingError("purchaseShipment answered without shipmentId or packageDocumentDetails")
    detail = details[0]
    tracking = str(detail.get("trackingId") or "") or None
    label = _label_of(detail, "purchaseShipment")
    return shipment(reference, shipment_id, tracking, service), label


def shipment(reference: str, shipment_id: str, tracking: str | None, service: str) -> Shipment:
    """Our :class:`Shipment` under ``reference``: Buy Shipping's ``shipment_id`` ("" when only
    the order's package and its tracking number prove it ours)."""
    return Shipment(
        carrier=CODE,
        reference=reference,
        carrier_shipment_id=shipment_id,
        tracking_number=tracking,
        service=service,
    )


@reads_answer
def label_from_documents(payload: Mapping[str, Any]) -> tuple[bytes, str | None]:
    """The label PDF and the tracking id of a GetShipmentDocumentsResult."""
    detail = payload.get("packageDocumentDetail")
    if not isinstance(detail, dict):
        raise MappingError("getShipmentDocuments answered without packageDocumentDetail")
    return _label_of(detail, "getShipmentDocuments"), (str(detail.get("trackingId") or "") or None)


def service_id_for(rate_or_name: str, services: Mapping[str, str]) -> str:
    """A serviceId for an order package's ``shippingService`` (a service name), or the name."""
    for service_id, name in services.items():
        if rate_or_name in (service_id, name):
            return service_id
    return rate_or_name


# -- tracking --------------------------------------------------------------------------------------

SUMMARY_STATUS: dict[str, TrackingStatus] = {
    "PreTransit": TrackingStatus.PENDING,
    "InTransit": TrackingStatus.IN_TRANSIT,
    "OutForDelivery": TrackingStatus.OUT_FOR_DELIVERY,
    "Delivered": TrackingStatus.DELIVERED,
    "DeliveryAttempted": TrackingStatus.FAILED_ATTEMPT,
    "AwaitingCustomerPickup": TrackingStatus.FAILED_ATTEMPT,  # at an access point: an attempt
    # Refused or undeliverable: the parcel goes back (RETURNED once its RETURNS leg is delivered).
    "Rejected": TrackingStatus.RETURNING,
    "Undeliverable": TrackingStatus.RETURNING,
    "PickupCancelled": TrackingStatus.CANCELLED,
    "Lost": TrackingStatus.UNKNOWN,
}
EVENT_STATUS: dict[str, TrackingStatus] = {
    "ReadyForReceive": TrackingStatus.PENDING,
    "PickupDone": TrackingStatus.ACCEPTED,
    "Departed": TrackingStatus.IN_TRANSIT,
    "ArrivedAtCarrierFacility": TrackingStatus.IN_TRANSIT,
    "RecipientRequestedAlternateDeliveryTiming": TrackingStatus.IN_TRANSIT,
    "OutForDelivery": TrackingStatus.OUT_FOR_DELIVERY,
    "Delivered": TrackingStatus.DELIVERED,
    "DeliveryAttempted": TrackingStatus.FAILED_ATTEMPT,
    "AvailableForPickup": TrackingStatus.FAILED_ATTEMPT,
    "Rejected": TrackingStatus.RETURNING,
    "Undeliverable": TrackingStatus.RETURNING,
    "ReturnInitiated": TrackingStatus.RETURNING,
    "PickupCancelled": TrackingStatus.CANCELLED,
    "Lost": TrackingStatus.UNKNOWN,
}
# Events of the way back (shipmentType RETURNS): returning, and returned once delivered to the sender.
RETURNS = "RETURNS"
_DESCRIPTIONS = {
    "ReadyForReceive": "Label created, waiting for the carrier",
    "PickupDone": "Picked up by the carrier",
    "Departed": "Departed the origin facility",
    "ArrivedAtCarrierFacility": "Arrived at a carrier facility",
    "OutForDelivery": "Out for delivery",
    "Delivered": "Delivered",
    "DeliveryAttempted": "Delivery attempted",
    "AvailableForPickup": "Available for pickup",
    "Rejected": "Rejected by the recipient",
    "Undeliverable": "Undeliverable",
    "ReturnInitiated": "Return initiated",
    "PickupCancelled": "Pickup cancelled",
    "Lost": "Reported lost",
    "RecipientRequestedAlternateDeliveryTiming": "Recipient asked for another time",
}


def event_status(code: str, shipment_type: str = "") -> TrackingStatus:
    """An event's status; on the RETURNS leg every event is the way back, "Delivered" its end."""
    if shipment_type == RETURNS:
        return TrackingStatus.RETURNED if code == "Delivered" else TrackingStatus.RETURNING
    return EVENT_STATUS.get(code, TrackingStatus.UNKNOWN)


def _description(code: str, shipment_type: str) -> str:
    if shipment_type == RETURNS:
        return "Returned to the sender" if code == "Delivered" else \
            f"Return to the sender: {_DESCRIPTIONS.get(code, code).lower()}"
    return _DESCRIPTIONS.get(code, code)


@reads_answer
def tracking_info(payload: Mapping[str, Any], tracking_number: str) -> TrackingInfo:
    """A GetTrackingResult as :class:`TrackingInfo` (events oldest first). The status is the
    summary's, unless the events say more: the way back (RETURNS leg) returning or returned, or
    the pickup (the first scan) as the only scan of an "InTransit" parcel."""
    events = []
    for event in payload.get("eventHistory") or []:
        code = str(event.get("eventCode") or "")
        leg = str(event.get("shipmentType") or "")
        try:
            when = parse_api_time(str(event.get("eventTime") or ""))
        except ValueError:
            continue
        location = event.get("location") or {}
        place = ", ".join(
            str(location[k]) for k in ("city", "stateOrRegion", "countryCode") if location.get(k)
        )
        description = _description(code, leg)
        events.append(
            TrackingEvent(
                time=when,
                status=event_status(code, leg),
                description=description,
                location=place,
                code=code,
                description_en=description,
            )
        )
    events.sort(key=lambda e: e.time)
    summary = str((payload.get("summary") or {}).get("status") or "")
    last = next((e.status for e in reversed(events) if e.status is not TrackingStatus.UNKNOWN), None)
    if last in (TrackingStatus.RETURNING, TrackingStatus.RETURNED) and summary != "PickupCancelled":
        status = last
    elif summary == "InTransit" and last is TrackingStatus.ACCEPTED:
        status = last  # picked up, nothing since: the first scan
    elif summary in SUMMARY_STATUS:
        status = SUMMARY_STATUS[summary]
    else:
        status = events[-1].status if events else TrackingStatus.UNKNOWN
    return TrackingInfo(tracking_number=tracking_number, status=status, events=tuple(events))
