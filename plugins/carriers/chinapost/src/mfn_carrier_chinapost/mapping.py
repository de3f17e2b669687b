"""Pure request building and answer parsing for the China Post small-packet (pcpErp) API and the
legacy EUB tracking API (no I/O here).

China Post publishes no open documentation for either API: the shapes are what several open-source
integrations send and read (see the plugin README). Every parser takes the decoded answer and
returns plain values or model objects, or raises:

* :class:`TransientCarrierError` -- the answer is malformed or not what the API documents (the
  message names the field); the outcome of the call is unknown, the engine reconciles;
* :class:`PermanentCarrierError` -- the carrier refused (its ``msg``/``message`` is the message,
  its ``reason``/``err_code`` the code), or the credentials are wrong;
* :class:`DuplicateReferenceError` -- the ``logistics_order_no`` is already taken.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connector.kit import Money, Shipment, TrackingEvent, TrackingInfo, TrackingStatus
from connector.kit.carrier import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.kit.values import (
    CARRIER_TROUBLE_WORDS,
    cents,
    in_utc,
    issued_number,
    looks_like_pdf,
    mentions,
    objects,
    says_cancelled,
    says_not_found,
    tracking_or_error,
)
from connector.kit.values import currency as _currency
from connector.kit.values import decimal as _decimal
from connector.kit.values import text as _text
from connector.kit.values import whole_centimetres as centimetres

from .classify import classify, english, overall_status

if TYPE_CHECKING:
    from connector.kit import Address, ShipmentRequest

CARRIER = "chinapost"
CHINA_TIME = timezone(timedelta(hours=8))
MSG_TYPE = "B2C_TRADE"

# Words in an error message that mean the credentials (ecCompanyId, key, token) are wrong.
AUTH_FAILURE_WORDS = ("签名", "验签", "digest", "eccompanyid", "认证", "授权", "authenticat", "unauthori",
                      "密钥", "客户号不存在", "invalid token", "token invalid", "token无效")
# Words that mean "no such order / no such mail number".
NOT_FOUND_WORDS = ("不存在", "未找到", "查询不到", "未查询到", "无此", "无轨迹", "暂无", "not exist",
                   "not found", "no record", "no information", "no such", "unknown mail")
# Words in a fee-lookup refusal that mean "not accepted (scanned) yet": no fee to report.
NOT_ACCEPTED_WORDS = ("未收寄", "尚未收寄", "not yet accepted", "not accepted")
# The encoding an XML declaration names ("<?xml version="1.0" encoding="GBK"?>").
_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


# -- small helpers -------------------------------------------------------------------------


def _fail(op: str, message: str) -> TransientCarrierError:
    return TransientCarrierError(f"China Post {op}: {message}", code="malformed", carrier=CARRIER)


def _waybill(entry: dict[str, Any], op: str, where: str = "") -> str:
    """The entry's ``waybillNo`` (or ``waybill_no``) as text; one of the wrong JSON type (a list,
    a boolean, ...) is malformed, never read as a number ("[]", "True")."""
    try:
        return (issued_number(entry.get("waybillNo"), f"{where}waybillNo")
                or issued_number(entry.get("waybill_no"), f"{where}waybill_no"))
    except ValueError as exc:
        raise _fail(op, str(exc)) from None


def flag(value: Any) -> bool | None:
    """``true``/``"true"``/``1`` -> True, ``false``/``"false"``/``0`` -> False, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = _text(value).lower()
    if text in ("true", "1", "yes", "success"):
        return True
    if text in ("false", "0", "no", "fail", "failure"):
        return False
    return None


def _flag(data: Any, op: str, name: str) -> bool:
    """``data[name]`` as true/false (:func:`flag`), ``data`` being the answer's JSON object."""
    if not isinstance(data, dict):
        raise _fail(op, f"answer is not a JSON object (got {type(data).__name__})")
    if name not in data:
        raise _fail(op, f"field {name!r} is missing from the answer")
    ok = flag(data[name])
    if ok is None:
        raise _fail(op, f"field {name!r} is not true/false (got {data[name]!r})")
    return ok


def credentials_error(detail: str = "") -> PermanentCarrierError:
    message = "China Post rejected the credentials (check ec_company_id, key and tracking_token)"
    return PermanentCarrierError(message + (f": {detail}" if detail else ""), code="auth", carrier=CARRIER)


def is_auth_failure(message: str) -> bool:
    return mentions(message, AUTH_FAILURE_WORDS)


# -- the digest ----------------------------------------------------------------------------


def digest(content: str, key: str, encoding: str = "raw") -> str:
    """``base64(MD5(content + key))``: of the 16 raw bytes (``raw``, what most integrations do) or
    of the 32-character hex text (``hex``, what one Go client does; UNVERIFIED which the server
    wants)."""
    md5 = hashlib.md5((content + key).encode("utf-8"))
    raw = md5.hexdigest().encode("ascii") if encoding == "hex" else md5.digest()
    return base64.b64encode(raw).decode("ascii")


def to_json(obj: Any) -> str:
    """The exact text that is sent and signed: compact, UTF-8 characters kept (not ``\\u`` escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# -- create: orderService/OrderReceiveBack --------------------------------------------------


def _party(address: Address) -> dict[str, str]:
    street = " ".join(p for p in (address.line1, address.line2, address.line3) if p.strip())
    return {
        "name": address.name,
        "company": address.company,
        "post_code": address.postal_code,
        "phone": address.phone,
        "mobile": address.phone,
        "email": address.email,
        "nation": address.country_code.upper(),
        "province": address.state,
        "city": address.city,
        "county": address.district,
        "address": street,
        "linker": address.name,
    }


def build_order(request: ShipmentRequest, *, biz_product_no: str, sender_no: str, now: datetime,
                mail_type: str = "", wh_code: str = "", declare_currency: str = "USD",
                ioss_field: str = "s_tax_id", undelivery_option: int = 2) -> dict[str, Any]:
    """The ``logistics_interface`` object of ``OrderReceiveBack`` for one package.

    ``logistics_order_no`` is ``request.reference``, our idempotency key. Weights are grams,
    values are unit values in ``declare_currency`` (customs lines in another currency are refused
    here rather than converted behind the seller's back).
    """
    parcel = request.parcel
    items, total_value, total_weight = [], Decimal(0), 0
    for line in parcel.contents:
        if line.unit_value.currency != declare_currency:
            raise PermanentCarrierError(
                f"China Post: the declared value of SKU {line.sku} is in {line.unit_value.currency}; "
                f"declarations must be in {declare_currency} (declare_currency)",
                code="currency", carrier=CARRIER)
        total_value += line.unit_value.amount * line.quantity
        total_weight += line.unit_weight_g * line.quantity
        items.append({
            "cargo_no": line.sku,
            "cargo_name": line.name_cn,
            "cargo_name_en": line.name_en,
            "cargo_type_name": line.name_cn,
            "cargo_type_name_en": line.name_en,
            "cargo_origin_name": line.origin_country,
            "cargo_link": "",
            "cargo_quantity": line.quantity,
            "cargo_value": cents(line.unit_value.amount),
            "cost": cents(line.unit_value.amount),
            "cargo_currency": declare_currency,
            "carogo_weight": line.unit_weight_g,  # sic: the API's spelling
            "cargo_description": line.name_en,
            "cargo_serial": line.hs_code,
            "unit": "个",
        })
    order: dict[str, Any] = {
        "created_time": now.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
        "sender_no": sender_no,
        "mailType": mail_type,
        "wh_code": wh_code,
        "logistics_order_no": request.reference,
        "batch_no": "",
        "biz_product_no": biz_product_no,
        "weight": int(parcel.weight_g),  # grams; 0 is sent as 0 for the carrier to refuse
        "length": centimetres(parcel.length_cm),
        "width": centimetres(parcel.width_cm),
        "height": centimetres(parcel.height_cm),
        "contents_total_weight": total_weight,
        "contents_total_value": cents(total_value),
        "battery_flag": "1" if parcel.has_battery else "0",
        "insurance_flag": "1",
        "undelivery_option": undelivery_option,
        "valuable_flag": "0",
        "declare_source": "2",   # 2: declared by the company
        "declare_type": "1",     # 1: articles
        "declare_curr_code": declare_currency,
        "forecastshut": "0",
        "mail_sign": "2",        # not a 9610 shipment
        "sender": _party(request.ship_from),
        "receiver": _party(request.ship_to),
        "items": items,
    }
    if request.ioss_number and ioss_field != "none":
        order[ioss_field] = request.ioss_number
        order["prepayment_of_vat"] = "0"  # 0: IOSS
    return order


def create_form(payload: str, *, key: str, ec_company_id: str, biz_product_no: str,
                encoding: str = "raw") -> dict[str, str]:
    return {
        "logistics_interface": payload,
        "data_digest": digest(payload, key, encoding),
        "msg_type": MSG_TYPE,
        "ecCompanyId": ec_company_id,
        "data_type": "JSON",
        "biz_product_no": biz_product_no,
    }


def _create_result(data: Any, op: str) -> dict[str, Any]:
    """The result object: top level in JSON mode, or ``responseItems.response[0]`` (XML-mode shape)."""
    if not isinstance(data, dict):
        raise _fail(op, f"answer is not a JSON object (got {type(data).__name__})")
    if "success" in data:
        return data
    items = data.get("responseItems")
    if isinstance(items, dict):
        items = items.get("response", items)
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    if isinstance(items, dict) and "success" in items:
        return items
    raise _fail(op, "field 'success' is missing from the answer")


def parse_create(data: Any, reference: str, *, duplicate_keywords: Iterable[str] = (),
                 duplicate_codes: Iterable[str] = ()) -> str:
    """The waybill number (the S10 mail number) created for ``reference``, or the refusal."""
    op = "OrderReceiveBack"
    result = _create_result(data, op)
    ok = flag(result.get("success"))
    if ok is None:
        raise _fail(op, f"field 'success' is not true/false (got {result.get('success')!r})")
    reason = _text(result.get("reason"))
    message = _text(result.get("msg")) or _text(result.get("message"))
    if ok:
        waybill = _waybill(result, op)
        if not waybill:
            raise _fail(op, "field 'waybillNo' is missing or empty although success is true")
        return waybill
    text = message or reason
    if reason in set(duplicate_codes) or mentions(text, duplicate_keywords):
        raise DuplicateReferenceError(
            f"China Post already holds logistics_order_no {reference}: {text}"
            + (f" (reason {reason})" if reason else ""), code=reason or "duplicate", carrier=CARRIER)
    if is_auth_failure(text):
        raise credentials_error(text)
    if mentions(text, CARRIER_TROUBLE_WORDS):  # China Post's own trouble, no answer about the order
        raise TransientCarrierError(
            f"China Post OrderReceiveBack for {reference}: {text}" + (f" (reason {reason})" if reason else "")
            + "; the call may have taken effect", code=reason or "error", carrier=CARRIER)
    raise PermanentCarrierError(
        f"China Post refused logistics_order_no {reference}: {text or 'no message'}"
        + (f" (reason {reason})" if reason and reason != text else ""), code=reason or "rejected",
        carrier=CARRIER)


# -- lookup by logistics_order_no (reconciliation; UNVERIFIED endpoint) ----------------------


@dataclass(frozen=True)
class OrderRecord:
    reference: str
    waybill: str
    biz_product_no: str = ""
    status: str = ""  # created | accepted | cancelled (as the lookup reports it)

    @property
    def cancelled(self) -> bool:
        return self.status.lower() in ("cancelled", "canceled", "撤单", "已撤单", "deleted")


def query_form(reference: str, *, key: str, ec_company_id: str, encoding: str = "raw") -> dict[str, str]:
    return {"logistics_order_no": reference, "ecCompanyId": ec_company_id,
            "dataDigest": digest(reference, key, encoding)}


def _envelope(data: Any, op: str) -> tuple[bool, str, str]:
    """The ``{return_success, data, return_msg, return_reason}`` envelope: (ok, msg, reason)."""
    ok = _flag(data, op, "return_success")
    return ok, _text(data.get("return_msg")), _text(data.get("return_reason"))


def _entries(data: dict[str, Any], op: str) -> list[dict[str, Any]]:
    """The envelope's ``data``: a list of objects, one object, or nothing (``null`` or "")."""
    entries = data.get("data")
    if isinstance(entries, dict):
        entries = [entries]
    try:
        return objects(None if entries == "" else entries, "data")
    except ValueError as exc:
        raise _fail(op, str(exc)) from None


def parse_query(data: Any, reference: str) -> list[OrderRecord]:
    """Every order China Post holds under ``reference`` (oldest first); ``[]`` when none: a
    successful answer without orders, or a refusal that says the order does not exist
    (``says_not_found``: "订单不存在"). Any other refusal raises, whatever its words: "接口不存在"
    (no such interface), "服务不存在" or "ecCompanyId不存在" say the lookup did not look, and an
    empty answer to it would make the engine buy a second label."""
    op = "order query"
    ok, message, reason = _envelope(data, op)
    if not ok:
        if says_not_found(message, NOT_FOUND_WORDS):
            return []
        if is_auth_failure(message):
            raise credentials_error(message)
        if mentions(message, CARRIER_TROUBLE_WORDS):  # no answer about the order: ask again
            raise TransientCarrierError(f"China Post order query for {reference}: {message}; to be "
                                        "asked again", code=reason or "error", carrier=CARRIER)
        raise PermanentCarrierError(f"China Post order query for {reference} refused: "
                                    f"{message or 'no message'}", code=reason or "rejected", carrier=CARRIER)
    records = []
    for i, entry in enumerate(_entries(data, op)):
        ref = _text(entry.get("logistics_order_no"))
        if ref and ref != reference:
            raise _fail(op, f"field 'data[{i}].logistics_order_no' is {ref!r}, "
                            f"not the reference {reference!r}")
        waybill = _waybill(entry, op, f"data[{i}].")
        if not waybill:
            raise _fail(op, f"field 'data[{i}].waybillNo' is missing or empty")
        records.append(OrderRecord(reference=reference, waybill=waybill,
                                   biz_product_no=_text(entry.get("biz_product_no")),
                                   status=_text(entry.get("status"))))
    return records


def live_shipment(records: list[OrderRecord], reference: str, services_by_product: dict[str, str]) -> \
        Shipment | None:
    """The newest not-cancelled order as a Shipment (the S10 waybill is the tracking number)."""
    live = [r for r in records if not r.cancelled]
    if not live:
        return None
    record = live[-1]
    return shipment(reference, record.waybill, services_by_product.get(record.biz_product_no, ""))


def shipment(reference: str, waybill: str, service: str) -> Shipment:
    """Our shipment under ``reference``; its S10 waybill is the tracking number."""
    return Shipment(carrier=CARRIER, reference=reference, carrier_shipment_id=waybill,
                    tracking_number=waybill, service=service, status="created")


# -- label: surface/download -----------------------------------------------------------------


def label_form(barcodes: list[str], *, key: str, ec_company_id: str, version: str = "1.0",
               encoding: str = "raw") -> dict[str, str]:
    joined = ",".join(barcodes)
    return {"ecCompanyId": ec_company_id, "dataDigest": digest(joined, key, encoding), "barCode": joined,
            "version": version}


def label_refusal(data: Any, barcodes: str) -> PermanentCarrierError | TransientCarrierError:
    """The error a non-PDF ``surface/download`` answer stands for."""
    op = "surface/download"
    if not isinstance(data, dict):
        return _fail(op, f"answer is neither a PDF nor a JSON object (got {type(data).__name__})")
    message = _text(data.get("msg")) or _text(data.get("message"))
    code = _text(data.get("err_code")) or _text(data.get("reason"))
    if is_auth_failure(message):
        return credentials_error(message)
    if not message and not code:
        return _fail(op, "answer is not a PDF and carries no 'msg' or 'err_code'")
    if mentions(message, CARRIER_TROUBLE_WORDS):  # no answer about the label: ask again
        return TransientCarrierError(f"China Post {op} for {barcodes}: {message}; to be asked again",
                                     code=code or "error", carrier=CARRIER)
    return PermanentCarrierError(f"China Post cannot print the label for {barcodes}: {message or code}",
                                 code=code or "label", carrier=CARRIER)


def parse_label_v2(data: Any, barcodes: str) -> bytes:
    """Version 2.0: ``{success, data: <PDF as hex>, digest, msg, err_code}``."""
    op = "surface/download"
    if not isinstance(data, dict) or "success" not in data:
        raise _fail(op, "field 'success' is missing from the answer")
    if not flag(data.get("success")):
        raise label_refusal(data, barcodes)
    hex_text = _text(data.get("data"))
    if not hex_text:
        raise _fail(op, "field 'data' (the label as hex) is missing or empty")
    try:
        pdf = bytes.fromhex(hex_text)
    except ValueError:
        try:  # some answers carry base64 instead of hex
            pdf = base64.b64decode(hex_text, validate=True)
        except (binascii.Error, ValueError):
            raise _fail(op, "field 'data' is neither hex nor base64") from None
    if not looks_like_pdf(pdf):
        raise _fail(op, f"field 'data' is not a complete PDF ({len(pdf)} bytes)")
    return pdf


# -- cancel: orderService/cancelOrder ----------------------------------------------------------


def cancel_form(waybill: str, *, sender_no: str, key: str, encoding: str = "raw") -> dict[str, str]:
    return {"waybillNo": waybill, "senderNo": sender_no, "digest": digest(waybill, key, encoding)}


def parse_cancel(data: Any, waybill: str, *, already_cancelled: Iterable[str] = ()) -> bool:
    """True when cancelled, now or before (a refusal whose message has one of
    ``already_cancelled``, checked only once it is not a credentials failure); ``{flag: false,
    message}`` in the words of China Post's own trouble is transient (it says nothing about the
    waybill: asked again later); otherwise a refusal (e.g. already accepted)."""
    op = "cancelOrder"
    if _flag(data, op, "flag"):
        return True
    message = _text(data.get("message")) or _text(data.get("msg"))
    if is_auth_failure(message):
        raise credentials_error(message)
    if mentions(message, CARRIER_TROUBLE_WORDS):  # a refusal holds the order: "parcel on its way"
        raise TransientCarrierError(f"China Post {op} for {waybill}: {message}; to be asked again",
                                    code="error", carrier=CARRIER)
    if says_cancelled(message, already_cancelled):
        return True
    raise PermanentCarrierError(f"China Post refused to cancel {waybill}: {message or 'no message'}",
                                code="cancel_refused", carrier=CARRIER)


# -- fees after acceptance: orderFeeService/getOrderFee ---------------------------------------


@dataclass(frozen=True)
class OrderFee:
    waybill: str
    postage: Money
    weight_g: int | None = None


def fee_form(waybills: list[str], *, key: str, ec_company_id: str, encoding: str = "raw") -> dict[str, str]:
    joined = ",".join(waybills)
    return {"waybillNos": joined, "dataDigest": digest(joined, key, encoding), "ecCompanyId": ec_company_id}


def parse_fees(data: Any, *, default_currency: str = "CNY") -> dict[str, OrderFee]:
    """Fees of the waybills China Post has accepted; the others are absent (not yet scanned).

    The entry fields are UNVERIFIED: ``waybillNo``, ``postage_total`` (or ``fee``/``totalFee``),
    ``postage_currency`` (or ``currency``), ``weight`` in grams.
    """
    op = "getOrderFee"
    ok, message, reason = _envelope(data, op)
    if not ok:
        if mentions(message, NOT_ACCEPTED_WORDS) or mentions(message, NOT_FOUND_WORDS):
            return {}
        if is_auth_failure(message):
            raise credentials_error(message)
        raise PermanentCarrierError(f"China Post fee lookup refused: {message or 'no message'}",
                                    code=reason or "rejected", carrier=CARRIER)
    fees = {}
    for i, entry in enumerate(_entries(data, op)):
        waybill = _text(entry.get("waybillNo")) or _text(entry.get("waybill_no"))
        if not waybill:
            raise _fail(op, f"field 'data[{i}].waybillNo' is missing")
        raw = next((entry[k] for k in ("postage_total", "fee", "totalFee") if entry.get(k) is not None), None)
        amount = _decimal(raw)
        if amount is None:
            raise _fail(op, f"field 'data[{i}].postage_total' is missing or not a number (got {raw!r})")
        raw_currency = _text(entry.get("postage_currency")) or _text(entry.get("currency"))
        currency = _currency(raw_currency, default_currency)
        if currency is None:
            raise _fail(op, f"field 'data[{i}].postage_currency' is not a currency code "
                            f"(got {raw_currency!r})")
        weight = _decimal(entry.get("weight"))
        fees[waybill] = OrderFee(waybill=waybill, postage=Money(amount, currency),
                                 weight_g=int(weight) if weight is not None else None)
    return fees


# -- tracking: GET track/query/{cn|en}/{mailnum} (legacy EUB) ----------------------------------


def parse_accept_time(value: str, utc_offset_hours: float) -> datetime:
    """``acceptTime`` ("YYYY-MM-DD HH:MM:SS", no zone; or epoch milliseconds) as aware UTC."""
    text = _text(value)
    if re.fullmatch(r"\d{12,13}", text):
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    text = text.replace("/", "-").replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S.%f"):
        try:
            dt = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"not a date: {value!r}")
    return in_utc(dt, utc_offset_hours)


def _xml_root(body: bytes, op: str) -> ET.Element:
    """The answer's root element. expat reads no multi-byte encoding but UTF-8/16: an answer
    declared GBK (GB2312, GB18030...) is decoded by Python's codec and parsed as text."""
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise _fail(op, f"answer is not valid XML ({exc})") from None
    except ValueError as exc:  # "multi-byte encodings are not supported"
        declared = _XML_ENCODING.match(body)
        if declared is None:
            raise _fail(op, f"answer is not valid XML ({exc})") from None
        encoding = declared.group(1).decode("ascii")
    try:
        return ET.fromstring(body.decode(encoding))
    except (LookupError, UnicodeDecodeError) as exc:
        raise _fail(op, f"answer is not valid {encoding} XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise _fail(op, f"answer is not valid XML ({exc})") from None


def _xml_traces(body: bytes, op: str) -> tuple[list[dict[str, str]], str, str]:
    root = _xml_root(body, op)
    if root.tag.rpartition("}")[2].lower() == "html":  # a portal or proxy page, well-formed: no answer
        raise _fail(op, f"answer is an HTML page, not the tracking XML ({len(body)} bytes)")
    traces = [{child.tag: (child.text or "").strip() for child in trace} for trace in root.iter("trace")]
    return traces, _text(root.findtext(".//code")), _text(root.findtext(".//description"))


def _json_traces(body: bytes, op: str) -> tuple[list[dict[str, str]], str, str]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(op, f"answer is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise _fail(op, f"answer is not a JSON object (got {type(data).__name__})")
    traces = data.get("traces", data.get("trace"))
    if traces is None:
        traces = []
    if isinstance(traces, dict):
        traces = [traces]
    if not isinstance(traces, list) or not all(isinstance(t, dict) for t in traces):
        raise _fail(op, "field 'trace' should be a list of objects")
    return traces, _text(data.get("code")), _text(data.get("description"))


def parse_tracking(body: bytes, number: str, *, utc_offset_hours: float = 8.0) -> TrackingInfo:
    """One mail number's events, XML or JSON (told apart by the first character).

    An error answer (``code`` + ``description``) for an unknown number is status UNKNOWN without
    events; one about credentials is a permanent credentials error.
    """
    op = "track/query"
    head = body.removeprefix(codecs.BOM_UTF8).lstrip()[:1]  # both parsers read a UTF-8 BOM
    if head == b"<":
        traces, code, description = _xml_traces(body, op)
    elif head in (b"{", b"["):
        traces, code, description = _json_traces(body, op)
    else:
        raise _fail(op, f"answer is neither XML nor JSON ({len(body)} bytes)")
    if not traces:
        if is_auth_failure(description):
            raise credentials_error(f"code {code}: {description}")
        if (code or description) and not mentions(description, NOT_FOUND_WORDS):
            # Not "unknown number", not credentials: e.g. "system busy". Ask again later.
            raise TransientCarrierError(f"China Post tracking of {number}: {description or 'no description'} "
                                        f"(code {code or '-'})", code=code or "error", carrier=CARRIER)
        return TrackingInfo(tracking_number=number, status=TrackingStatus.UNKNOWN)
    # An answer that cannot be read raises above; a bad trace fails only this number in its batch.
    return tracking_or_error(number, _traced, traces, number, utc_offset_hours)


def _traced(traces: list[dict[str, Any]], number: str, utc_offset_hours: float) -> TrackingInfo:
    op = "track/query"
    events = []
    for i, trace in enumerate(traces):
        try:
            when = parse_accept_time(_text(trace.get("acceptTime")), utc_offset_hours)
        except ValueError:
            raise _fail(op, f"field 'trace[{i}].acceptTime' is not a date "
                            f"(got {trace.get('acceptTime')!r})") from None
        remark = _text(trace.get("remark"))
        status = classify(remark)
        events.append(TrackingEvent(time=when, status=status, description=remark,
                                    location=_text(trace.get("acceptAddress")),
                                    description_en=english(remark, status)))
    events.sort(key=lambda e: e.time)  # stable: same-second events keep the carrier's order
    return TrackingInfo(tracking_number=number, status=overall_status(e.status for e in events),
                        events=tuple(events))
