"""Settings of the ``carriers.chinapost`` configuration section and the services the plugin offers.

Pure data and a resolver; no I/O. Every fact the reference pack marks UNVERIFIED
(``reference/carriers.md`` §1) that changes what we send or how we read an answer is a setting
here, with the value the public sources point to as its default (see the README).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from connector.carriers import ServiceSpec
from connector.ratecard import RATE_CARD_SCHEMA

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("EUB", "China Post ePacket (E邮宝)", "tracked", amazon_shipping_method="ePacket",
                max_weight_g=2000),
    ServiceSpec("REGISTERED", "China Post Registered Air Mail (挂号小包)", "tracked",
                amazon_shipping_method="Registered Air Mail", max_weight_g=2000),
    ServiceSpec("EMS", "China Post EMS (国际特快专递)", "fully_tracked", amazon_shipping_method="EMS",
                max_weight_g=30000),
)

DEFAULT_SERVICES: tuple[str, ...] = ("EUB", "REGISTERED", "EMS")
# biz_product_no per service. 001/002 are what one integration sends (carriers.md §1.2, UNVERIFIED);
# EMS has no public source at all: 003 is a placeholder -- take the real code from your contract.
DEFAULT_BIZ_PRODUCT_CODES: dict[str, str] = {"EUB": "001", "REGISTERED": "002", "EMS": "003"}
DEFAULT_DUPLICATE_KEYWORDS: tuple[str, ...] = ("重复", "已存在", "duplicate", "already exist", "repeat")
DEFAULT_ORDER_QUERY_PATH = "orderService/queryOrder"
DEFAULT_TRACKING_VERSION = "international_eub_us_1.1"
EXAMPLE_RATE_CARD = "data/example_rate_card.csv"

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "carriers.chinapost",
    "description": "China Post / EMS small-packet (pcpErp) API and EUB tracking. Facts marked "
                   "UNVERIFIED in the plugin README are settings.",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "ec_company_id", "key"],
    "properties": {
        "base_url": {
            "type": "string", "minLength": 1, "pattern": "^https?://",
            "description": "pcpErp API root, e.g. https://my.ems.com.cn/pcpErp-web/a/pcp "
                           "(sandbox: ${MFN_SANDBOX_CHINAPOST})",
        },
        "tracking_base_url": {
            "type": "string", "minLength": 1, "pattern": "^https?://",
            "description": "root of GET track/query/{cn|en}/{mailnum}, e.g. "
                           "http://shipping.ems.com.cn/partner/api/public/p (default: base_url)",
        },
        "ec_company_id": {"type": "string", "minLength": 1,
                          "description": "ecCompanyId (customer id) from China Post"},
        "key": {"type": "string", "minLength": 1, "x-secret": True,
                "description": "digest key: signs every call, is never sent, never logged"},
        "sender_no": {"type": "string", "minLength": 1,
                      "description": "sender_no / senderNo (大客户代码); default: ec_company_id"},
        "tracking_token": {"type": "string", "minLength": 1, "x-secret": True,
                           "description": "authenticate header of the tracking API; needed for track()"},
        "mail_type": {"type": "string", "default": "",
                      "description": "mailType: the e-commerce/ERP identifier China Post registered for you"},
        "wh_code": {"type": "string", "default": "",
                    "description": "wh_code: the collecting post office (揽收机构) from your local office"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                            "description": "read timeout of every call"},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        "verify_tls": {"type": "boolean", "default": True,
                       "description": "check the server certificate (the IP test host is self-signed)"},
        "services": {
            "type": "array", "items": {"enum": [s.code for s in SERVICES]}, "uniqueItems": True,
            "minItems": 1, "default": list(DEFAULT_SERVICES),
            "description": "services to offer in quotes when the request names none",
        },
        "biz_product_codes": {
            "type": "object", "additionalProperties": {"type": "string", "minLength": 1},
            "propertyNames": {"enum": [s.code for s in SERVICES]},
            "default": dict(DEFAULT_BIZ_PRODUCT_CODES),
            "description": "UNVERIFIED: biz_product_no per service (EMS 003 is a placeholder)",
        },
        "rate_card": {
            **RATE_CARD_SCHEMA,
            "description": "quote rows (there is no rate API); default: the packaged EXAMPLE card "
                           "(example prices, not China Post's tariff)",
        },
        "declare_currency": {
            "type": "string", "pattern": "^[A-Z]{3}$", "default": "USD",
            "description": "declare_curr_code; customs lines in another currency are refused",
        },
        "digest_encoding": {
            "enum": ["raw", "hex"], "default": "raw",
            "description": "UNVERIFIED: base64 of the raw MD5 bytes (most clients) "
                           "or of its hex text (one Go client)",
        },
        "label_version": {
            "enum": ["1.0", "2.0"], "default": "1.0",
            "description": "surface/download version: 1.0 answers PDF bytes, 2.0 JSON with the PDF as hex",
        },
        "order_query_path": {
            "type": "string", "minLength": 1, "default": DEFAULT_ORDER_QUERY_PATH,
            "description": "UNVERIFIED: path of the lookup by logistics_order_no used for reconciliation",
        },
        "duplicate_keywords": {
            "type": "array", "items": {"type": "string", "minLength": 1},
            "default": list(DEFAULT_DUPLICATE_KEYWORDS),
            "description": "UNVERIFIED: msg words meaning 'logistics_order_no already used'",
        },
        "duplicate_codes": {
            "type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
            "description": "UNVERIFIED: reason codes meaning 'logistics_order_no already used'",
        },
        "ioss_field": {
            "enum": ["s_tax_id", "tax_id", "none"], "default": "s_tax_id",
            "description": "UNVERIFIED: which order field carries the IOSS number (with prepayment_of_vat 0)",
        },
        "undelivery_option": {
            "type": "integer", "minimum": 1, "maximum": 9, "default": 2,
            "description": "UNVERIFIED: undelivery_option (what to do when undeliverable; "
                           "integrators send 2)",
        },
        "tracking_format": {
            "enum": ["xml", "json"], "default": "xml",
            "description": "UNVERIFIED: the tracking answer's format (asked for with the Accept header)",
        },
        "tracking_language": {"enum": ["cn", "en"], "default": "en",
                              "description": "track/query/{cn|en}: the language of event texts"},
        "tracking_version_header": {"type": "string", "minLength": 1, "default": DEFAULT_TRACKING_VERSION,
                                    "description": "the legacy API's version header"},
        "tracking_utc_offset_hours": {
            "type": "number", "minimum": -12, "maximum": 14, "default": 8,
            "description": "UNVERIFIED: UTC offset of acceptTime values (no zone in the answer)",
        },
    },
}


def example_rate_card_rows() -> list[dict[str, Any]]:
    """The packaged example rate card (EXAMPLE prices, not China Post's tariff)."""
    text = resources.files(__package__).joinpath(EXAMPLE_RATE_CARD).read_text(encoding="utf-8")
    return [{k: v for k, v in row.items() if v not in (None, "")}
            for row in csv.DictReader(io.StringIO(text))]


@dataclass(frozen=True)
class ChinaPostSettings:
    """The section with defaults applied. ``key`` and ``tracking_token`` are kept out of ``repr``."""

    base_url: str
    ec_company_id: str
    key: str
    tracking_base_url: str = ""
    sender_no: str = ""
    tracking_token: str = ""
    mail_type: str = ""
    wh_code: str = ""
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    verify_tls: bool = True
    services: tuple[str, ...] = DEFAULT_SERVICES
    biz_product_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BIZ_PRODUCT_CODES))
    rate_card: tuple[dict[str, Any], ...] = ()
    declare_currency: str = "USD"
    digest_encoding: str = "raw"
    label_version: str = "1.0"
    order_query_path: str = DEFAULT_ORDER_QUERY_PATH
    duplicate_keywords: tuple[str, ...] = DEFAULT_DUPLICATE_KEYWORDS
    duplicate_codes: tuple[str, ...] = ()
    ioss_field: str = "s_tax_id"
    undelivery_option: int = 2
    tracking_format: str = "xml"
    tracking_language: str = "en"
    tracking_version_header: str = DEFAULT_TRACKING_VERSION
    tracking_utc_offset_hours: float = 8.0

    def __repr__(self) -> str:
        return (f"ChinaPostSettings(base_url={self.base_url!r}, ec_company_id={self.ec_company_id!r}, "
                f"key='***', tracking_token={'***' if self.tracking_token else ''!r})")

    @property
    def api_root(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def tracking_root(self) -> str:
        return (self.tracking_base_url or self.base_url).rstrip("/")

    @property
    def effective_sender_no(self) -> str:
        return self.sender_no or self.ec_company_id

    @property
    def timeouts(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.timeout_seconds)

    def rate_card_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rate_card] if self.rate_card else example_rate_card_rows()


_TUPLES = ("services", "duplicate_keywords", "duplicate_codes")
_NUMBERS = ("timeout_seconds", "connect_timeout_seconds", "tracking_utc_offset_hours")


def resolve_settings(section: dict[str, Any]) -> ChinaPostSettings:
    """Apply defaults to a ``carriers.chinapost`` section and check what the client cannot do without.

    The configuration loader validates the section against :data:`SETTINGS_SCHEMA` with
    path-precise errors; this check only guards direct construction (tests, scripts).
    """
    if not isinstance(section, dict):
        raise ValueError("carriers.chinapost: expected a mapping of settings")
    missing = [k for k in SETTINGS_SCHEMA["required"] if not str(section.get(k) or "").strip()]
    if missing:
        raise ValueError("carriers.chinapost: missing required setting(s): " + ", ".join(missing))
    known = SETTINGS_SCHEMA["properties"]
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError("carriers.chinapost: unknown setting(s): " + ", ".join(unknown))
    service_codes = {s.code for s in SERVICES}
    values: dict[str, Any] = {}
    for key, value in section.items():
        if value is None:
            continue
        if key in _TUPLES:
            value = tuple(str(v) for v in value)
        elif key in _NUMBERS:
            value = float(value)
        elif key == "verify_tls":
            value = bool(value)
        elif key == "undelivery_option":
            value = int(value)
        elif key == "biz_product_codes":
            value = {**DEFAULT_BIZ_PRODUCT_CODES, **{str(k): str(v) for k, v in value.items()}}
        elif key == "rate_card":
            value = tuple(dict(row) for row in value)
        else:
            value = str(value)
        values[key] = value
    bad = sorted(set(values.get("services", ())) - service_codes)
    if bad:
        raise ValueError(f"carriers.chinapost.services: unknown service(s) {', '.join(bad)} "
                         f"(known: {', '.join(sorted(service_codes))})")
    return ChinaPostSettings(**values)
