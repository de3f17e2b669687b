"""Pure request building, signing and response parsing for the Yanwen APIs (no I/O here).

Two APIs, as the public open-source clients use them (e.g. https://github.com/zengweigg/yw56; no
official documentation is public):

* the open API: ``POST /api/order?user_id&method&format=json&timestamp&version=V1.0&sign`` with a
  compact JSON body, answered by the envelope ``{success, code, message, data}`` where code
  ``"0"`` is success, ``> 0`` a business refusal and ``< 0`` a system error;
* the tracking API: ``GET /api/tracking?nums=A,B`` (1-30 numbers), ``Authorization: <customer
  number>``, answered by ``{code: 0, message, result[]}``.

Every parser takes the decoded JSON body and returns model objects or raises:

* :class:`TransientCarrierError` -- malformed or undocumented answer (the message names the
  field), or a system error (``code < 0``): the outcome is unknown, the engine reconciles;
* :class:`PermanentCarrierError` -- the carrier refused (its ``message`` and ``code``);
* :class:`DuplicateReferenceError` -- the ``orderNumber`` (our reference) is already used.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from connector.kit import Money, Quote, Shipment, TrackingEvent, TrackingInfo, TrackingStatus
from connector.kit.carrier import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.kit.values import (
    CARRIER_TROUBLE_WORDS,
    in_utc,
    iso_time,
    issued_number,
    looks_like_pdf,
    mentions,
    objects,
    says_cancelled,
    says_not_found,
    tracking_or_error,
    transit_days,
)
from connector.kit.values import currency as _currency
from connector.kit.values import decimal as _decimal
from connector.kit.values import integer as _int
from connector.kit.values import text as _text
from connector.kit.values import whole_centimetres as centimetres

if TYPE_CHECKING:
    from connector.kit import Address, CarrierError, ShipmentRequest

CARRIER = "yanwen"
FORMAT = "json"
VERSION = "V1.0"
OK = "0"

# Open API methods.
CHANNEL_LIST = "express.channel.getlist"
ORDER_CREATE = "express.order.create"
ORDER_LABEL = "express.order.label.get"
ORDER_CANCEL = "express.order.cancel"
ORDER_GET = "express.order.get"
ORDER_LIST = "express.order.getlist"
CALC_LIST = "calc.list"

# A refusal whose message matches one of these is a credentials/signature problem.
_AUTH_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\bsign(?:ature)?\b", r"签名", r"验签", r"\btoken\b", r"unauthori[sz]", r"authori[sz]ation",
    r"authenticat", r"认证", r"授权", r"\buser_?id\b"))
# "No such order" in a lookup answer.
NOT_FOUND_WORDS = ("not exist", "not found", "no record", "no data", "不存在", "查询不到", "未找到", "无数据")
# calc.list without the account permission.
PERMISSION_WORDS = ("permission", "权限", "not allowed", "not enabled", "未开通")
_CUSTOMS_WORDS = ("customs", "清关", "海关", "报关")
# A checkpoint of an undocumented code that says the parcel is on its way back / back home.
_RETURNING_WORDS = ("returning", "being returned", "return in progress", "return to sender in progress",
                    "退回中", "正在退回", "退件处理中")
_RETURNED_WORDS = ("returned to sender", "return to sender completed", "returned to the sender", "已退回")


# -- small helpers -------------------------------------------------------------------------


def _fail(op: str, message: str) -> TransientCarrierError:
    return TransientCarrierError(f"Yanwen {op}: {message}", code="malformed", carrier=CARRIER)


def _waybill(op: str, value: Any, field: str) -> str:
    """A ``waybillNumber`` as text; one of the wrong JSON type (a list, a boolean, ...) is
    malformed, never read as a number ("[]", "True")."""
    try:
        return issued_number(value, field)
    except ValueError as exc:
        raise _fail(op, str(exc)) from None


def _objects(op: str, value: Any, field: str) -> list[dict[str, Any]]:
    """:func:`~connector.kit.values.objects`; a field that is not a list of objects is malformed."""
    try:
        return objects(value, field)
    except ValueError as exc:
        raise _fail(op, str(exc)) from None


def money_text(amount: Decimal) -> str:
    """A declared amount as the API's decimal string, two places."""
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def is_auth_failure_text(text: str) -> bool:
    """Whether a refusal's text says the signature or the credentials were refused."""
    return any(p.search(text) for p in _AUTH_PATTERNS)


def error_detail(decoded: Any) -> str:
    """Yanwen's own message in an HTTP 4xx answer (both APIs call it ``message``)."""
    return _text(decoded.get("message")) if isinstance(decoded, dict) else ""


def credentials_error(detail: str = "") -> PermanentCarrierError:
    message = "Yanwen rejected the credentials or the signature (check user_id and api_token)"
    return PermanentCarrierError(message + (f": {detail}" if detail else ""), code="auth", carrier=CARRIER)


def tracking_credentials_error(detail: str = "") -> PermanentCarrierError:
    message = "Yanwen tracking rejected the Authorization (check customer_number, or user_id when unset)"
    return PermanentCarrierError(message + (f": {detail}" if detail else ""), code="auth", carrier=CARRIER)


# -- signing ------------------------------------------------------------------------------------


def compact_json(data: Any) -> str:
    """The exact body that is sent and signed: compact separators, UTF-8 characters as they are."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def sign(api_token: str, user_id: str, body: str, method: str, timestamp: str,
         fmt: str = FORMAT, version: str = VERSION) -> str:
    """``lower(md5(apiToken + user_id + body + format + method + timestamp + version + apiToken))``."""
    source = f"{api_token}{user_id}{body}{fmt}{method}{timestamp}{version}{api_token}"
    return hashlib.md5(source.encode("utf-8")).hexdigest().lower()  # noqa: S324 - the API's scheme


def signed_call(method: str, data: Any, *, user_id: str, api_token: str,
                timestamp: str) -> tuple[dict[str, str], str]:
    """The query parameters and the body of one open-API call (the body is what was signed)."""
    body = compact_json(data)
    query = {"user_id": user_id, "method": method, "format": FORMAT, "timestamp": timestamp,
             "version": VERSION, "sign": sign(api_token, user_id, body, method, timestamp)}
    return query, body


# -- the envelope -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    success: bool | None
    code: str
    message: str
    data: Any

    @property
    def ok(self) -> bool:
        return self.code == OK


def read_envelope(answer: Any, op: str) -> Envelope:
    """Check the ``{success, code, message, data}`` envelope (malformed -> transient)."""
    if not isinstance(answer, dict):
        raise _fail(op, f"answer is not a JSON object (got {type(answer).__name__})")
    if answer.get("code") is None:
        raise _fail(op, "field 'code' is missing from the answer")
    raw = answer["code"]
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise _fail(op, f"field 'code' should be a string or number, got {type(raw).__name__}")
    code = str(_int(raw)) if _int(raw) is not None else _text(raw)
    if not code:
        raise _fail(op, "field 'code' is empty")
    success = answer.get("success")
    if success is not None and not isinstance(success, bool):
        raise _fail(op, f"field 'success' should be a boolean, got {success!r}")
    envelope = Envelope(success, code, _text(answer.get("message")), answer.get("data"))
    if envelope.ok and success is False:
        raise _fail(op, "the answer says success false with code 0 (inconsistent envelope)")
    return envelope


def refusal(envelope: Envelope, op: str) -> CarrierError:
    """The error for a non-zero code: credentials, system error (transient) or business refusal.
    A system error is a negative code, or any code in the words of Yanwen's own trouble ("系统繁忙，
    请稍后再试"): either says nothing about the order, which may exist."""
    code, message = envelope.code, envelope.message
    if is_auth_failure_text(message):
        return credentials_error(f"{op}: {message} (code {code})")
    number = _int(code)
    if (number is not None and number < 0) or mentions(message, CARRIER_TROUBLE_WORDS):
        return TransientCarrierError(f"Yanwen {op}: system error {message or 'without message'} "
                                     f"(code {code}); the call may have taken effect",
                                     code=code, carrier=CARRIER)
    return PermanentCarrierError(f"Yanwen {op} refused: {message or 'no message'} (code {code})",
                                 code=code, carrier=CARRIER)


def expect_ok(answer: Any, op: str) -> Any:
    """The ``data`` of a successful answer, or the classified refusal."""
    envelope = read_envelope(answer, op)
    if not envelope.ok:
        raise refusal(envelope, op)
    return envelope.data


def is_duplicate(envelope: Envelope, codes: Iterable[str], keywords: Iterable[str]) -> bool:
    if envelope.ok:
        return False
    return envelope.code in set(codes) or mentions(envelope.message, keywords)


# -- express.order.create -------------------------------------------------------------------


def _receiver(address: Address) -> dict[str, Any]:
    street = ", ".join(p.strip() for p in (address.line1, address.line2, address.line3, address.district)
                       if p and p.strip())
    fields = {
        "name": address.name,
        "phone": address.phone,
        "email": address.email,
        "company": address.company,
        "country": address.country_code.upper(),
        "state": address.state,
        "city": address.city,
        "zipCode": address.postal_code,
        "address": street,
    }
    required = ("name", "country", "city", "address")
    return {k: v for k, v in fields.items() if v or k in required}


def _sender(address: Address) -> dict[str, Any]:
    fields = _receiver(address)
    return {k: v for k, v in fields.items() if v}


def build_create_order(request: ShipmentRequest, *, user_id: str,
                       order_source: str = "amazon") -> dict[str, Any]:
    """The ``express.order.create`` body; ``orderNumber`` is our reference (the idempotency key)."""
    parcel = request.parcel
    if not parcel.contents:
        raise PermanentCarrierError(f"Yanwen needs at least one customs line for {request.reference}",
                                    code="no_contents", carrier=CARRIER)
    try:
        declared: Money = parcel.declared_value
    except ValueError as exc:
        raise PermanentCarrierError(f"Yanwen takes one declared currency per parcel ({request.reference}): "
                                    f"{exc}", code="currency", carrier=CARRIER) from None
    products = []
    for line in parcel.contents:
        product = {
            "goodsNameCh": line.name_cn,
            "goodsNameEn": line.name_en,
            "price": money_text(line.unit_value.amount),
            "priceExport": money_text(line.unit_value.amount),
            "hscode": line.hs_code,
            "quantity": int(line.quantity),
            "weight": int(line.unit_weight_g),
        }
        products.append({k: v for k, v in product.items() if v not in ("", None)
                         or k in ("goodsNameCh", "goodsNameEn")})
    parcel_info: dict[str, Any] = {
        "hasBattery": 1 if parcel.has_battery else 0,
        "currency": declared.currency,
        "totalPrice": money_text(declared.amount),
        "totalQuantity": sum(int(line.quantity) for line in parcel.contents),
        "totalWeight": int(parcel.weight_g),
        "length": centimetres(parcel.length_cm),
        "width": centimetres(parcel.width_cm),
        "height": centimetres(parcel.height_cm),
        "productList": products,
    }
    if request.ioss_number:
        parcel_info["ioss"] = request.ioss_number
    body: dict[str, Any] = {
        "channelId": request.service,
        "orderSource": order_source,
        "userId": user_id,
        "orderNumber": request.reference,
        "remark": request.order_id,  # printed on the picking slip; no PII
        "receiverInfo": _receiver(request.ship_to),
    }
    sender = _sender(request.ship_from)
    if sender:
        body["senderInfo"] = sender
    body["parcelInfo"] = parcel_info
    return body


def parse_create_order(answer: Any, request: ShipmentRequest, *,
                       duplicate_codes: Iterable[str] = ("121", "V121"),
                       duplicate_keywords: Iterable[str] = ("重复", "already exist")) -> Shipment:
    """The Shipment created for ``request.reference``, or the refusal as an exception."""
    op = ORDER_CREATE
    envelope = read_envelope(answer, op)
    reference = request.reference
    if not envelope.ok:
        if is_duplicate(envelope, duplicate_codes, duplicate_keywords):
            raise DuplicateReferenceError(
                f"Yanwen already holds orderNumber {reference}: {envelope.message} (code {envelope.code})",
                code=envelope.code, carrier=CARRIER)
        raise refusal(envelope, op)
    data = envelope.data
    if not isinstance(data, dict):
        raise _fail(op, f"field 'data' should be an object, got {type(data).__name__}")
    waybill = _waybill(op, data.get("waybillNumber"), "data.waybillNumber")
    if not waybill:
        raise _fail(op, "field 'data.waybillNumber' is missing or empty")
    order_number = _text(data.get("orderNumber"))
    if order_number and order_number != reference:
        raise _fail(op, f"field 'data.orderNumber' is {order_number!r}, not the reference {reference!r}")
    return Shipment(carrier=CARRIER, reference=reference, carrier_shipment_id=waybill,
                    tracking_number=waybill, service=request.service, status="created")


# -- express.order.label.get ------------------------------------------------------------------


def build_label_request(waybill: str) -> dict[str, Any]:
    return {"waybillNumber": waybill}


def parse_label(answer: Any, waybill: str) -> bytes:
    """The label PDF, decoded from ``data.base64String``."""
    op = ORDER_LABEL
    data = expect_ok(answer, op)
    if not isinstance(data, dict):
        raise _fail(op, f"field 'data' should be an object, got {type(data).__name__}")
    if data.get("isSuccess") is False:
        raise PermanentCarrierError(f"Yanwen cannot print the label of {waybill}: "
                                    f"{_text(data.get('errorMsg')) or 'no errorMsg'}",
                                    code="label_refused", carrier=CARRIER)
    encoded = data.get("base64String")
    if not isinstance(encoded, str) or not encoded.strip():
        raise _fail(op, "field 'data.base64String' is missing or empty")
    try:
        pdf = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _fail(op, "field 'data.base64String' is not valid base64") from None
    if not looks_like_pdf(pdf):
        raise _fail(op, f"field 'data.base64String' is not a complete PDF ({len(pdf)} bytes, "
                        f"starts with {pdf[:8]!r})")
    return pdf


# -- express.order.cancel ---------------------------------------------------------------------


def build_cancel_request(waybill: str, note: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"waybillNumber": waybill}
    if note:
        body["note"] = note
    return body


def parse_cancel(answer: Any, waybill: str, *, already_cancelled: Iterable[str] = ()) -> bool:
    """True when cancelled, now or before (a message with one of ``already_cancelled``); a refusal
    (e.g. after pickup) is permanent."""
    op = ORDER_CANCEL
    envelope = read_envelope(answer, op)
    if envelope.ok:
        return True
    number = _int(envelope.code)
    if (is_auth_failure_text(envelope.message) or (number is not None and number < 0)
            or mentions(envelope.message, CARRIER_TROUBLE_WORDS)):
        raise refusal(envelope, op)  # credentials, or Yanwen's own trouble: never "cancelled"
    if says_cancelled(envelope.message, already_cancelled):
        return True
    raise PermanentCarrierError(f"Yanwen refused to cancel {waybill}: {envelope.message or 'no message'} "
                                f"(code {envelope.code})", code=envelope.code, carrier=CARRIER)


# -- express.order.getlist (reference lookup) ---------------------------------------------------


def build_lookup_request(numbers: Sequence[str]) -> dict[str, Any]:
    """``express.order.getlist``: waybill numbers or order numbers (our references), at most 50."""
    return {"listNumber": list(numbers)}


@dataclass(frozen=True)
class OrderRecord:
    waybill: str
    order_number: str
    channel_id: str
    status: int | None
    yanwen_order_number: str = ""
    reference_number: str = ""


def parse_order_records(answer: Any, op: str = ORDER_LIST) -> list[OrderRecord]:
    """The records of ``express.order.getlist`` / ``express.order.get`` (no PII is kept); ``[]``
    for a successful answer without records, or a refusal that says the order does not exist
    (``says_not_found``: "运单不存在"). Any other refusal raises, whatever its words: "method not
    exist" or "用户不存在" (no such user) say the lookup did not look, and an empty answer to it
    would make the engine buy a second label."""
    envelope = read_envelope(answer, op)
    if not envelope.ok:
        if says_not_found(envelope.message, NOT_FOUND_WORDS):
            return []
        raise refusal(envelope, op)
    data = envelope.data
    out = []
    for i, record in enumerate(_objects(op, [data] if isinstance(data, dict) else data, "data")):
        waybill = _waybill(op, record.get("waybillNumber"), f"data[{i}].waybillNumber")
        if not waybill:
            raise _fail(op, f"field 'data[{i}].waybillNumber' is missing or empty")
        status = record.get("status")
        if status is not None and _int(status) is None:
            raise _fail(op, f"field 'data[{i}].status' is not a number (got {status!r})")
        out.append(OrderRecord(waybill=waybill, order_number=_text(record.get("orderNumber")),
                               channel_id=_text(record.get("channelId")), status=_int(status),
                               yanwen_order_number=_text(record.get("yanwenOrderNumber")),
                               reference_number=_text(record.get("referenceNumber"))))
    return out


def shipment_for_reference(records: Iterable[OrderRecord], reference: str, *,
                           cancelled_statuses: Iterable[int] = (5,)) -> tuple[Shipment | None, int]:
    """The live (not cancelled) shipment created under ``reference`` and how many live ones exist."""
    cancelled = set(cancelled_statuses)
    live = [r for r in records if r.order_number == reference and r.status not in cancelled]
    if not live:
        return None, 0
    record = live[0]
    return (Shipment(carrier=CARRIER, reference=reference, carrier_shipment_id=record.waybill,
                     tracking_number=record.waybill, service=record.channel_id, status="created"), len(live))


# -- express.channel.getlist -----------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    id: str
    name_en: str
    name_ch: str


def parse_channels(answer: Any) -> list[Channel]:
    op = CHANNEL_LIST
    channels = []
    for i, item in enumerate(_objects(op, expect_ok(answer, op), "data")):
        if not _text(item.get("id")):
            raise _fail(op, f"field 'data[{i}].id' is missing")
        channels.append(Channel(id=_text(item["id"]), name_en=" ".join(_text(item.get("nameEn")).split()),
                                name_ch=_text(item.get("nameCh"))))
    return channels


# -- calc.list (quotes, permissioned) ---------------------------------------------------------


def build_calc_request(request: ShipmentRequest, *, city_id: str = "") -> dict[str, Any]:
    """``calc.list`` parameters (UNVERIFIED beyond the names countryId, cityId, grams)."""
    parcel = request.parcel
    body: dict[str, Any] = {
        "countryId": request.ship_to.country_code.upper(),
        "grams": int(parcel.weight_g),
        "length": centimetres(parcel.length_cm),
        "width": centimetres(parcel.width_cm),
        "height": centimetres(parcel.height_cm),
    }
    if request.ship_to.postal_code:
        body["postcode"] = request.ship_to.postal_code
    if city_id:
        body["cityId"] = city_id
    return body


_CALC_ID_KEYS = ("channelId", "productId", "channel", "id")
_CALC_PRICE_KEYS = ("totalPrice", "totalFee", "totalAmount", "price", "freight")
_CALC_CURRENCY_KEYS = ("currency", "currencyCode")
_CALC_DAYS_KEYS = ("deliveryDays", "transitDays", "timeLimit", "aging")
# The price breakdown, if the answer has one (names UNVERIFIED): the per-parcel fee and the
# chargeable weight in grams (calc.list is asked in grams).
_CALC_HANDLING_KEYS = ("registrationFee", "registerFee", "handlingFee", "operationFee")
_CALC_WEIGHT_KEYS = ("chargeWeight", "calcWeight", "feeWeight", "chargeableWeight")


def _first(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((item[k] for k in keys if item.get(k) not in (None, "")), None)


def parse_calc(answer: Any, *, services: Iterable[str] = (), tracking_levels: dict[str, str] | None = None,
               default_currency: str = "CNY") -> list[Quote]:
    """Quotes from ``calc.list`` for ``services`` (all when empty).

    The answer's field names are UNVERIFIED: the channel id, price, currency and transit time are
    read from the first present of a few candidate names each, and so is the breakdown: the
    handling fee (e.g. ``registrationFee``) and the chargeable weight (e.g. ``chargeWeight``, in
    grams); each is none when the item has no readable candidate.
    """
    op = CALC_LIST
    envelope = read_envelope(answer, op)
    if not envelope.ok:
        if mentions(envelope.message, PERMISSION_WORDS):
            raise PermanentCarrierError(
                f"Yanwen calc.list is not enabled for this account: {envelope.message} "
                f"(code {envelope.code}); ask Yanwen for the permission or set quote_source: rate_card",
                code=envelope.code, carrier=CARRIER)
        raise refusal(envelope, op)
    data = envelope.data
    if isinstance(data, dict):  # some gateways wrap lists: {"list": [...]}
        data = next((v for v in data.values() if isinstance(v, list)), data)
    wanted = set(services)
    levels = tracking_levels or {}
    quotes = []
    for i, item in enumerate(_objects(op, data, "data")):
        service = _text(_first(item, _CALC_ID_KEYS))
        if not service:
            raise _fail(op, f"field 'data[{i}].channelId' is missing")
        if wanted and service not in wanted:
            continue
        price = _decimal(_first(item, _CALC_PRICE_KEYS))
        if price is None:
            raise _fail(op, f"field 'data[{i}].totalPrice' is missing or not a number")
        currency = _currency(_first(item, _CALC_CURRENCY_KEYS), default_currency)
        if currency is None:
            raise _fail(op, f"field 'data[{i}].currency' is not a currency code "
                            f"(got {_first(item, _CALC_CURRENCY_KEYS)!r})")
        handling = _decimal(_first(item, _CALC_HANDLING_KEYS))
        weight = _decimal(_first(item, _CALC_WEIGHT_KEYS))
        quotes.append(Quote(carrier=CARRIER, service=service, price=Money(price, currency),
                            transit_days=transit_days(_first(item, _CALC_DAYS_KEYS)),
                            tracking_level=levels.get(service, ""),
                            handling_fee=Money(handling, currency) if handling is not None else None,
                            chargeable_weight_g=int(weight.to_integral_value(rounding=ROUND_HALF_UP))
                            if weight is not None and weight > 0 else None))
    return quotes


# -- tracking API ------------------------------------------------------------------------------

NOT_FOUND = "NOTFOUND"

# Checkpoint codes as the public clients list them (e.g. karrio's Yanwen tracking extension, removed in
# https://github.com/karrioapi/karrio/commit/2787ca7ff). LM30 "ready for pickup" maps to
# OUT_FOR_DELIVERY: the parcel has reached the last point before the buyer; it is not moving
# through the network.
TRACKING_CODES: dict[str, TrackingStatus] = {
    "PU10": TrackingStatus.ACCEPTED,
    "LM25": TrackingStatus.OUT_FOR_DELIVERY,
    "LM30": TrackingStatus.OUT_FOR_DELIVERY,
    "LM40": TrackingStatus.DELIVERED,
    "LM50": TrackingStatus.FAILED_ATTEMPT,
    "LM90": TrackingStatus.RETURNED,
}


# The families of the transit codes no public source lists (origin sort, export, line-haul, import,
# last mile: UNVERIFIED stand-ins, as the emulator's): a checkpoint under one is a scan in transit
# unless its message says more. A code of no known family, or none, is not guessed a scan.
TRANSIT_CODE_PREFIXES = ("OR", "EX", "LH", "IM", "LM")


def checkpoint_status(code: str, message: str = "") -> TrackingStatus:
    """A checkpoint's status from its ``tracking_status`` code; for the undocumented codes the
    message spots a return (under way or done) and customs, else in transit for a code of a known
    transit family (:data:`TRANSIT_CODE_PREFIXES`) and unknown for any other, or an empty one: an
    event the plugin cannot classify is no scan (a counted scan stops the void of a label)."""
    code = code.strip().upper()
    if code in TRACKING_CODES:
        return TRACKING_CODES[code]
    if code == NOT_FOUND:
        return TrackingStatus.UNKNOWN
    if code.startswith("PU"):  # other pickup/acceptance scans
        return TrackingStatus.ACCEPTED
    if code.startswith("SC"):  # shipment-level codes (SC20 seen once; meaning UNVERIFIED): no scan
        return TrackingStatus.PENDING
    if mentions(message, _RETURNING_WORDS):
        return TrackingStatus.RETURNING
    if mentions(message, _RETURNED_WORDS):
        return TrackingStatus.RETURNED
    if mentions(message, _CUSTOMS_WORDS):
        return TrackingStatus.CUSTOMS
    return TrackingStatus.IN_TRANSIT if code.startswith(TRANSIT_CODE_PREFIXES) else TrackingStatus.UNKNOWN


# English for a checkpoint whose message has none: by its code, else by its status.
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+")
ENGLISH_BY_CODE: dict[str, str] = {
    "PU10": "Received by Yanwen", "LM25": "Out for delivery", "LM30": "Ready for pickup",
    "LM40": "Delivered", "LM50": "Delivery attempt failed", "LM90": "Returned to sender",
}
ENGLISH_BY_STATUS: dict[TrackingStatus, str] = {
    TrackingStatus.PENDING: "Shipment information received", TrackingStatus.ACCEPTED: "Received by Yanwen",
    TrackingStatus.IN_TRANSIT: "In transit", TrackingStatus.CUSTOMS: "Customs clearance",
    TrackingStatus.OUT_FOR_DELIVERY: "Out for delivery", TrackingStatus.DELIVERED: "Delivered",
    TrackingStatus.FAILED_ATTEMPT: "Delivery attempt failed", TrackingStatus.RETURNING: "Returning to sender",
    TrackingStatus.RETURNED: "Returned to sender",
}


def checkpoint_english(message: str, code: str, status: TrackingStatus) -> str:
    """A checkpoint's English: the message when it has no Chinese; its English part when it mixes
    both ("燕文深圳仓已收货 Received by Yanwen"); else the code's or the status's English."""
    if message and not _CJK.search(message):
        return message
    latin = " ".join(_CJK.sub(" ", message).split()).strip(" -/|:;,.()[]")
    if len(re.findall(r"[A-Za-z]{2,}", latin)) >= 2:  # a phrase, not a name or a code
        return latin
    return ENGLISH_BY_CODE.get(code) or ENGLISH_BY_STATUS.get(status, "")


_ZONE = re.compile(r"^(?:UTC|GMT)?\s*([+-])?\s*(\d{1,2})(?::?(\d{2})|\.(\d+))?$", re.IGNORECASE)


def parse_zone(text: str) -> float:
    """``"+8"``, ``"-5"``, ``"+05:30"``, ``"+0530"``, ``"5.5"``, ``"UTC+8"`` -> hours east of UTC."""
    match = _ZONE.match(text.strip())
    if not match:
        raise ValueError(f"not a UTC offset: {text!r}")
    sign_, hours, minutes, fraction = match.groups()
    value = int(hours) + (int(minutes) / 60 if minutes else 0) + (float("0." + fraction) if fraction else 0)
    if value > 14:
        raise ValueError(f"UTC offset out of range: {text!r}")
    return -value if sign_ == "-" else value


def parse_checkpoint_time(stamp: Any, zone: Any, default_offset_hours: float = 8.0) -> datetime:
    """``time_stamp`` (local, ISO without zone) + ``time_zone`` -> an aware UTC datetime."""
    moment = iso_time(stamp)
    zone_text = _text(zone)
    offset = parse_zone(zone_text) if zone_text and moment.tzinfo is None else default_offset_hours
    return in_utc(moment, offset)


def tracking_query(numbers: Sequence[str]) -> dict[str, str]:
    return {"nums": ",".join(numbers)}


def _tracking_info(entry: dict[str, Any], number: str, index: int,
                   default_offset_hours: float) -> TrackingInfo:
    op = "tracking"
    overall = _text(entry.get("tracking_status")).upper()
    checkpoints = _objects(op, entry.get("checkpoints") or None, f"result[{index}].checkpoints")
    if overall == NOT_FOUND and not checkpoints:
        return TrackingInfo(tracking_number=number, status=TrackingStatus.UNKNOWN)
    events = []
    for j, point in enumerate(checkpoints):
        where = f"result[{index}].checkpoints[{j}]"
        try:
            when = parse_checkpoint_time(point.get("time_stamp"), point.get("time_zone"),
                                         default_offset_hours)
        except ValueError:
            raise _fail(op, f"field '{where}.time_stamp'/'time_zone' is not a date "
                            f"(got {point.get('time_stamp')!r} {point.get('time_zone')!r})") from None
        code = _text(point.get("tracking_status")).upper()
        message = _text(point.get("message"))
        status = checkpoint_status(code, message)
        events.append(TrackingEvent(time=when, status=status, description=message,
                                    location=_text(point.get("location")), code=code,
                                    description_en=checkpoint_english(message, code, status)))
    events.sort(key=lambda e: e.time)
    if events:
        status = events[-1].status
    elif overall in TRACKING_CODES:
        status = TRACKING_CODES[overall]
    else:  # known to Yanwen, not scanned yet
        status = TrackingStatus.PENDING
    return TrackingInfo(tracking_number=number, status=status, events=tuple(events))


def parse_tracking(answer: Any, numbers: Sequence[str], *,
                   default_offset_hours: float = 8.0) -> dict[str, TrackingInfo]:
    """One tracking answer -> ``{asked number: TrackingInfo}``; numbers it omits are UNKNOWN."""
    op = "tracking"
    if not isinstance(answer, dict):
        raise _fail(op, f"answer is not a JSON object (got {type(answer).__name__})")
    if answer.get("code") is None:
        raise _fail(op, "field 'code' is missing from the answer")
    code = _int(answer["code"])
    message = _text(answer.get("message"))
    if code is None:
        raise _fail(op, f"field 'code' is not a number (got {answer['code']!r})")
    if code != 0:
        if is_auth_failure_text(message) or code in (401, 403):
            raise tracking_credentials_error(f"{message} (code {code})")
        raise PermanentCarrierError(f"Yanwen tracking refused: {message or 'no message'} (code {code})",
                                    code=str(code), carrier=CARRIER)
    asked = set(numbers)
    infos: dict[str, TrackingInfo] = {}
    for i, entry in enumerate(_objects(op, answer.get("result"), "result")):
        candidates = [_text(entry.get(k)) for k in ("tracking_number", "waybill_number", "exchange_number")]
        number = next((c for c in candidates if c in asked), None)
        if number is None:
            if not candidates[0]:
                raise _fail(op, f"field 'result[{i}].tracking_number' is missing")
            continue  # an answer for a number we did not ask about: ignore it
        # A malformed entry fails its number alone.
        infos[number] = tracking_or_error(number, _tracking_info, entry, number, i, default_offset_hours)
    for number in numbers:
        infos.setdefault(number, TrackingInfo(tracking_number=number, status=TrackingStatus.UNKNOWN))
    return infos
