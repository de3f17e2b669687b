"""Settings of the ``carriers.yunexpress`` configuration section and the services the plugin offers.

Pure data and a resolver; no I/O. Every fact the reference pack marks UNVERIFIED
(``reference/carriers.md`` section 3.1) that changes what we send or how we read an answer is a
setting here, with the value the public sources point to as its default (see the README).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.carriers import ServiceSpec

# The Amazon lines first: they are what an MFN seller ships with (GetShippingMethods fixture).
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("AYPZXR", "Amazon Yuntu Global Tracked Line DDP", "fully_tracked",
                amazon_shipping_method="Amazon Yuntu Global Tracked Line DDP", allows_battery=True),
    ServiceSpec("AYUZXR", "Amazon Yuntu Global Tracked line DDU", "fully_tracked",
                amazon_shipping_method="Amazon Yuntu Global Tracked line DDU"),
    ServiceSpec("AYPZXU", "Amazon Yuntu Global Untracked Line DDP", "untracked",
                amazon_shipping_method="Amazon Yuntu Global Untracked Line DDP", allows_battery=True),
    ServiceSpec("THPHR", "YunExpress Registered Standard General", "tracked",
                amazon_shipping_method="YunExpress Registered Standard General"),
    ServiceSpec("ZXR", "YunExpress Global Line", "fully_tracked",
                amazon_shipping_method="YunExpress Global Line", allows_battery=True),
)

DEFAULT_SERVICES: tuple[str, ...] = ("AYPZXR", "AYUZXR", "AYPZXU")

DEFAULT_DUPLICATE_CODES: tuple[str, ...] = ("1001",)
DEFAULT_DUPLICATE_KEYWORDS: tuple[str, ...] = ("重复", "repeat", "exist")
DEFAULT_DELETE_SUCCESS_STATUSES: tuple[str, ...] = ("success", "5012")

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "carriers.yunexpress",
    "description": "YunExpress (云途) OMS API. Facts marked UNVERIFIED in the plugin README are settings.",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "customer_code", "api_secret"],
    "properties": {
        "base_url": {
            "type": "string", "minLength": 1, "pattern": "^https?://",
            "description": "OMS API root without /api, e.g. http://oms.api.yunexpress.com "
                           "(UAT: http://omsapi.uat.yunexpress.com; sandbox: ${MFN_SANDBOX_YUNEXPRESS})",
        },
        "customer_code": {"type": "string", "minLength": 1, "description": "CustomerCode, e.g. C12345"},
        "api_secret": {"type": "string", "minLength": 1, "x-secret": True,
                       "description": "ApiSecret; sent only inside the Basic auth header, never logged"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                            "description": "read timeout of every call"},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        "services": {
            "type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "minItems": 1,
            "default": list(DEFAULT_SERVICES),
            "description": "ShippingMethodCodes to offer in quotes (default: the Amazon lines)",
        },
        "language": {"type": "string", "default": "en-us",
                     "description": "Accept-Language header (carrier messages in English)"},
        "tracking_number_source": {
            "enum": ["TrackingNumber", "WayBillNumber"], "default": "TrackingNumber",
            "description": "UNVERIFIED: which YunExpress number is the one Amazon tracks",
        },
        "label_request_format": {
            "enum": ["array", "object"], "default": "array",
            "description": "UNVERIFIED: Label/Print body as [numbers] or {\"OrderNumbers\": [numbers]}",
        },
        "duplicate_codes": {
            "type": "array", "items": {"type": "string"}, "default": list(DEFAULT_DUPLICATE_CODES),
            "description": "UNVERIFIED: envelope Codes meaning 'CustomerOrderNumber already used'",
        },
        "duplicate_keywords": {
            "type": "array", "items": {"type": "string", "minLength": 1},
            "default": list(DEFAULT_DUPLICATE_KEYWORDS),
            "description": "UNVERIFIED: Remark words meaning 'CustomerOrderNumber already used'",
        },
        "delete_success_statuses": {
            "type": "array", "items": {"type": "string"}, "default": list(DEFAULT_DELETE_SUCCESS_STATUSES),
            "description": "UNVERIFIED: WayBill/Delete Item.Status values meaning deleted",
        },
        "application_type": {
            "enum": [1, 2, 3, 4], "default": 4,
            "description": "CreateOrder ApplicationType: 1 gift, 2 sample, 3 documents, 4 other (goods sold)",
        },
        "price_trial_package_type_param": {
            "type": "string", "minLength": 1, "default": "PackageType",
            "description": "UNVERIFIED: GetPriceTrial parameter for 1 battery / 0 general goods",
        },
        "price_trial_origin": {"type": "string",
                               "description": "GetPriceTrial Origin (carrier default YT-SZ)"},
        "quote_currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "CNY",
                           "description": "currency of quotes whose Items carry no Currency"},
        "tracking_utc_offset_hours": {
            "type": "number", "minimum": -12, "maximum": 14, "default": 8,
            "description": "UNVERIFIED: UTC offset of tracking ProcessDate values (no zone in the answer)",
        },
        "max_requests_per_second": {
            "type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
            "description": "UNVERIFIED rate limit (none documented): pace calls client-side; null = off",
        },
    },
}


@dataclass(frozen=True)
class YunExpressSettings:
    """The section with defaults applied. ``api_secret`` is kept out of ``repr``."""

    base_url: str
    customer_code: str
    api_secret: str
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    services: tuple[str, ...] = DEFAULT_SERVICES
    language: str = "en-us"
    tracking_number_source: str = "TrackingNumber"
    label_request_format: str = "array"
    duplicate_codes: tuple[str, ...] = DEFAULT_DUPLICATE_CODES
    duplicate_keywords: tuple[str, ...] = DEFAULT_DUPLICATE_KEYWORDS
    delete_success_statuses: tuple[str, ...] = DEFAULT_DELETE_SUCCESS_STATUSES
    application_type: int = 4
    price_trial_package_type_param: str = "PackageType"
    price_trial_origin: str = ""
    quote_currency: str = "CNY"
    tracking_utc_offset_hours: float = 8.0
    max_requests_per_second: float | None = None

    def __repr__(self) -> str:
        return (f"YunExpressSettings(base_url={self.base_url!r}, customer_code={self.customer_code!r}, "
                f"api_secret='***')")

    @property
    def api_root(self) -> str:
        """``base_url`` normalised to end in ``/api`` (accepts it with or without)."""
        root = self.base_url.rstrip("/")
        return root if root.lower().endswith("/api") else root + "/api"

    @property
    def timeouts(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.timeout_seconds)

    @property
    def use_waybill_as_tracking(self) -> bool:
        return self.tracking_number_source == "WayBillNumber"


_TUPLES = ("services", "duplicate_codes", "duplicate_keywords", "delete_success_statuses")
_NUMBERS = ("timeout_seconds", "connect_timeout_seconds", "tracking_utc_offset_hours")


def resolve_settings(section: dict[str, Any]) -> YunExpressSettings:
    """Apply defaults to a ``carriers.yunexpress`` section and check what the client cannot do without.

    The configuration loader validates the section against :data:`SETTINGS_SCHEMA` with
    path-precise errors; this check only guards direct construction (tests, scripts).
    """
    if not isinstance(section, dict):
        raise ValueError("carriers.yunexpress: expected a mapping of settings")
    missing = [k for k in SETTINGS_SCHEMA["required"] if not str(section.get(k) or "").strip()]
    if missing:
        raise ValueError("carriers.yunexpress: missing required setting(s): " + ", ".join(missing))
    known = SETTINGS_SCHEMA["properties"]
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError("carriers.yunexpress: unknown setting(s): " + ", ".join(unknown))
    values: dict[str, Any] = {}
    for key, value in section.items():
        if value is None and key != "max_requests_per_second":
            continue
        if key in _TUPLES:
            value = tuple(str(v) for v in value)
        elif key in _NUMBERS:
            value = float(value)
        elif key == "max_requests_per_second":
            value = float(value) if value else None
        elif key == "application_type":
            value = int(value)
        else:
            value = str(value)
        values[key] = value
    return YunExpressSettings(**values)
