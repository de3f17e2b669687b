"""Pure request building and response parsing for the YunExpress OMS API (no I/O here).

Every parser takes the decoded JSON body and returns model objects or raises:

* :class:`TransientCarrierError` -- the answer is malformed or not what the API documents (the
  message names the field); the outcome of the call is unknown, the engine reconciles;
* :class:`PermanentCarrierError` -- the carrier refused (its ``Remark``/``Message`` is the message,
  its ``Code`` the code);
* :class:`DuplicateReferenceError` -- the ``CustomerOrderNumber`` is already taken.

Shapes follow docs/carrier-apis.md#yunexpress (OMS API, public sources) and the captured fixtures.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP
from typing import TYPE_CHECKING, Any

from connector.kit import Money, Quote, Shipment, TrackingEvent, TrackingInfo, TrackingStatus
from connector.kit.carrier import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.kit.values import (
    CARRIER_TROUBLE_WORDS,
    in_utc,
    iso_time,
    issued_number,
    kilograms,
    mentions,
    objects,
    says_cancelled,
    says_not_found,
    transit_days,
)
from connector.kit.values import currency as _currency
from connector.kit.values import decimal as _decimal
from connector.kit.values import integer as _int
from connector.kit.values import text as _text
from connector.kit.values import whole_centimetres as centimetres

if TYPE_CHECKING:
    from connector.kit import Address, CarrierError, ShipmentRequest

CARRIER = "yunexpress"
OK = "0000"
LABEL_OK = 100

# Words that mark an authentication failure in a JSON error envelope (the API answers some auth
# problems with HTTP 200 and a Code, others with a 401 text body).
AUTH_FAILURE_WORDS = ("unauthorized", "unauthorised", "authoriz", "authentic", "credential", "apisecret",
                      "api secret", "customercode", "认证", "授权", "签名错误", "密钥")
# Words that mark "no such order" in a lookup answer.
NOT_FOUND_WORDS = ("not exist", "not found", "no record", "不存在", "查询不到", "未找到")
# Phrases that contain a duplicate keyword ("exist") but say the opposite.
_NEGATED_EXIST = ("not exist", "n't exist", "no exist", "nonexist", "non-exist", "不存在")
_SUCCESS_WORDS = ("成功", "success")
CANCELLED_PACKAGE_STATE = 5  # GetTrackInfo Item.PackageState of a deleted (cancelled) order
# PackageStates that say YunExpress has not scanned the parcel: 0 unknown (nothing on it yet), 1
# submitted (the order only). While one of them stands, no event is a scan, whatever its words.
UNSCANNED_PACKAGE_STATES = frozenset({0, 1})
NOT_FOUND_CODE = "not_found"  # the code of a WayBill/Delete refusal for "no such order"
_FAILURE_WORDS = ("不成功", "未成功", "失败", "unsuccess", "fail")

PACKAGE_STATES: dict[int, TrackingStatus] = {
    0: TrackingStatus.UNKNOWN,
    1: TrackingStatus.PENDING,          # 已提交: order submitted, no scan yet
    2: TrackingStatus.IN_TRANSIT,       # 运输中
    3: TrackingStatus.DELIVERED,        # 已签收
    4: TrackingStatus.ACCEPTED,         # 已收货: received by the carrier
    5: TrackingStatus.CANCELLED,        # 订单取消
    6: TrackingStatus.FAILED_ATTEMPT,   # 投递失败
    7: TrackingStatus.RETURNED,         # 已退回
}

# Event classification by ProcessContent keywords, first match wins (order matters): a return
# under way before a completed one, both before the delivery words they may contain.
_EVENT_RULES: tuple[tuple[TrackingStatus, tuple[str, ...]], ...] = (
    (TrackingStatus.RETURNING, ("returning", "return to sender in progress", "return in progress",
                                "being returned", "will be returned", "return initiated",
                                "退件处理中", "退回中", "正在退回", "退回途中", "退运中")),
    (TrackingStatus.FAILED_ATTEMPT, ("unsuccessful", "attempt", "delivery failed", "failed delivery",
                                     "undeliverable", "投递失败", "派送失败", "未妥投")),
    (TrackingStatus.RETURNED, ("return", "退回", "退件", "退运")),
    # After the return words ("not delivered, returned to sender" is a return, as China Post reads
    # it) and before the delivery words these contain ("undelivered", "未签收"): a failure is never
    # a delivery.
    (TrackingStatus.FAILED_ATTEMPT, ("undelivered", "not delivered", "not be delivered", "未签收", "无人签收",
                                     "未投递", "投递未成功", "投递不成功")),
    (TrackingStatus.DELIVERED, ("delivered", "签收", "妥投", "已投递")),
    (TrackingStatus.OUT_FOR_DELIVERY, ("out for delivery", "out-for-delivery", "with courier for delivery",
                                       "派送中", "正在派送", "派件中")),
    (TrackingStatus.CUSTOMS, ("customs", "清关", "海关")),
    (TrackingStatus.CANCELLED, ("cancel", "deleted", "取消", "删除")),
    (TrackingStatus.PENDING, ("information received", "info received", "label created", "submitted",
                              "预报", "已提交", "电子信息")),
    (TrackingStatus.ACCEPTED, ("received", "picked up", "accepted", "收货", "揽收", "入库")),
    (TrackingStatus.IN_TRANSIT, ("depart", "arriv", "transit", "sorted", "sorting", "processed at",
                                 "processing center", "processing centre", "hub", "facility", "flight",
                                 "airline", "airport", "line haul", "linehaul", "handed over", "handover",
                                 "transferred", "dispatched", "export", "离开", "到达", "抵达", "分拣",
                                 "运输", "转运", "航班", "起飞", "发往", "已发出", "出口", "交航",
                                 "处理中心")),
)
# Text no rule knows is UNKNOWN: kept with its words, but neither a scan nor a move (the engine
# counts scans, and a counted scan stops the automatic void of a cancelled order's label).
# "Delivered to the airline" is a hand-over, not a delivery.
_HANDOVER_WORDS = ("airline", "carrier", "hub", "facility", "flight", "航空", "转运")
# The PackageStates after which nothing changes any more: the events cannot tell more.
_FINAL = (TrackingStatus.DELIVERED, TrackingStatus.RETURNED, TrackingStatus.CANCELLED)
# The statuses of events that are no carrier scan.
_NO_SCAN = (TrackingStatus.PENDING, TrackingStatus.CANCELLED, TrackingStatus.UNKNOWN)

# English for an event the carrier words in Chinese only (by its status): ProcessContent is
# English, Chinese + English, or Chinese.
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+")
ENGLISH_BY_STATUS: dict[TrackingStatus, str] = {
    TrackingStatus.PENDING: "Shipment information received",
    TrackingStatus.ACCEPTED: "Received by YunExpress",
    TrackingStatus.IN_TRANSIT: "In transit",
    TrackingStatus.CUSTOMS: "Customs clearance",
    TrackingStatus.OUT_FOR_DELIVERY: "Out for delivery",
    TrackingStatus.DELIVERED: "Delivered",
    TrackingStatus.FAILED_ATTEMPT: "Delivery attempt unsuccessful",
    TrackingStatus.RETURNING: "Returning to sender",
    TrackingStatus.RETURNED: "Returned to sender",
    TrackingStatus.CANCELLED: "Order cancelled",
}


# -- small helpers -------------------------------------------------------------------------


def _fail(op: str, message: str) -> TransientCarrierError:
    return TransientCarrierError(f"YunExpress {op}: {message}", carrier=CARRIER)


def _opt_str(value: Any) -> str | None:
    text = _text(value)
    return text or None


def _number(entry: dict[str, Any], key: str, op: str, where: str) -> str | None:
    """``entry[key]``, a number the carrier issued (waybill, tracking number), as text; ``None``
    when empty; one of another JSON type is a malformed answer (the kit's ``issued_number``)."""
    try:
        return issued_number(entry.get(key), f"{where}.{key}") or None
    except ValueError as exc:
        raise _fail(op, str(exc)) from None


def authorization_header(customer_code: str, api_secret: str) -> str:
    """``Basic base64(CustomerCode & ApiSecret)`` -- an ampersand, not the usual colon."""
    token = base64.b64encode(f"{customer_code}&{api_secret}".encode()).decode("ascii")
    return f"Basic {token}"


def is_auth_failure_text(text: str) -> bool:
    return mentions(text, AUTH_FAILURE_WORDS)


def credentials_error(detail: str = "") -> PermanentCarrierError:
    message = "YunExpress rejected the credentials (check customer_code and api_secret)"
    return PermanentCarrierError(message + (f": {detail}" if detail else ""), code="auth", carrier=CARRIER)


def is_duplicate_remark(remark: str, keywords: Iterable[str]) -> bool:
    """True when a Remark says the CustomerOrderNumber is already used ("重复", "already exists")."""
    low = remark.lower()
    if not low:
        return False
    for word in keywords:
        w = word.lower()
        if w not in low:
            continue
        if w == "exist" and any(neg in low for neg in _NEGATED_EXIST) and "already" not in low:
            continue  # "shipping method does not exist" is not a duplicate
        return True
    return False


# -- the envelope ---------------------------------------------------------------------------


def envelope(data: Any, op: str) -> tuple[str, str]:
    """Check the ``{Code, Message, Item|Items}`` envelope; return ``(Code, Message)``.

    A JSON auth failure (non-0000 Code, no payload, a Message about credentials) raises the
    credentials error here, so that every operation reports it the same way.
    """
    if not isinstance(data, dict):
        raise _fail(op, f"answer is not a JSON object (got {type(data).__name__})")
    if "Code" not in data or data["Code"] is None:
        raise _fail(op, "field 'Code' is missing from the answer")
    code = _text(data["Code"])
    message = _text(data.get("Message"))
    if code != OK and not data.get("Item") and not data.get("Items") and is_auth_failure_text(message):
        raise credentials_error(f"Code {code}: {message}")
    return code, message


def _refusal(op: str, code: str, message: str) -> CarrierError:
    """The error for a non-0000 Code: a refusal, but in the words of YunExpress's own trouble
    ("系统繁忙，请稍后再试") it says nothing about the order and is asked again (transient)."""
    if mentions(message, CARRIER_TROUBLE_WORDS):
        return TransientCarrierError(f"YunExpress {op}: {message} (Code {code}); to be asked again",
                                     code=code, carrier=CARRIER)
    return PermanentCarrierError(f"YunExpress {op} refused: {message or 'no message'} (Code {code})",
                                 code=code, carrier=CARRIER)


def _items(data: Any, op: str) -> list[dict[str, Any]]:
    """The ``Items`` of an answer whose Code is 0000 (``null``: none), each an object."""
    code, message = envelope(data, op)
    if code != OK:
        raise _refusal(op, code, message)
    try:
        return objects(data.get("Items"), "Items")
    except ValueError as exc:
        raise _fail(op, str(exc)) from None


# -- CreateOrder ----------------------------------------------------------------------------


def _receiver(address: Address) -> dict[str, Any]:
    street2 = ", ".join(p for p in (address.line3, address.district) if p)
    fields = {
        "CountryCode": address.country_code.upper(),
        "FirstName": address.name,  # the whole name: Amazon gives one string
        "Street": address.line1,
        "City": address.city,
        "StreetAddress1": address.line2,
        "StreetAddress2": street2,
        "State": address.state,
        "Zip": address.postal_code,
        "Phone": address.phone,
        "Email": address.email,
        "Company": address.company,
    }
    required = ("CountryCode", "FirstName", "Street", "City")
    return {k: v for k, v in fields.items() if v or k in required}


def _sender(address: Address) -> dict[str, Any]:
    street = " ".join(p for p in (address.line1, address.line2, address.line3) if p)
    fields = {
        "CountryCode": address.country_code.upper(),
        "FirstName": address.name,
        "Company": address.company,
        "Street": street,
        "City": address.city,
        "State": address.state,
        "Zip": address.postal_code,
        "Phone": address.phone,
        "Email": address.email,
    }
    return {k: v for k, v in fields.items() if v}


def build_create_order(request: ShipmentRequest, *, application_type: int = 4) -> list[dict[str, Any]]:
    """The ``WayBill/CreateOrder`` body: a JSON array holding this one order."""
    parcel = request.parcel
    order: dict[str, Any] = {
        "CustomerOrderNumber": request.reference,
        "ShippingMethodCode": request.service,
        "TransactionNumber": request.order_id,
        "PackageCount": 1,
        "Weight": kilograms(parcel.weight_g),
        "Length": centimetres(parcel.length_cm),
        "Width": centimetres(parcel.width_cm),
        "Height": centimetres(parcel.height_cm),
        "ApplicationType": application_type,
        "Receiver": _receiver(request.ship_to),
        "Parcels": [
            {k: v for k, v in {
                "EName": line.name_en,
                "CName": line.name_cn,
                "HSCode": line.hs_code,
                "Quantity": line.quantity,
                "UnitPrice": float(line.unit_value.amount),
                "UnitWeight": kilograms(line.unit_weight_g),
                "CurrencyCode": line.unit_value.currency,
                "SKU": line.sku,
            }.items() if v not in ("", None) or k == "EName"}
            for line in parcel.contents
        ],
    }
    sender = _sender(request.ship_from)
    if sender:
        order["Sender"] = sender
    if request.ioss_number:
        order["IossCode"] = request.ioss_number
    return [order]


def _find_entry(items: list[Any], key_fields: tuple[str, ...], reference: str) -> dict[str, Any] | None:
    for entry in items:
        if isinstance(entry, dict) and any(_text(entry.get(k)) == reference for k in key_fields):
            return entry
    if len(items) == 1 and isinstance(items[0], dict) and not any(_text(items[0].get(k)) for k in key_fields):
        return items[0]
    return None


def parse_create_order(data: Any, request: ShipmentRequest, *,
                       duplicate_codes: Iterable[str] = ("1001",),
                       duplicate_keywords: Iterable[str] = ("重复", "repeat", "exist"),
                       use_waybill_as_tracking: bool = False) -> Shipment:
    """The Shipment created for ``request.reference``, or the refusal as an exception."""
    op = "CreateOrder"
    code, message = envelope(data, op)
    reference = request.reference
    items = data.get("Item")
    if items is None:
        items = data.get("Items")
    if items is not None and not isinstance(items, list):
        raise _fail(op, f"field 'Item' should be a list, got {type(items).__name__}")
    entry = _find_entry(items or [], ("CustomerOrderNumber",), reference)
    success = _int(entry.get("Success")) if entry is not None else None

    if entry is not None and success == 1:
        return _created_shipment(entry, request, use_waybill_as_tracking)

    keywords = tuple(duplicate_keywords)
    remark = _text(entry.get("Remark")) if entry is not None else ""
    if code != OK:
        if code in set(duplicate_codes) or is_duplicate_remark(remark or message, keywords):
            raise DuplicateReferenceError(
                f"YunExpress already holds CustomerOrderNumber {reference}: {remark or message} "
                f"(Code {code})",
                code=code, carrier=CARRIER)
        _raise_if_trouble(remark or message, reference, code)
        raise _refusal(op, code, remark or message)
    if entry is None:
        raise _fail(op, f"field 'Item' has no entry for CustomerOrderNumber {reference}")
    if success != 0:  # (1 returned above)
        raise _fail(op, f"field 'Item[].Success' is missing or not 0/1 (got {entry.get('Success')!r})")
    if is_duplicate_remark(remark, keywords):
        raise DuplicateReferenceError(f"YunExpress already holds CustomerOrderNumber {reference}: {remark}",
                                      code="duplicate", carrier=CARRIER)
    _raise_if_trouble(remark, reference, "rejected")
    raise PermanentCarrierError(f"YunExpress refused CustomerOrderNumber {reference}: "
                                f"{remark or 'no Remark'}", code="rejected", carrier=CARRIER)


def _raise_if_trouble(words: str, reference: str, code: str) -> None:
    """A refusal in the words of YunExpress's own trouble ("系统异常，请稍后重试", "system busy") is
    no answer about the order: the call may have taken effect, so it is transient (the engine looks
    the reference up before buying again), never a refusal that gives the reference up."""
    if mentions(words, CARRIER_TROUBLE_WORDS):
        raise TransientCarrierError(f"YunExpress CreateOrder for {reference}: {words} (Code {code}); the "
                                    "call may have taken effect", code=code, carrier=CARRIER)


def _created_shipment(entry: dict[str, Any], request: ShipmentRequest, use_waybill: bool) -> Shipment:
    op = "CreateOrder"
    waybill = _number(entry, "WayBillNumber", op, "Item[]")
    if waybill is None:
        raise _fail(op, "field 'Item[].WayBillNumber' is missing or empty for a successful order")
    track_type = _text(entry.get("TrackType"))
    tracking = _number(entry, "TrackingNumber", op, "Item[]")
    if use_waybill:
        tracking = waybill
    elif track_type == "2":
        tracking = None  # assigned later: Waybill/GetTrackingNumber
    elif track_type == "3":
        tracking = tracking or waybill  # the product has no separate tracking number
    elif track_type not in ("", "1"):
        raise _fail(op, f"field 'Item[].TrackType' has an undocumented value {track_type!r}")
    return Shipment(carrier=CARRIER, reference=request.reference, carrier_shipment_id=waybill,
                    tracking_number=tracking, service=request.service, status="created")


# -- GetOrder and GetTrackingNumber ---------------------------------------------------------


@dataclass(frozen=True)
class OrderLookup:
    """What ``WayBill/GetOrder`` tells about one order (no receiver data kept)."""

    waybill: str
    order_number: str
    service: str
    tracking_number: str | None
    status: int | None


def parse_get_order(data: Any, reference: str) -> OrderLookup | None:
    """The order held under ``reference``; ``None`` when the carrier has none: ``Item`` empty, or
    a refusal that says the order does not exist (``says_not_found``: "订单不存在"). Any other
    refusal raises, whatever its words ("接口不存在", "customer does not exist"): an empty answer to
    a lookup that did not look would make the engine buy a second label."""
    op = "GetOrder"
    code, message = envelope(data, op)
    if code != OK:
        if says_not_found(message, NOT_FOUND_WORDS):
            return None
        raise _refusal(op, code, message)
    item = data.get("Item")
    if item is None or item == []:
        return None
    if isinstance(item, list):
        if len(item) > 1:
            found = _find_entry(item, ("CustomerOrderNumber", "OrderNumber"), reference)
            if found is None:
                raise _fail(op, f"field 'Item' lists {len(item)} orders, none under {reference}")
            item = found
        else:
            item = item[0]  # [null] is malformed (below), never "no such order"
    if not isinstance(item, dict):
        raise _fail(op, f"field 'Item' should be an object, got {type(item).__name__}")
    waybill = _number(item, "WayBillNumber", op, "Item")
    if waybill is None:
        raise _fail(op, "field 'Item.WayBillNumber' is missing or empty")
    tracking = _number(item, "TrackingNumber", op, "Item")
    order_number = _text(item.get("CustomerOrderNumber")) or _text(item.get("OrderNumber"))
    if order_number and order_number not in (reference, waybill, tracking):
        raise _fail(op, f"field 'Item.OrderNumber' is {order_number!r}, not the reference {reference!r}")
    return OrderLookup(waybill=waybill, order_number=order_number or reference,
                       service=_text(item.get("ShippingMethodCode")), tracking_number=tracking,
                       status=_int(item.get("Status")))


def parse_tracking_number(data: Any, reference: str, *, use_waybill_as_tracking: bool = False) -> str | None:
    """``Waybill/GetTrackingNumber``: the number once generated, ``None`` while generating."""
    op = "GetTrackingNumber"
    code, message = envelope(data, op)
    if code != OK:
        raise _refusal(op, code, message)
    items = data.get("Items")
    if not isinstance(items, list):
        raise _fail(op, f"field 'Items' should be a list, got {type(items).__name__}")
    entry = _find_entry(items, ("CustomerOrderNumber", "OrderNumber"), reference)
    if entry is None:
        raise _fail(op, f"field 'Items' has no entry for CustomerOrderNumber {reference}")
    status = _int(entry.get("Status"))
    waybill = _number(entry, "WayBillNumber", op, "Items[]")
    tracking = _number(entry, "TrackingNumber", op, "Items[]")
    if status == 1:
        if use_waybill_as_tracking and waybill:
            return waybill
        if tracking is None:
            raise _fail(op, "field 'Items[].TrackingNumber' is empty although Status is 1 (generated)")
        return tracking
    if status == 2:
        return waybill if use_waybill_as_tracking else None
    if status == 3:  # no tracking number needed for this product: the waybill is what is tracked
        if waybill is None:
            raise _fail(op, "field 'Items[].WayBillNumber' is empty although Status is 3 (not needed)")
        return waybill
    if status == 4:
        raise PermanentCarrierError(
            f"YunExpress failed to assign a tracking number to {reference}: "
            f"{_text(entry.get('Remark')) or 'no Remark'}", code="tracking_failed", carrier=CARRIER)
    raise _fail(op, f"field 'Items[].Status' has an undocumented value {entry.get('Status')!r}")


def shipment_from_lookup(lookup: OrderLookup, reference: str, tracking_number: str | None) -> Shipment:
    return Shipment(carrier=CARRIER, reference=reference, carrier_shipment_id=lookup.waybill,
                    tracking_number=tracking_number, service=lookup.service, status="created")


# -- Label/Print ----------------------------------------------------------------------------


def build_label_request(numbers: list[str], fmt: str = "array") -> Any:
    """``Label/Print`` body. Sources disagree (UNVERIFIED): a bare array or ``{OrderNumbers}``."""
    return {"OrderNumbers": list(numbers)} if fmt == "object" else list(numbers)


def parse_label_print(data: Any) -> str:
    """The URL of the label PDF. ``OrderInfos[].Code`` 100 is ok, 200 means no print template."""
    op = "Label/Print"
    code, message = envelope(data, op)
    if code != OK:
        raise _refusal(op, code, message)
    items = data.get("Item")
    if not isinstance(items, list) or not items:
        raise _fail(op, "field 'Item' is missing or empty")
    first = items[0]
    if not isinstance(first, dict):
        raise _fail(op, "field 'Item[0]' is not an object")
    infos = first.get("OrderInfos") or []
    if not isinstance(infos, list):
        raise _fail(op, "field 'Item[0].OrderInfos' should be a list")
    for info in infos:
        info_code = _int(info.get("Code")) if isinstance(info, dict) else None
        if info_code is None:
            raise _fail(op, "field 'Item[0].OrderInfos[].Code' is missing or not a number")
        if info_code != LABEL_OK:
            error = _text(info.get("Error")) or ("no print template" if info_code == 200 else "label refused")
            raise PermanentCarrierError(f"YunExpress cannot print the label for "
                                        f"{_text(info.get('CustomerOrderNumber'))}: {error}",
                                        code=str(info_code), carrier=CARRIER)
    url = _opt_str(first.get("Url"))
    if url is None:
        raise _fail(op, "field 'Item[0].Url' is missing or empty")
    return url


# -- WayBill/Delete -------------------------------------------------------------------------


def build_delete_request(waybill: str) -> dict[str, Any]:
    return {"OrderType": 1, "OrderNumber": waybill}  # 1 = YT waybill number


def parse_delete(data: Any, *, success_statuses: Iterable[str] = ("success", "5012"),
                 already_deleted: Iterable[str] = ()) -> bool:
    """True when deleted, now or before (a Remark with one of ``already_deleted``). The fixture says
    Status "5012" + "删除成功!"; a Go client says Success/Failure. A refusal in the words of
    YunExpress's own trouble says nothing about the waybill: transient, asked again."""
    op = "WayBill/Delete"
    code, message = envelope(data, op)
    if code != OK:
        raise _refusal(op, code, message)
    item = data.get("Item")
    if isinstance(item, list) and len(item) == 1:
        item = item[0]
    if not isinstance(item, dict):
        raise _fail(op, "field 'Item' is missing or not an object")
    ok_statuses = {s.lower() for s in success_statuses}
    status = _text(item.get("Status")).lower()
    remark = _text(item.get("Remark"))
    if says_cancelled(remark, already_deleted):
        return True
    failed_remark = mentions(remark, _FAILURE_WORDS)
    if status in ("failure", "fail", "false", "0") or (status not in ok_statuses and failed_remark):
        _raise_if_busy(op, remark, status or "failure")
        # "no such order": deleted before, or not known yet -- YunExpress words both alike
        code = NOT_FOUND_CODE if mentions(remark, NOT_FOUND_WORDS) else status or "failure"
        raise PermanentCarrierError(f"YunExpress refused to delete {_text(item.get('OrderNumber'))}: "
                                    f"{remark or 'Status ' + status}", code=code, carrier=CARRIER)
    if status in ok_statuses or mentions(remark, _SUCCESS_WORDS):
        return True
    raise _fail(op, f"field 'Item.Status' has an undocumented value {item.get('Status')!r} "
                    f"(Remark {remark!r})")


def _raise_if_busy(op: str, words: str, code: str) -> None:
    """A cancel refused in the words of YunExpress's own trouble is no answer about the waybill:
    as a refusal it would hold the order void_refused ("the parcel may be on its way")."""
    if mentions(words, CARRIER_TROUBLE_WORDS):
        raise TransientCarrierError(f"YunExpress {op}: {words} (Code {code}); to be asked again",
                                    code=code, carrier=CARRIER)


# -- Tracking/GetTrackInfo ------------------------------------------------------------------


def classify_event(content: str) -> TrackingStatus:
    """A tracking event's status from its free text (English or Chinese); ``UNKNOWN`` when no
    rule knows the words (as the DHL and China Post plugins do): a guess of "in transit" would count
    as a carrier scan."""
    for status, words in _EVENT_RULES:
        if mentions(content, words):
            if status is TrackingStatus.DELIVERED and mentions(content, _HANDOVER_WORDS):
                return TrackingStatus.IN_TRANSIT
            return status
    return TrackingStatus.UNKNOWN


def english_text(content: str, status: TrackingStatus) -> str:
    """The English of an event: the text itself when it has no Chinese, its English part when it
    mixes both ("云途深圳仓已收货 Received by YunExpress": a phrase of two words or more), else the
    English of its status."""
    if not content:
        return ""
    if not _CJK.search(content):
        return content
    latin = " ".join(_CJK.sub(" ", content).split()).strip(" -/|:;,.()[]")
    if len(re.findall(r"[A-Za-z]{2,}", latin)) >= 2:  # a phrase, not a name or a code
        return latin
    return ENGLISH_BY_STATUS.get(status, "")


def parse_process_date(value: Any, utc_offset_hours: float) -> datetime:
    """``ProcessDate`` ("YYYY-MM-DDTHH:MM:SS", no zone) as an aware UTC datetime."""
    return in_utc(iso_time(value), utc_offset_hours)


def parse_track_info(data: Any, number: str, *, utc_offset_hours: float = 8.0) -> TrackingInfo:
    """``Tracking/GetTrackInfo`` for one number. Unknown to the carrier -> status UNKNOWN, no events;
    an answer in the words of YunExpress's own trouble ("系统繁忙") -> ``TransientCarrierError``.
    While the PackageState says the parcel is not scanned (:data:`UNSCANNED_PACKAGE_STATES`), an
    event that reads like a scan is UNKNOWN: the engine counts no scan before YunExpress has one."""
    op = "GetTrackInfo"
    code, message = envelope(data, op)
    item = data.get("Item")
    if code != OK and mentions(message, CARRIER_TROUBLE_WORDS):
        # YunExpress's own trouble says nothing of the parcel: not "unknown", asked again later
        raise _refusal(op, code, message)
    if code != OK or item is None:
        return TrackingInfo(tracking_number=number, status=TrackingStatus.UNKNOWN)
    if not isinstance(item, dict):
        raise _fail(op, f"field 'Item' should be an object, got {type(item).__name__}")
    state = _int(item.get("PackageState"))
    if state is None:
        raise _fail(op, "field 'Item.PackageState' is missing or not a number "
                        f"(got {item.get('PackageState')!r})")
    try:
        details = objects(item.get("OrderTrackingDetails") or None, "Item.OrderTrackingDetails")
    except ValueError as exc:
        raise _fail(op, str(exc)) from None
    events = []
    for i, detail in enumerate(details):
        try:
            when = parse_process_date(detail.get("ProcessDate"), utc_offset_hours)
        except ValueError:
            raise _fail(op, f"field 'Item.OrderTrackingDetails[{i}].ProcessDate' is not a date "
                            f"(got {detail.get('ProcessDate')!r})") from None
        content = _text(detail.get("ProcessContent")) or _text(detail.get("TrackCodeDescription"))
        places = (_text(detail.get(k)) for k in ("ProcessCity", "ProcessProvince", "ProcessCountry"))
        location = _text(detail.get("ProcessLocation")) or ", ".join(p for p in places if p)
        node = _text(detail.get("TrackNodeCode")) or _text(detail.get("TrackingStatus"))
        status = classify_event(content)
        if state in UNSCANNED_PACKAGE_STATES and status not in _NO_SCAN:
            status = TrackingStatus.UNKNOWN  # words of a scan, but YunExpress says it has not scanned it
        events.append(TrackingEvent(time=when, status=status, description=content, location=location,
                                    code=node, description_en=english_text(content, status)))
    events.sort(key=lambda e: e.time)
    return TrackingInfo(tracking_number=number, status=current_status(state, events), events=tuple(events))


def package_state(data: Any, waybill: str) -> int | None:
    """``Item.PackageState`` of a ``Tracking/GetTrackInfo`` answer for ``waybill``; None when
    YunExpress has no tracking for it, the answer has no state, or it is about another waybill."""
    code, _message = envelope(data, "GetTrackInfo")
    item = data.get("Item") if code == OK else None
    if not isinstance(item, dict) or _text(item.get("WaybillNumber")).upper() != waybill.strip().upper():
        return None
    return _int(item.get("PackageState"))


def current_status(state: int, events: list[TrackingEvent]) -> TrackingStatus:
    """The parcel's status now: PackageState when it is final (delivered, returned, cancelled),
    says "submitted" (1: no scan yet, whatever the events' words) or nothing more precise is known;
    else the newest event's, which says more than the coarse PackageState (2 "in transit" covers
    customs, out for delivery and the way back; 6 "delivery failed" the return that follows). An
    unknown PackageState is schema drift, not garbage: the events decide, or UNKNOWN."""
    status = PACKAGE_STATES.get(state, TrackingStatus.UNKNOWN)
    if status in _FINAL or status is TrackingStatus.PENDING or not events:
        return status
    last = events[-1].status
    if last is TrackingStatus.PENDING and status is not TrackingStatus.UNKNOWN:
        return status  # e.g. a late "information received" notice after the first scan
    return last


# -- Freight/GetPriceTrial and Common/GetShippingMethods -------------------------------------


def build_price_trial_params(request: ShipmentRequest, *, package_type_param: str = "PackageType",
                             origin: str = "") -> dict[str, str]:
    parcel = request.parcel
    params = {
        "CountryCode": request.ship_to.country_code.upper(),
        "Weight": f"{kilograms(parcel.weight_g):.3f}",
        "Length": str(centimetres(parcel.length_cm)),
        "Width": str(centimetres(parcel.width_cm)),
        "Height": str(centimetres(parcel.height_cm)),
        package_type_param: "1" if parcel.has_battery else "0",
    }
    if origin:
        params["Origin"] = origin
    return params


def parse_price_trial(data: Any, *, services: Iterable[str] = (),
                      tracking_levels: dict[str, str] | None = None,
                      default_currency: str = "CNY") -> list[Quote]:
    """Quotes for the offered ``services`` (all when empty). ``Items: null`` means no service.

    Breakdown: ``handling_fee`` is the item's ``RegistrationFee`` (挂号费, the fixed per-parcel
    fee; ``ShippingFee`` + ``FuelFee`` are the weight charge), none when absent or unreadable.
    ``chargeable_weight_g`` comes from a ``ChargeWeight`` (kg) only if the item has one: the field
    is in GetShippingFeeDetail and GetOrder answers, not in any captured price trial (UNVERIFIED
    there), so it is normally none."""
    op = "GetPriceTrial"
    wanted = set(services)
    levels = tracking_levels or {}
    quotes = []
    for i, item in enumerate(_items(data, op)):
        service = _text(item.get("Code"))
        if not service:
            raise _fail(op, f"field 'Items[{i}].Code' is missing")
        if wanted and service not in wanted:
            continue
        total = _decimal(item.get("TotalFee"))
        if total is None:
            raise _fail(op, f"field 'Items[{i}].TotalFee' is missing or not a number "
                            f"(got {item.get('TotalFee')!r})")
        currency = _currency(item.get("Currency"), default_currency)
        if currency is None:
            raise _fail(op, f"field 'Items[{i}].Currency' is not a currency code "
                            f"(got {item.get('Currency')!r})")
        registration = _decimal(item.get("RegistrationFee"))
        quotes.append(Quote(carrier=CARRIER, service=service, price=Money(total, currency),
                            transit_days=transit_days(item.get("DeliveryDays")),
                            tracking_level=levels.get(service, ""),
                            handling_fee=Money(registration, currency) if registration is not None else None,
                            chargeable_weight_g=_grams(item.get("ChargeWeight"))))
    return quotes


def _grams(kg: Any) -> int | None:
    """Kilograms (a number or numeric text, > 0) in whole grams, half up; ``None`` otherwise."""
    value = _decimal(kg)
    if value is None or value <= 0:
        return None
    return int((value * 1000).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    name_en: str
    name_cn: str
    has_tracking_number: bool
    display_name: str = ""


def parse_shipping_methods(data: Any) -> list[ShippingMethod]:
    op = "GetShippingMethods"
    methods = []
    for i, item in enumerate(_items(data, op)):
        if not _text(item.get("Code")):
            raise _fail(op, f"field 'Items[{i}].Code' is missing")
        methods.append(ShippingMethod(code=_text(item["Code"]),
                                      name_en=" ".join(_text(item.get("EName")).split()),
                                      name_cn=_text(item.get("CName")),
                                      has_tracking_number=bool(item.get("HasTrackingNumber")),
                                      display_name=_text(item.get("DisplayName"))))
    return methods
