"""Pure helpers for mapping code: lenient readers of carrier answers, units, batches, PDFs, times.

Carrier APIs send numbers as strings, strings with spaces, ``null`` for empty; these readers
never raise on such input, they answer ``None`` (or ``""``) and let the mapping decide. Where an
answer's shape is wrong rather than loose (:func:`objects`, :func:`issued_number`,
:func:`iso_time`), a ``ValueError`` says what, and the mapping reports it as a malformed answer;
:func:`tracking_or_error` keeps one parcel's malformed tracking to that parcel. Beside them: the
schema of the settings that tell a mapping how to read (:func:`keywords_setting`, :func:`utc_offset_setting`),
which lookup refusal may mean "no such order" (:func:`says_not_found`) and what a create the carrier
refused as a duplicate stands for (:func:`existing_shipment`).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

from ..model import TrackingInfo, TrackingStatus
from .carrier import CarrierError, TransientCarrierError

if TYPE_CHECKING:
    from ..model import Shipment

T = TypeVar("T")

_INTEGER = re.compile(r"\s*-?\d+\s*")
_CURRENCY = re.compile(r"[A-Z]{3}")
_CURRENCY_ALIASES = {"RMB": "CNY", "YUAN": "CNY", "元": "CNY"}
_FRACTION = re.compile(r"(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)")


def text(value: Any) -> str:
    """``value`` as stripped text; ``None`` is ``""``."""
    return "" if value is None else str(value).strip()


def integer(value: Any) -> int | None:
    """An int from an int, a whole float or a digit string; ``None`` otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a number or numeric text; ``None`` otherwise (booleans included)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def kilograms(grams: int | Decimal) -> float:
    """Grams to kilograms rounded half-up to 3 decimals (the usual API precision)."""
    return float((Decimal(grams) / Decimal(1000)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def whole_centimetres(value: Decimal | int | float) -> int:
    """Whole centimetres, rounded up (APIs that take integers), at least 1."""
    return max(1, math.ceil(Decimal(str(value))))


def cents(amount: Decimal) -> float:
    """A money amount as a JSON number with two decimals, rounded half-up."""
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (a carrier's batch size), in order."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def looks_like_pdf(data: bytes) -> bool:
    """A whole PDF: the header at the start and the end-of-file marker near the end (a
    truncated download fails this)."""
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def objects(value: Any, field: str) -> list[dict[str, Any]]:
    """``value``, a JSON list of objects (``null`` for none), as a list. ``ValueError`` naming
    ``field`` when it is something else (``field 'Items' should be a list, got str``, ``field
    'Items[2]' is not an object``): the mapping reports it as a malformed answer."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"field {field!r} should be a list, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"field '{field}[{i}]' is not an object")
    return value


def issued_number(value: Any, field: str) -> str:
    """``value``, a number the carrier issued (waybill, tracking number), as stripped text; ``""``
    when absent or empty. Text or a JSON integer (some APIs send a digits-only number bare);
    anything else (a list, an object, a fraction, a boolean) is a ``ValueError`` naming ``field``
    (``field 'data.waybillNumber' should be text, got list``): as text it would be a wrong number
    ("[]", "True", "2.2e+17"), so the mapping reports it as a malformed answer."""
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return text(value)
    raise ValueError(f"field {field!r} should be text, got {type(value).__name__}")


def mentions(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``words``, ignoring case (a carrier message that says
    "duplicate", "not found", ...)."""
    low = text.lower()
    return any(word.lower() in low for word in words)


# Words of a carrier's own trouble (busy, system error, try later): a message with them is never
# read as an answer about the shipment itself, whatever else it says.
CARRIER_TROUBLE_WORDS = ("system error", "system busy", "internal error", "try again", "try later",
                         "timeout", "timed out", "系统异常", "系统错误", "系统繁忙", "稍后", "超时",
                         "服务异常")


def says_cancelled(text: str, words: Iterable[str]) -> bool:
    """Whether a carrier's refusal of a cancel says the label is cancelled already: one of
    ``words`` (a plugin's ``already_cancelled_keywords``), and no word of the carrier's own trouble
    (:data:`CARRIER_TROUBLE_WORDS`). Call it only after credentials failures are classified: a
    ``True`` makes the label VOIDED."""
    return mentions(text, words) and not mentions(text, CARRIER_TROUBLE_WORDS)


# What a lookup by reference asks about. A refusal that says one of these does not exist ("订单不存在",
# "waybill X does not exist") is an answer about the order.
ORDER_SUBJECT_WORDS = ("order", "waybill", "shipment", "parcel", "package", "mail", "consignment",
                       "reference", "tracking number", "订单", "运单", "单号", "邮件", "包裹", "快件")
# What else a refusal may say does not exist, or is wrong: the call itself (its interface, method,
# service, path), who makes it (user, customer, account, key, signature) or what it sends (a
# parameter, a channel). A lookup refused for one of them has not looked: "接口不存在" (no such
# interface), "method not exist", "用户不存在" (no such user), "ecCompanyId不存在".
OTHER_SUBJECT_WORDS = (
    "interface", "method", "service", "api", "endpoint", "path", "url", "route", "action", "resource",
    "controller", "user", "userid", "customer", "account", "client", "company", "eccompanyid", "merchant",
    "sender", "senderno", "app", "appid", "appkey", "key", "token", "secret", "sign", "signature",
    "permission", "parameter", "param", "field", "channel", "product", "warehouse",
    "接口", "方法", "服务", "用户", "客户", "账号", "账户", "帐号", "商户", "协议", "密钥", "签名", "应用",
    "权限", "参数", "字段", "渠道", "产品", "仓库", "路径")


def _names(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` names one of ``words``: a Latin-script word as a whole word, its plural
    too (``order`` is in ``orders`` and ``logistics_order_no``, not in ``border``); any other
    (Chinese) as a substring."""
    low = text.lower()
    for word in words:
        w = word.lower()
        if w.isascii():
            if re.search(rf"(?<![a-z0-9]){re.escape(w)}(?:e?s)?(?![a-z0-9])", low):
                return True
        elif w in low:
            return True
    return False


def says_not_found(text: str, words: Iterable[str]) -> bool:
    """Whether a lookup's refusal says that the order it looked up does not exist: one of ``words``
    (a plugin's "not found" words: "不存在", "not exist", ...), a word naming the order
    (:data:`ORDER_SUBJECT_WORDS`), and no word naming anything else
    (:data:`OTHER_SUBJECT_WORDS`) nor the carrier's own trouble (:data:`CARRIER_TROUBLE_WORDS`).

    Only such a refusal, or a successful answer listing no order, may make ``find_by_reference``
    answer ``None``: the engine buys again on ``None``, so a refusal of the lookup itself read as
    "no such order" (``接口不存在``, ``用户不存在``, ``method not exist``) buys a second label. Every
    other refusal raises."""
    return (mentions(text, words) and _names(text, ORDER_SUBJECT_WORDS)
            and not _names(text, OTHER_SUBJECT_WORDS) and not mentions(text, CARRIER_TROUBLE_WORDS))


def currency(value: Any, default: str = "") -> str | None:
    """An ISO 4217 code from a carrier's currency field (``RMB``, ``YUAN`` and ``元`` are ``CNY``;
    empty is ``default``); ``None`` when it is not a three-letter code."""
    code = (text(value) or default).upper()
    code = _CURRENCY_ALIASES.get(code, code)
    return code if _CURRENCY.fullmatch(code) else None


def transit_days(value: Any) -> int | None:
    """Days in transit from text like ``7``, ``"7-12"`` or ``"7~12 工作日"``: the largest number."""
    numbers = [int(n) for n in re.findall(r"\d+", text(value))]
    return max(numbers) if numbers else None


def url_with_path(url: str, path: str) -> str:
    """``url`` ending in ``path`` (e.g. ``/api``), whether it was configured with it or without."""
    root = url.rstrip("/")
    return root if root.lower().endswith(path.lower()) else root + path


# -- times ------------------------------------------------------------------------------------


def iso_time(value: Any) -> datetime:
    """A date-time as carriers write ISO 8601: a space or ``T`` between date and time, any number
    of fraction digits, ``Z`` or an offset or no zone at all (then the datetime is naive).
    ``ValueError`` when it is not one."""
    stamp = text(value).replace(" ", "T", 1)
    if not stamp:
        raise ValueError("empty")
    if stamp.endswith(("Z", "z")):
        stamp = stamp[:-1] + "+00:00"
    match = _FRACTION.fullmatch(stamp)
    if match:  # fromisoformat on 3.10 takes 3 or 6 fraction digits only
        stamp = match.group(1) + "." + (match.group(2) + "000000")[:6] + match.group(3)
    return datetime.fromisoformat(stamp)


def in_utc(moment: datetime, utc_offset_hours: float) -> datetime:
    """``moment`` in UTC; a naive one is local time ``utc_offset_hours`` east of UTC (the zone a
    carrier's answer leaves out). ``ValueError`` when it has no UTC time (before year 1 or after
    9999 there, e.g. .NET's "no date" ``0001-01-01T00:00:00`` east of UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(timedelta(hours=utc_offset_hours)))
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # .NET's "no date" 0001-01-01 east of UTC: a malformed date like any other
        raise ValueError(f"{moment.isoformat()} is out of range in UTC") from None


def utc_offset_setting(description: str, *, default: float = 8) -> dict[str, Any]:
    """Schema of a ``tracking_utc_offset_hours`` setting: the zone of answer times that carry
    none, for :func:`in_utc` (default UTC+8, China)."""
    return {"type": "number", "minimum": -12, "maximum": 14, "default": default, "description": description}


def tracking_or_error(number: str, read: Callable[..., TrackingInfo], *args: Any,
                      **kwargs: Any) -> TrackingInfo:
    """``read(*args, **kwargs)``: the mapping of one parcel's part of a tracking answer. When that part is
    malformed (a ``ValueError``, or the ``TransientCarrierError`` a mapping reports it as), a
    ``TrackingInfo`` for ``number`` whose ``error`` says what instead: the engine counts a failure
    for that parcel alone and stores the others of the batch. Wrap the mapping only, never the
    request: a carrier that cannot be reached fails the whole batch, as it should."""
    try:
        return read(*args, **kwargs)
    except (ValueError, TransientCarrierError) as exc:
        if isinstance(exc, CarrierError) and exc.credentials_refused:
            raise  # the account's, not this parcel's
        return TrackingInfo(tracking_number=number, status=TrackingStatus.UNKNOWN,
                            error=f"{type(exc).__name__}: {exc}")


# -- refusals ---------------------------------------------------------------------------------


def keywords_setting(default: Iterable[str], description: str) -> dict[str, Any]:
    """Schema of a list of words a carrier message is searched for (:func:`mentions`), e.g.
    ``duplicate_keywords``."""
    return {"type": "array", "items": {"type": "string", "minLength": 1}, "default": list(default),
            "description": description}


def empty_lookup_setting(description: str = "") -> dict[str, Any]:
    """Schema of an ``empty_lookup`` setting, for :attr:`Carrier.trusts_empty_lookup`: what an
    empty lookup by reference means after a call to buy a label lost its answer. ``buy``: no label
    exists, buy it (under the same reference); ``hold``: hold the order ``label_uncertain`` for a
    person, for a carrier whose lookup may not show a label just bought."""
    return {"enum": ["buy", "hold"], "default": "buy",
            "description": description or "after a buy call lost its answer, a lookup by reference that "
                                          "finds nothing: buy the label (buy) or hold label_uncertain (hold)"}


def existing_shipment(found: Shipment | None, duplicate: CarrierError, *, name: str, reference: str,
                      lookup: str) -> Shipment:
    """What a create the carrier refused as a duplicate of ``reference`` stands for: ``found``, the
    shipment the lookup by reference answered, which an earlier attempt made.

    The carrier says the reference is taken, so a lookup that finds nothing is not "no shipment":
    that raises a TransientCarrierError caused by ``duplicate`` (the engine asks again later),
    saying "``name`` refused ``reference`` as a duplicate but ``lookup``"."""
    if found is not None:
        return found
    raise TransientCarrierError(f"{name} refused {reference} as a duplicate but {lookup}",
                                code=duplicate.code, carrier=duplicate.carrier) from duplicate
