"""Pure mapping between mfn-connector's model and the ACME Post JSON API: no I/O here.

An answer that is valid JSON but not the shape we expect is treated like an unreadable one:
TransientCarrierError, because the call may still have taken effect.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.kit import Money, Quote, Shipment, TrackingEvent, TrackingInfo, TrackingStatus
from connector.kit.carrier import TransientCarrierError
from connector.kit.values import integer, iso_time, text

if TYPE_CHECKING:
    from connector.kit import ShipmentRequest

CARRIER = "acmepost"
STATUSES = {
    "INFO_RECEIVED": TrackingStatus.PENDING, "ACCEPTED": TrackingStatus.ACCEPTED,
    "IN_TRANSIT": TrackingStatus.IN_TRANSIT, "CUSTOMS": TrackingStatus.CUSTOMS,
    "OUT_FOR_DELIVERY": TrackingStatus.OUT_FOR_DELIVERY, "DELIVERED": TrackingStatus.DELIVERED,
    "FAILED_ATTEMPT": TrackingStatus.FAILED_ATTEMPT, "RETURNING": TrackingStatus.RETURNING,
    "RETURNED": TrackingStatus.RETURNED, "CANCELLED": TrackingStatus.CANCELLED,
}


def _get(data: Any, key: str) -> Any:
    if not isinstance(data, dict) or data.get(key) is None:
        raise TransientCarrierError(f"ACME Post answer lacks {key!r}", code="malformed", carrier=CARRIER)
    return data[key]


def error_message(decoded: Any) -> str:
    """ACME Post's own message in an error answer (``{"message": ...}``), for the transport."""
    return text(decoded.get("message")) if isinstance(decoded, dict) else ""


def rate_request(request: ShipmentRequest) -> dict[str, Any]:
    return {"service": request.service, "country": request.ship_to.country_code,
            "weight_g": request.parcel.weight_g}


def parse_rates(data: Any, tracking_levels: dict[str, str]) -> list[Quote]:
    """Quotes with the price breakdown when the rate has it (discounts need it): the per-parcel
    ``handling_fee`` and the ``chargeable_weight_g`` the price was computed on; else none."""
    return [Quote(carrier=CARRIER, service=_get(rate, "service"), price=Money.from_dict(_get(rate, "price")),
                  transit_days=integer(rate.get("transit_days")),
                  tracking_level=tracking_levels.get(rate["service"], ""),
                  handling_fee=Money.from_dict(rate["handling_fee"]) if rate.get("handling_fee") else None,
                  chargeable_weight_g=integer(rate.get("chargeable_weight_g")))
            for rate in _get(data, "rates")]


def shipment_request(request: ShipmentRequest) -> dict[str, Any]:
    to = request.ship_to
    return {
        "customer_reference": request.reference,  # the idempotency key: ACME Post deduplicates on it
        "service": request.service,
        "recipient": {"name": to.name, "company": to.company,
                      "lines": [line for line in (to.line1, to.line2, to.line3) if line],
                      "city": to.city, "state": to.state, "postal_code": to.postal_code,
                      "country": to.country_code, "phone": to.phone},
        "parcel": {"weight_g": request.parcel.weight_g,
                   "items": [{"description": line.name_en, "hs_code": line.hs_code, "quantity": line.quantity,
                              "value": line.unit_value.to_dict(), "origin": line.origin_country}
                             for line in request.parcel.contents]},
    }


def parse_shipment(data: Any) -> Shipment:
    return Shipment(carrier=CARRIER, reference=_get(data, "customer_reference"),
                    carrier_shipment_id=_get(data, "id"), tracking_number=data.get("tracking_number"),
                    service=data.get("service", ""), status=_get(data, "status"))


def parse_lookup(data: Any) -> Shipment | None:
    """The newest shipment under the reference (a cancelled one may be followed by a new one)."""
    shipments = [parse_shipment(s) for s in _get(data, "shipments")]
    return shipments[-1] if shipments else None


def parse_tracking(data: Any) -> TrackingInfo:
    events = tuple(TrackingEvent(time=_time(_get(e, "time")), description=e.get("description", ""),
                                 status=STATUSES.get(_get(e, "code"), TrackingStatus.UNKNOWN),
                                 location=e.get("location", ""), code=e["code"],
                                 description_en=e.get("description", ""))  # ACME Post speaks English
                   for e in sorted(_get(data, "events"), key=lambda e: _time(_get(e, "time"))))
    return TrackingInfo(tracking_number=_get(data, "tracking_number"),
                        status=STATUSES.get(_get(data, "status"), TrackingStatus.UNKNOWN), events=events)


def _time(value: str) -> datetime:
    try:
        return iso_time(value)
    except ValueError as exc:
        raise TransientCarrierError(f"ACME Post answer has a bad time {value!r}", code="malformed",
                                    carrier=CARRIER) from exc
