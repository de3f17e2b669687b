"""Pure translation between our model and DHL eCommerce Asia JSON (no I/O).

Every parser raises :class:`TransientCarrierError` naming what is missing when an answer does not
have the documented shape (the call may have taken effect), and a
:class:`PermanentCarrierError` for business refusals.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from connector.carriers import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.model import Address, Shipment, ShipmentRequest, TrackingEvent, TrackingInfo, TrackingStatus

CARRIER = "dhl_ecommerce"

TOKEN_PATH = "/rest/v1/OAuth/AccessToken"
LABEL_PATH = "/rest/v2/Label"
REPRINT_PATH = "/rest/v2/Label/Reprint"
DELETE_PATH = "/rest/v2/Label/Delete"
TRACK_PATH = "/rest/v3/Tracking"

TOKEN_OK = "100000"
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9~_\\.\-]")  # documented specials ~ _ \ . ; '-' seen in captures
_INVALID_TOKEN = re.compile(r"invalid access token", re.IGNORECASE)
_SAME_ID = re.compile(r"same shipment id exists", re.IGNORECASE)
_VALIDATION = re.compile(r"input validation failed:\s*([^\[]+?)\s*\[([^\]]*)\]", re.IGNORECASE)
_NOT_FOUND = re.compile(r"not\s+found|does\s+not\s+exist|no\s+shipment", re.IGNORECASE)

STATUS_BY_CODE: dict[str, TrackingStatus] = {
    "71005": TrackingStatus.PENDING,
    "77123": TrackingStatus.PENDING,
    "77206": TrackingStatus.ACCEPTED,
    "77429": TrackingStatus.FAILED_ATTEMPT,
    **dict.fromkeys(("77013", "77015", "77027", "77169", "77178", "77184"), TrackingStatus.IN_TRANSIT),
    "77090": TrackingStatus.OUT_FOR_DELIVERY,
    "77093": TrackingStatus.DELIVERED,
}


class Malformed(TransientCarrierError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"DHL eCommerce: malformed answer: {what}; the call may have taken effect",
            code="malformed",
            carrier=CARRIER,
        )


# -- small helpers ------------------------------------------------------------------------------


def shipment_id(prefix: str, reference: str) -> str:
    """``prefix + reference`` keeping only the characters shipmentID allows."""
    return _NOT_ALLOWED.sub("", f"{prefix}{reference}")


def reference_of(prefix: str, sid: str) -> str:
    return sid[len(prefix) :] if prefix and sid.startswith(prefix) else sid


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def details(status: Any) -> str:
    """``messageDetails`` as one string (it is a list of {messageDetail} or a plain string)."""
    if not isinstance(status, dict):
        return ""
    raw = status.get("messageDetails")
    if isinstance(raw, list):
        parts = [_text(d.get("messageDetail")) if isinstance(d, dict) else _text(d) for d in raw]
    else:
        parts = [_text(raw)]
    text = "; ".join(p for p in parts if p)
    return text or _text(status.get("message"))


def envelope(answer: Any, root: str) -> dict[str, Any]:
    """``answer[root]["bd"]``, or Malformed naming the missing part."""
    if not isinstance(answer, dict) or not isinstance(answer.get(root), dict):
        raise Malformed(f"no {root} object")
    bd = answer[root].get("bd")
    if not isinstance(bd, dict):
        raise Malformed(f"{root}.bd missing")
    return bd


def is_invalid_token(answer: Any, root: str) -> bool:
    try:
        bd = envelope(answer, root)
    except TransientCarrierError:
        return False
    status = bd.get("responseStatus")
    return (
        isinstance(status, dict)
        and _text(status.get("code")) == "202"
        and bool(_INVALID_TOKEN.search(details(status)))
    )


def _status(item: dict[str, Any], where: str) -> tuple[str, str]:
    status = item.get("responseStatus")
    if not isinstance(status, dict) or not _text(status.get("code")):
        raise Malformed(f"{where}.responseStatus.code missing")
    return _text(status["code"]), details(status)


# -- auth ---------------------------------------------------------------------------------------


def token_params(client_id: str, password: str) -> dict[str, str]:
    return {"clientId": client_id, "password": password, "returnFormat": "json"}


def parse_token(answer: Any) -> tuple[str, float]:
    """(token, lifetime in seconds); PermanentCarrierError when the credentials are refused."""
    if not isinstance(answer, dict) or not isinstance(answer.get("accessTokenResponse"), dict):
        raise Malformed("no accessTokenResponse object")
    body = answer["accessTokenResponse"]
    code, message = _status(body, "accessTokenResponse")
    if code != TOKEN_OK:
        raise PermanentCarrierError(
            f"DHL eCommerce refused the credentials (code {code}: {message}); check client_id/password",
            code=code,
            carrier=CARRIER,
        )
    token = _text(body.get("token"))
    if not token:
        raise Malformed("accessTokenResponse.token missing")
    try:
        lifetime = float(body.get("expires_in_seconds") or 0)
    except (TypeError, ValueError):
        raise Malformed("accessTokenResponse.expires_in_seconds is not a number") from None
    return token, lifetime if lifetime > 0 else 3600.0


def hdr(message_type: str, token: str, version: str, now: datetime) -> dict[str, str]:
    return {
        "messageType": message_type,
        "messageDateTime": now.isoformat(timespec="seconds"),
        "accessToken": token,
        "messageVersion": version,
        "messageLanguage": "en",
    }


# -- label (create) -----------------------------------------------------------------------------


def address(a: Address) -> dict[str, str]:
    out = {
        "name": a.name,
        "companyName": a.company,
        "address1": a.line1,
        "address2": a.line2,
        "address3": a.line3,
        "city": a.city,
        "state": a.state,
        "district": a.district,
        "country": a.country_code.upper(),
        "postCode": a.postal_code,
        "phone": a.phone,
        "email": a.email,
    }
    return {k: v for k, v in out.items() if v}


def label_bd(
    request: ShipmentRequest,
    *,
    pickup_account_id: str,
    sold_to_account_id: str,
    prefix: str,
    handover_method: int,
    ioss_field: str,
) -> dict[str, Any]:
    """The deterministic ``bd`` of a labelRequest: the same request gives the same bytes."""
    parcel = request.parcel
    indicator = "04" if parcel.has_battery else "00"
    contents = [
        {
            "skuNumber": line.sku,
            "description": line.name_en,
            "descriptionExport": line.name_cn or line.name_en,
            "itemValue": _money(line.unit_value.amount),
            "itemQuantity": line.quantity,
            "grossWeight": line.unit_weight_g,
            "weightUOM": "G",
            "contentIndicator": indicator,
            "countryOfOrigin": line.origin_country,
            "hsCode": line.hs_code,
        }
        for line in parcel.contents
    ]
    value = parcel.declared_value
    item: dict[str, Any] = {
        "shipmentID": shipment_id(prefix, request.reference),
        "consigneeAddress": address(request.ship_to),
        "packageDesc": ", ".join(dict.fromkeys(line.name_en for line in parcel.contents))[:50],
        "totalWeight": parcel.weight_g,
        "totalWeightUOM": "G",
        "dimensionUOM": "CM",
        "length": float(parcel.length_cm),
        "width": float(parcel.width_cm),
        "height": float(parcel.height_cm),
        "productCode": request.service,
        "totalValue": _money(value.amount),
        "currency": value.currency,
        "incoterm": "DDP",
        "shipmentContents": contents,
    }
    if request.ioss_number and ioss_field:
        item[ioss_field] = request.ioss_number
    return {
        "pickupAccountId": pickup_account_id,
        "soldToAccountId": sold_to_account_id,
        "handoverMethod": handover_method,
        "pickupAddress": address(request.ship_from),
        "shipperAddress": address(request.ship_from),
        "label": {"format": "PDF", "layout": "1x1", "pageSize": "400x600"},
        "inlineLabelReturn": "Y",
        "shipmentItems": [item],
    }


def parse_label(answer: Any, request: ShipmentRequest, sid: str) -> Shipment:
    """The Shipment of a labelResponse: item 200 (new) or 203 (same data re-sent: same label)."""
    bd = envelope(answer, "labelResponse")
    labels = bd.get("labels")
    if not isinstance(labels, list) or not labels:
        code, message = _status(bd, "labelResponse.bd")
        raise PermanentCarrierError(
            f"DHL eCommerce refused the label for {sid} (code {code}: {message})", code=code, carrier=CARRIER
        )
    item = next((x for x in labels if isinstance(x, dict) and _text(x.get("shipmentID")) == sid), None)
    if item is None:
        raise Malformed(f"labelResponse.bd.labels has no entry for shipmentID {sid}")
    code, message = _status(item, "labels[]")
    if code in ("200", "203"):
        number = _text(item.get("deliveryConfirmationNo"))
        if not number:
            raise Malformed(f"labels[].deliveryConfirmationNo missing for {sid}")
        return Shipment(
            carrier=CARRIER,
            reference=request.reference,
            carrier_shipment_id=number,
            tracking_number=number,
            service=request.service,
        )
    raise refusal(code, message, sid)


def refusal(code: str, message: str, sid: str) -> PermanentCarrierError:
    if _SAME_ID.search(message):
        return DuplicateReferenceError(
            f"DHL eCommerce already holds shipmentID {sid} with other data: {message}",
            code=code,
            carrier=CARRIER,
        )
    found = _VALIDATION.search(message)
    if found:
        field, pointer = found.group(1).strip(), found.group(2).strip()
        return PermanentCarrierError(
            f"DHL eCommerce rejected field {field} ({pointer}) of {sid}: {message}",
            code=code,
            carrier=CARRIER,
        )
    return PermanentCarrierError(
        f"DHL eCommerce refused {sid} (code {code}): {message}", code=code, carrier=CARRIER
    )


def label_content(item: dict[str, Any], sid: str) -> bytes:
    raw = item.get("content")
    if not isinstance(raw, str) or not raw:
        raise Malformed(f"no label content for {sid}")
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        raise Malformed(f"label content of {sid} is not base64") from None


# -- reprint (lookup, label) ----------------------------------------------------------------------


def reprint_bd(sid: str, *, pickup_account_id: str, sold_to_account_id: str) -> dict[str, Any]:
    return {
        "pickupAccountId": pickup_account_id,
        "soldToAccountId": sold_to_account_id,
        "shipmentItems": [{"shipmentID": sid}],
    }


def parse_reprint(answer: Any, sid: str) -> dict[str, Any] | None:
    """The reprinted item (``shipmentID``, ``deliveryConfirmationNo``, ``content``), or ``None``
    when DHL has no (live) shipment under ``sid``."""
    bd = envelope(answer, "labelReprintResponse")
    items = bd.get("shipmentItems")
    if isinstance(items, list) and items:
        item = next((x for x in items if isinstance(x, dict) and _text(x.get("shipmentID")) == sid), None)
        if item is None:
            raise Malformed(f"labelReprintResponse.bd.shipmentItems has no entry for {sid}")
        code, message = _status(item, "shipmentItems[]")
        if code in ("200", "203"):
            if not _text(item.get("deliveryConfirmationNo")):
                raise Malformed(f"shipmentItems[].deliveryConfirmationNo missing for {sid}")
            return item
    else:
        code, message = _status(bd, "labelReprintResponse.bd")
    if _NOT_FOUND.search(message):
        return None
    raise refusal(code, message, sid)


def shipment_from_reprint(item: dict[str, Any], reference: str) -> Shipment:
    number = _text(item["deliveryConfirmationNo"])
    return Shipment(carrier=CARRIER, reference=reference, carrier_shipment_id=number, tracking_number=number)


def pdf_from_reprint(item: dict[str, Any], sid: str) -> bytes:
    data = label_content(item, sid)
    if not data.startswith(b"%PDF"):
        raise Malformed(f"label of {sid} is not a PDF (starts with {data[:8]!r})")
    return data


# -- delete ---------------------------------------------------------------------------------------


def parse_delete(answer: Any, sid: str) -> bool:
    bd = envelope(answer, "deleteShipmentResp")
    code, message = _status(bd, "deleteShipmentResp.bd")
    if code == "200":
        return True
    raise PermanentCarrierError(
        f"DHL eCommerce did not delete {sid} (code {code}): {message}", code=code, carrier=CARRIER
    )


# -- tracking -------------------------------------------------------------------------------------


def track_bd(numbers: list[str], *, pickup_account_id: str, sold_to_account_id: str) -> dict[str, Any]:
    return {
        "pickupAccountId": pickup_account_id,
        "soldToAccountId": sold_to_account_id,
        "ePODRequired": "N",
        "trackingReferenceNumber": list(numbers),
    }


def _event_time(raw: Any, offset_hours: float) -> datetime:
    text = _text(raw)
    try:
        when = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Malformed(f"event dateTime {text!r} is not YYYY-MM-DD HH:MM:SS") from None
    return when.replace(tzinfo=timezone(timedelta(hours=offset_hours))).astimezone(timezone.utc)


def parse_tracking(answer: Any, numbers: list[str], *, offset_hours: float = 8.0) -> dict[str, TrackingInfo]:
    """TrackingInfo per requested number found (matched on trackingID or shipmentID); events are
    given newest first and returned oldest first."""
    bd = envelope(answer, "trackItemResponse")
    items = bd.get("shipmentItems")
    if items is None:
        code, message = _status(bd, "trackItemResponse.bd")
        if code == "200" or _NOT_FOUND.search(message):
            return {}
        raise PermanentCarrierError(
            f"DHL eCommerce tracking refused (code {code}): {message}", code=code, carrier=CARRIER
        )
    if not isinstance(items, list):
        raise Malformed("trackItemResponse.bd.shipmentItems is not a list")
    wanted = set(numbers)
    out: dict[str, TrackingInfo] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("events", []), list):
            raise Malformed("trackItemResponse shipmentItems[] entry is not an object with events[]")
        keys = [_text(item.get(k)) for k in ("trackingID", "shipmentID", "masterShipmentID")]
        number = next((k for k in keys if k in wanted), None)
        if number is None:
            continue
        events = []
        for ev in item.get("events") or []:
            if not isinstance(ev, dict) or not _text(ev.get("status")):
                raise Malformed(f"tracking event of {number} without status")
            code = _text(ev["status"])
            place = ev.get("address") if isinstance(ev.get("address"), dict) else {}
            location = ", ".join(
                _text(place.get(k)) for k in ("city", "state", "country") if _text(place.get(k))
            )
            events.append(
                TrackingEvent(
                    time=_event_time(ev.get("dateTime"), offset_hours),
                    status=STATUS_BY_CODE.get(code, TrackingStatus.UNKNOWN),
                    description=_text(ev.get("description")),
                    location=location,
                    code=code,
                )
            )
        events = sorted(reversed(events), key=lambda e: e.time)  # DHL: newest first; ours: oldest first
        known = [e for e in events if e.status is not TrackingStatus.UNKNOWN]
        status = (
            known[-1].status
            if known
            else (TrackingStatus.UNKNOWN if not events else TrackingStatus.IN_TRANSIT)
        )
        out[number] = TrackingInfo(tracking_number=number, status=status, events=tuple(events))
    return out
