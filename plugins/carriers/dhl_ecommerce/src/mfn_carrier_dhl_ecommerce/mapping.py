"""Pure translation between our model and DHL eCommerce Asia JSON (no I/O).

Every parser raises :class:`TransientCarrierError` naming what is missing when an answer does not
have the documented shape (the call may have taken effect), and a
:class:`PermanentCarrierError` for business refusals.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.kit import Shipment, TrackingEvent, TrackingInfo, TrackingStatus
from connector.kit.carrier import (
    CredentialsRefusedError,
    DuplicateReferenceError,
    PermanentCarrierError,
    TransientCarrierError,
)
from connector.kit.values import (
    CARRIER_TROUBLE_WORDS,
    cents,
    decimal,
    in_utc,
    issued_number,
    looks_like_pdf,
    mentions,
    says_cancelled,
    tracking_or_error,
)
from connector.kit.values import text as _text

if TYPE_CHECKING:
    from connector.kit import Address, CarrierError, ShipmentRequest

CARRIER = "dhl_ecommerce"

TOKEN_PATH = "/rest/v1/OAuth/AccessToken"
LABEL_PATH = "/rest/v2/Label"
REPRINT_PATH = "/rest/v2/Label/Reprint"
DELETE_PATH = "/rest/v2/Label/Delete"
TRACK_PATH = "/rest/v3/Tracking"

TOKEN_OK = "100000"
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9~_\\.\-]")  # documented specials ~ _ \ . ; '-' seen in captures
_ALIASES_NUMBER = ("deliveryConfirmationNo", "deliveryConfirmationNumber")  # both seen in captures
_INVALID_TOKEN = re.compile(r"invalid access token", re.IGNORECASE)
_SAME_ID = re.compile(r"same shipment id exists", re.IGNORECASE)
# "Input validation failed: <field> [<json-pointer>]. <reason>"; the pointer itself holds brackets.
_VALIDATION = re.compile(r"input validation failed:\s*([^\[]+?)\s*\[(.*?)\]\s*(?:\.|$)", re.IGNORECASE)
# "No such shipment" in a reprint answer (wording UNVERIFIED). Deliberately narrow: reading any
# other refusal as "not found" would make the engine buy a second label.
_NOT_FOUND = re.compile(
    r"not\s+found|does\s+not\s+exist|no\s+record|no\s+such\s+shipment|invalid\s+shipment\s*id",
    re.IGNORECASE,
)
# A refusal that is DHL's own trouble, not ours: retry later (bd-level only; see refusal()). These
# are DHL's own words ("run time/system errors") beside the kit's CARRIER_TROUBLE_WORDS.
_SYSTEM_ERROR = re.compile(r"system\s+error|run\s*time|internal\s+error|try\s+again|timed?\s*out", re.I)

STATUS_BY_CODE: dict[str, TrackingStatus] = {
    "71005": TrackingStatus.PENDING,
    "77123": TrackingStatus.PENDING,
    "77206": TrackingStatus.ACCEPTED,
    # Pickup failed (secondaryStatus e.g. 77443 insufficient pickup address): the parcel is still
    # with the shipper. Not FAILED_ATTEMPT, which Amazon's tracking rules read as a delivery attempt.
    "77429": TrackingStatus.PENDING,
    **dict.fromkeys(("77013", "77015", "77027", "77169", "77178", "77184"), TrackingStatus.IN_TRANSIT),
    "77090": TrackingStatus.OUT_FOR_DELIVERY,
    "77093": TrackingStatus.DELIVERED,
}
# Codes not in the table (customs, returns, ... are UNVERIFIED) are classified by their
# description, first match wins; no match -> UNKNOWN (kept, with its description, but it never
# moves the parcel's status).
_KEYWORDS: tuple[tuple[TrackingStatus, re.Pattern[str]], ...] = (
    (TrackingStatus.CANCELLED, re.compile(r"cancel", re.I)),
    (
        TrackingStatus.RETURNING,
        re.compile(r"returning|being\s+returned|return\s+(?:to\s+\w+\s+)?(?:in\s+progress|initiated)", re.I),
    ),
    (TrackingStatus.RETURNED, re.compile(r"return", re.I)),
    (
        TrackingStatus.FAILED_ATTEMPT,
        re.compile(r"refused|unsuccessful|attempt|failed\s+delivery|delivery\s+failed", re.I),
    ),
    (TrackingStatus.CUSTOMS, re.compile(r"customs|clearance", re.I)),
    (TrackingStatus.OUT_FOR_DELIVERY, re.compile(r"out\s+for\s+delivery", re.I)),
    (
        TrackingStatus.IN_TRANSIT,
        re.compile(r"depart|arriv|transit|hub|facility|flight|line.?haul|handed\s+over|export|import", re.I),
    ),
)


class Malformed(TransientCarrierError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"DHL eCommerce: malformed answer: {what}; the call may have taken effect",
            code="malformed",
            carrier=CARRIER,
        )


# -- small helpers ------------------------------------------------------------------------------


def shipment_id(prefix: str, reference: str) -> str:
    """``prefix + reference``. A reference holding a character shipmentID does not allow is
    refused (ValueError): dropping it could map two references onto one shipmentID."""
    sid = f"{prefix}{reference}"
    bad = sorted(set(_NOT_ALLOWED.findall(sid)))
    if not reference or bad:
        raise ValueError(
            f"reference {reference!r} cannot be a DHL eCommerce shipmentID"
            + (f": characters {''.join(bad)!r} are not allowed (letters, digits, ~ _ \\ . -)" if bad else "")
        )
    return sid


def detail_texts(status: Any) -> list[str]:
    """Each of ``messageDetails`` (a list of {messageDetail} or a plain string)."""
    if not isinstance(status, dict):
        return []
    raw = status.get("messageDetails")
    if isinstance(raw, list):
        parts = [_text(d.get("messageDetail")) if isinstance(d, dict) else _text(d) for d in raw]
    else:
        parts = [_text(raw)]
    return [p for p in parts if p]


def details(status: Any) -> str:
    """``messageDetails`` as one string, else the status's ``message``."""
    text = "; ".join(detail_texts(status))
    return text or (_text(status.get("message")) if isinstance(status, dict) else "")


def error_detail(answer: Any) -> str:
    """DHL's message in an HTTP error answer shaped like its envelope (``<root>.bd.responseStatus``);
    ``""`` for anything else."""
    body = next(iter(answer.values()), None) if isinstance(answer, dict) and len(answer) == 1 else None
    bd = body.get("bd") if isinstance(body, dict) else None
    return details(bd.get("responseStatus")) if isinstance(bd, dict) else ""


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


def credentials_error(detail: str) -> PermanentCarrierError:
    """What HTTP 401/403 raises: the API refused the credentials (never echoes them)."""
    return CredentialsRefusedError(
        f"DHL eCommerce refused the credentials ({detail}); check client_id, password and the account ids",
        carrier=CARRIER,
    )


def parse_token(answer: Any) -> tuple[str, float]:
    """(token, lifetime in seconds); PermanentCarrierError when the credentials are refused."""
    if not isinstance(answer, dict) or not isinstance(answer.get("accessTokenResponse"), dict):
        raise Malformed("no accessTokenResponse object")
    body = answer["accessTokenResponse"]
    code, message = _status(body, "accessTokenResponse")
    if code != TOKEN_OK:  # DHL documents success as 100000 only; no label request was sent yet
        raise CredentialsRefusedError(  # DHL's own code stays in the message; the kit's marks the kind
            f"DHL eCommerce refused the credentials (code {code}: {message}); check client_id/password",
            carrier=CARRIER,
        )
    token = _text(body.get("token"))
    if not token:
        raise Malformed("accessTokenResponse.token missing")
    raw = body.get("expires_in_seconds")
    lifetime = decimal(raw) if raw not in (None, "") else 0
    if lifetime is None:
        raise Malformed("accessTokenResponse.expires_in_seconds is not a number")
    return token, float(lifetime) if lifetime > 0 else 3600.0


def hdr(message_type: str, token: str, version: str, now: datetime) -> dict[str, str]:
    """The envelope header. Only the header carries a time: ``bd`` stays identical on a re-send."""
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


def _hs_code(value: str) -> str:
    return re.sub(r"[\s.]", "", value)


def label_bd(
    request: ShipmentRequest,
    *,
    pickup_account_id: str,
    sold_to_account_id: str,
    prefix: str,
    handover_method: int,
    ioss_field: str,
    incoterm: str = "DDP",
    battery_content_indicator: str = "04",
) -> dict[str, Any]:
    """The deterministic ``bd`` of a labelRequest: built only from the request and the settings
    (no clock, no counters), so a re-send of the same request is byte-identical and DHL answers
    203 with the same label instead of refusing it as a variance."""
    parcel = request.parcel
    indicator = battery_content_indicator if parcel.has_battery else "00"
    contents = [
        {
            "skuNumber": line.sku,
            "description": line.name_en,
            "descriptionImport": line.name_en,
            "descriptionExport": line.name_cn or line.name_en,
            "itemValue": cents(line.unit_value.amount),
            "itemQuantity": line.quantity,
            "grossWeight": line.unit_weight_g,
            "weightUOM": "G",
            "contentIndicator": indicator,
            "countryOfOrigin": line.origin_country.upper(),
            "hsCode": _hs_code(line.hs_code),
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
        "totalValue": cents(value.amount),
        "currency": value.currency,
        "incoterm": incoterm,
        "isMult": "false",
        "shipmentContents": contents,
    }
    if request.ioss_number and ioss_field:
        place_ioss(item, ioss_field, request.ioss_number)
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


def place_ioss(item: dict[str, Any], ioss_field: str, number: str) -> None:
    """Put the IOSS number where ``ioss_field`` says (the real field name is UNVERIFIED):
    ``remarks`` gets ``"IOSS <number>"``; another name is an item field with the bare number;
    ``shipmentContents.<name>`` sets it on every customs line."""
    if ioss_field.startswith("shipmentContents."):
        name = ioss_field.split(".", 1)[1]
        for line in item["shipmentContents"]:
            line[name] = number
    elif ioss_field == "remarks":
        item["remarks"] = f"IOSS {number}"
    else:
        item[ioss_field] = number


def _number_of(entry: dict[str, Any], where: str) -> str:
    """The first non-empty alias; one of the wrong JSON type (a list, a boolean, ...) is malformed,
    never read as a number ("[]", "True")."""
    for key in _ALIASES_NUMBER:
        try:
            number = issued_number(entry.get(key), f"{where}.{key}")
        except ValueError as exc:
            raise Malformed(str(exc)) from None
        if number:
            return number
    return ""


def label_number(item: dict[str, Any], where: str) -> str:
    """The tracking number of a label entry: ``deliveryConfirmationNo`` (once seen as
    ``deliveryConfirmationNumber``), or for a multi-piece shipment the first piece's."""
    number = _number_of(item, where)
    if number:
        return number
    pieces = item.get("pieces")
    if isinstance(pieces, list) and pieces:
        first = pieces[0]
        number = _number_of(first, f"{where}.pieces[0]") if isinstance(first, dict) else ""
        if number:
            return number
        raise Malformed(f"{where}.pieces[0].deliveryConfirmationNo missing")
    raise Malformed(f"{where}.deliveryConfirmationNo missing")


def _find(entries: Any, sid: str, where: str) -> dict[str, Any]:
    if not isinstance(entries, list):
        raise Malformed(f"{where} is not a list")
    item = next((x for x in entries if isinstance(x, dict) and _text(x.get("shipmentID")) == sid), None)
    if item is None:
        raise Malformed(f"{where} has no entry for shipmentID {sid}")
    return item


def parse_label(answer: Any, request: ShipmentRequest, sid: str) -> Shipment:
    """The Shipment of a labelResponse: item 200 (new) or 203 (same data re-sent: same label)."""
    bd = envelope(answer, "labelResponse")
    labels = bd.get("labels")
    if not isinstance(labels, list) or not labels:
        code, message = _status(bd, "labelResponse.bd")
        if code == "200":  # a success without its labels: the label may exist, this is no refusal
            raise Malformed("labelResponse.bd.labels missing")
        raise refusal(code, message, sid, item_level=False)
    item = _find(labels, sid, "labelResponse.bd.labels")
    code, message = _status(item, "labels[]")
    if code in ("200", "203"):
        number = label_number(item, "labels[]")
        return Shipment(
            carrier=CARRIER,
            reference=request.reference,
            carrier_shipment_id=number,
            tracking_number=number,
            service=request.service,
            notes=changed_by_dhl(message),
        )
    raise refusal(code, message, sid)


def changed_by_dhl(message: str) -> tuple[str, ...]:
    """What DHL changed on a shipment it accepted ("Handover Method has been updated to Drop-Off"):
    a seller waiting for a pickup that will not come must hear of it."""
    return tuple(part.strip() for part in message.split(";") if "has been updated" in part.lower())


def is_system_trouble(message: str) -> bool:
    """Whether ``message`` speaks of DHL's own trouble: its own words or the kit's general ones
    ("system busy", "try later", "系统繁忙", ...)."""
    return bool(_SYSTEM_ERROR.search(message)) or mentions(message, CARRIER_TROUBLE_WORDS)


def refusal(code: str, message: str, sid: str, *, item_level: bool = True) -> CarrierError:
    """The error for a non-success business code: a variance under the same shipmentID is
    DuplicateReferenceError, a field validation failure names the field, DHL's own system trouble
    (answered for the whole message) is transient, anything else permanent."""
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
    if code.startswith("5") or (not item_level and is_system_trouble(message)):
        return TransientCarrierError(
            f"DHL eCommerce could not process {sid} (code {code}): {message}", code=code, carrier=CARRIER
        )
    return PermanentCarrierError(
        f"DHL eCommerce refused {sid} (code {code}): {message}", code=code, carrier=CARRIER
    )


def label_content(item: dict[str, Any], sid: str) -> bytes:
    """The decoded label (``content`` of the entry, or of its first piece)."""
    raw = item.get("content")
    if not raw and isinstance(item.get("pieces"), list) and item["pieces"]:
        first = item["pieces"][0]
        raw = first.get("content") if isinstance(first, dict) else None
    if not isinstance(raw, str) or not raw:
        raise Malformed(f"no label content for {sid}")
    try:
        return base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"label content of {sid} is not base64") from None


def label_format(data: bytes) -> str:
    """``PDF``, ``PNG`` or ``ZPL``/unknown by the document's first bytes."""
    if data.startswith(b"%PDF-"):
        return "PDF"
    if data.startswith(b"\x89PNG"):
        return "PNG"
    return "ZPL" if data.lstrip().startswith(b"^XA") else "unknown"


# -- reprint (lookup, label) ----------------------------------------------------------------------


def reprint_bd(sid: str, *, pickup_account_id: str, sold_to_account_id: str) -> dict[str, Any]:
    return {
        "pickupAccountId": pickup_account_id,
        "soldToAccountId": sold_to_account_id,
        "shipmentItems": [{"shipmentID": sid}],
    }


delete_bd = reprint_bd  # deleteShipmentReq has the same bd: accounts + shipmentItems[{shipmentID}]


def parse_reprint(answer: Any, sid: str) -> dict[str, Any] | None:
    """The reprinted item (``shipmentID``, ``deliveryConfirmationNo``, ``content``), or ``None``
    when DHL says it has no (live) shipment under ``sid``. Any other refusal is an error, never
    ``None``: the engine would buy a second label on a wrong ``None``."""
    bd = envelope(answer, "labelReprintResponse")
    items = bd.get("shipmentItems")
    if isinstance(items, list) and items:
        item = _find(items, sid, "labelReprintResponse.bd.shipmentItems")
        code, message = _status(item, "shipmentItems[]")
        if code in ("200", "203"):
            label_number(item, "shipmentItems[]")
            return item
        item_level = True
    else:
        code, message = _status(bd, "labelReprintResponse.bd")
        if code == "200":  # a success without its items: neither "not found" nor a refusal
            raise Malformed("labelReprintResponse.bd.shipmentItems missing")
        item_level = False
    if _NOT_FOUND.search(message) and not _VALIDATION.search(message):
        return None
    raise refusal(code, message, sid, item_level=item_level)


def shipment_from_reprint(item: dict[str, Any], reference: str) -> Shipment:
    number = label_number(item, "shipmentItems[]")
    return Shipment(carrier=CARRIER, reference=reference, carrier_shipment_id=number, tracking_number=number)


def pdf_from_reprint(item: dict[str, Any], sid: str) -> bytes:
    data = label_content(item, sid)
    kind = label_format(data)
    if kind != "PDF":
        raise PermanentCarrierError(
            f"DHL eCommerce returned a {kind} label for {sid}, not a PDF (the account's label format?)",
            code="label_format",
            carrier=CARRIER,
        )
    if not looks_like_pdf(data):
        raise Malformed(f"label of {sid} is a truncated PDF ({len(data)} bytes)")
    return data


# -- delete ---------------------------------------------------------------------------------------


def parse_delete(answer: Any, sid: str, *, already_deleted: Iterable[str] = ()) -> bool:
    """True when deleted, now or before: bd code 200 and, when items are listed, the item's code
    200 too; or a business refusal with a detail about this shipment (the item's, or one naming
    ``sid``) that has one of ``already_deleted``."""
    bd = envelope(answer, "deleteShipmentResp")
    code, message = _status(bd, "deleteShipmentResp.bd")
    names_it = re.compile(rf"(?<![\w~\\.-]){re.escape(sid)}(?![\w~\\-]|\.\w)", re.I)  # not S1 in S10
    about_it = [d for d in detail_texts(bd.get("responseStatus")) if names_it.search(d)]
    items = bd.get("shipmentItems")
    if items is not None and not isinstance(items, list):
        raise Malformed("deleteShipmentResp.bd.shipmentItems is not a list")
    if items:
        item = _find(items, sid, "deleteShipmentResp.bd.shipmentItems")
        item_code, item_message = _status(item, "shipmentItems[]")
        if item_code != "200":
            code, message = item_code, item_message
            about_it = detail_texts(item.get("responseStatus"))
    if code == "200":
        return True
    error = refusal(code, message, sid, item_level=False)
    if isinstance(error, TransientCarrierError):
        raise error
    if any(says_cancelled(detail, already_deleted) for detail in about_it):
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


# Standard-time UTC offsets (hours) for the countries events are seen in; event "dateTime" is
# local time ("LT") of the event's place. DST is ignored; elsewhere tracking_utc_offset_hours.
COUNTRY_UTC_OFFSETS: dict[str, float] = {
    **dict.fromkeys(("CN", "HK", "MO", "TW", "MY", "SG", "PH"), 8.0),
    **dict.fromkeys(("JP", "KR"), 9.0),
    **dict.fromkeys(("TH", "VN", "ID"), 7.0),
    "IN": 5.5,
    **dict.fromkeys(("GB", "IE", "PT"), 0.0),
    **dict.fromkeys(("DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL", "SE", "DK", "CZ", "CH", "NO"), 1.0),
    **dict.fromkeys(("FI", "GR", "RO", "BG"), 2.0),
    "AE": 4.0,
    "SA": 3.0,
    "TR": 3.0,
    "BR": -3.0,
    "MX": -6.0,
    # US/CA/AU span several zones: the configured fallback applies.
}
_UTC_NAMES = {"GMT", "UTC", "Z"}
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T\s]+(\d{1,2})\s*:\s*(\d{2})(?:\s*:\s*(\d{2}))?(?:\.\d+)?\s*"
    r"(Z|[+-]\s*\d{2}\s*:?\s*\d{2})?"
)


def event_time(
    raw: Any, *, timezone_name: Any = None, country: str = "", default_offset: float = 8.0
) -> datetime:
    """An event's ``dateTime`` as aware UTC. Tolerates the stray spaces seen in captures
    ("2024-03-23 08: 57: 46"), a ``T`` separator (push requests) and an explicit offset."""
    text = _text(raw)
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second, zone = match.groups()
    naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    if zone:
        zone = zone.replace(" ", "")
        offset = (
            0.0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) + int(zone[-2:]) / 60)
        )
    elif _text(timezone_name).upper() in _UTC_NAMES:
        offset = 0.0
    else:
        offset = COUNTRY_UTC_OFFSETS.get(country.upper(), default_offset)
    return in_utc(naive, offset)


def event_status(code: str, description: str) -> TrackingStatus:
    status = STATUS_BY_CODE.get(code)
    if status is not None:
        return status
    for candidate, pattern in _KEYWORDS:
        if pattern.search(description):
            return candidate
    return TrackingStatus.UNKNOWN


def _events(item: dict[str, Any], number: str, default_offset: float) -> tuple[TrackingEvent, ...]:
    raw_events = item.get("events") or []
    events = []
    for i, ev in enumerate(raw_events):
        if not isinstance(ev, dict) or not _text(ev.get("status")):
            raise Malformed(f"tracking event {i} of {number} has no status")
        code = _text(ev["status"])
        place = ev.get("address") if isinstance(ev.get("address"), dict) else {}
        location = ", ".join(_text(place.get(k)) for k in ("city", "state", "country") if _text(place.get(k)))
        description = _text(ev.get("description"))
        if _text(ev.get("secondaryEvent")):  # e.g. 77429 + 77443 "Insufficient pickup address"
            description = f"{description} ({_text(ev['secondaryEvent'])})"
        try:
            when = event_time(
                ev.get("dateTime"),
                timezone_name=ev.get("timezone"),
                country=_text(place.get("country")),
                default_offset=default_offset,
            )
        except ValueError:
            raise Malformed(
                f"event {code} of {number}: dateTime {_text(ev.get('dateTime'))!r} is not a date"
            ) from None
        events.append(
            TrackingEvent(
                time=when,
                status=event_status(code, description),
                description=description,
                location=location,
                code=code,
                description_en=description,  # DHL eCommerce Asia answers in English (messageLanguage en)
            )
        )
    # DHL lists events newest first; its order is authoritative (local times of different zones
    # need not sort), so the list is reversed, not re-sorted.
    return tuple(reversed(events))


def parse_tracking(
    answer: Any, numbers: list[str], *, offset_hours: float = 8.0, root: str = "trackItemResponse"
) -> dict[str, TrackingInfo]:
    """TrackingInfo per requested number found, matched on trackingID, shipmentID or
    masterShipmentID; events oldest first. The parcel's status is that of its newest event with a
    known meaning; none known -> UNKNOWN (events kept). ``root`` ``pushTrackItemRequest`` reads
    DHL's push requests, which carry the same ``shipmentItems``."""
    bd = envelope(answer, root)
    items = bd.get("shipmentItems")
    if items is None:
        code, message = _status(bd, f"{root}.bd")
        if code == "200" or _NOT_FOUND.search(message):
            return {}
        error = refusal(code, message, "tracking", item_level=False)
        raise (
            error
            if isinstance(error, TransientCarrierError)
            else PermanentCarrierError(
                f"DHL eCommerce tracking refused (code {code}): {message}", code=code, carrier=CARRIER
            )
        )
    if not isinstance(items, list):
        raise Malformed(f"{root}.bd.shipmentItems is not a list")
    wanted = set(numbers)
    out: dict[str, TrackingInfo] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("events") or [], list):
            raise Malformed(f"{root}.bd.shipmentItems[{i}] is not an object with events[]")
        keys = [_text(item.get(k)) for k in ("trackingID", "shipmentID", "masterShipmentID")]
        number = next((k for k in keys if k and (k in wanted or not wanted)), None)
        if number is None or number in out:
            continue
        out[number] = tracking_or_error(number, _item_info, item, number, offset_hours)
    return out


def _item_info(item: dict[str, Any], number: str, offset_hours: float) -> TrackingInfo:
    events = _events(item, number, offset_hours)
    known = [e for e in events if e.status is not TrackingStatus.UNKNOWN]
    status = known[-1].status if known else TrackingStatus.UNKNOWN
    return TrackingInfo(tracking_number=number, status=status, events=events)
