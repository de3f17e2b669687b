"""Settings of the ``carriers.yanwen`` configuration section and the services the plugin offers.

Pure data and a resolver; no I/O. Every fact the reference pack marks UNVERIFIED
(``reference/carriers.md`` section 2) that changes what we send or how we read an answer is a
setting here, with the value the public sources point to as its default (see the README).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connector.carriers import ServiceSpec
from connector.ratecard import RATE_CARD_SCHEMA

# -- services ---------------------------------------------------------------------------------
#
# EXAMPLE DATA: the channel ids below are placeholders in the range public integrations use
# (a Go SDK's test creates on channel "481"); every Yanwen account sees its own list through
# ``express.channel.getlist``. Map your account's ids with the ``services`` setting and routing.

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("481", "Yanwen Special Line Tracked - General", "fully_tracked",
                amazon_shipping_method="Yanwen Special Line Tracked", max_weight_g=2000),
    ServiceSpec("482", "Yanwen Special Line Tracked - Battery", "fully_tracked",
                amazon_shipping_method="Yanwen Special Line Tracked", max_weight_g=2000,
                allows_battery=True),
    ServiceSpec("464", "Yanwen Economy Air Mail Tracked", "tracked",
                amazon_shipping_method="Yanwen Economy Tracked", max_weight_g=2000),
    ServiceSpec("466", "Yanwen Untracked - General", "untracked",
                amazon_shipping_method="Yanwen Untracked", max_weight_g=2000),
)
# Chinese names as express.channel.getlist gives them (nameCh), for the emulator and diagnostics.
SERVICE_NAMES_CH: dict[str, str] = {
    "481": "燕文专线追踪-普货",
    "482": "燕文专线追踪-带电",
    "464": "燕文航空挂号小包-普货",
    "466": "燕文专线平邮-普货",
}
# Lines that accept parcels with batteries (the others are 普货, general goods only).
BATTERY_SERVICES: frozenset[str] = frozenset({"482"})

DEFAULT_SERVICES: tuple[str, ...] = tuple(s.code for s in SERVICES)

# -- Amazon carrier codes ----------------------------------------------------------------------
#
# Amazon spells the carrier "YANWEN" on the EU-region sites and "Yanwen" elsewhere (the SP-API
# emulator's table; field-notes.md section 4 documents the case conflict).
AMAZON_CARRIER_CODE = "Yanwen"
EU_REGION_SITES: tuple[str, ...] = ("UK", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR",
                                    "AE", "SA", "EG", "IN", "ZA")
SITE_CARRIER_CODES: dict[str, str | None] = {site: "YANWEN" for site in EU_REGION_SITES}

# Yanwen numbers: UPU S10-shaped waybills (``UG`` + 8 digits + check digit + ``YP`` on the
# special lines, ``LX…CN``-style postal numbers on postal channels) and ``YW`` numbers. Every
# alternative also matches the SP-API emulator's TRACKING_FORMATS["Yanwen"/"YANWEN"].
TRACKING_NUMBER_PATTERN = r"^(?:[A-Z]{2}\d{9}[A-Z]{2}|YW[A-Z0-9]{8,18})$"

# -- defaults ------------------------------------------------------------------------------------

PRODUCTION_URL = "https://open.yw56.com.cn/api/order"
PRODUCTION_TRACKING_URL = "http://api.track.yw56.com.cn/api/tracking"
YANWEN_HOST_SUFFIX = "yw56.com.cn"

DEFAULT_DUPLICATE_CODES: tuple[str, ...] = ("121", "V121")
DEFAULT_DUPLICATE_KEYWORDS: tuple[str, ...] = ("重复", "already exist", "repeat", "duplicate", "V121")
DEFAULT_CANCELLED_STATUSES: tuple[int, ...] = (5,)
TRACK_BATCH_MAX = 30  # the tracking API takes 1-30 numbers per call
LOOKUP_BATCH_MAX = 50  # express.order.getlist takes at most 50 numbers

# EXAMPLE prices (CNY), not a Yanwen tariff: replace them with your contract's rate card.
DEFAULT_RATE_CARD: tuple[dict[str, Any], ...] = (
    {"service": "481", "countries": "US,CA", "max_weight_g": 2000, "base": "21.00", "per_kg": "98.00",
     "currency": "CNY", "transit_days": 12},
    {"service": "481", "countries": "*", "max_weight_g": 2000, "base": "18.00", "per_kg": "86.00",
     "currency": "CNY", "transit_days": 12},
    {"service": "482", "countries": "*", "max_weight_g": 2000, "base": "20.00", "per_kg": "96.00",
     "currency": "CNY", "transit_days": 14},
    {"service": "464", "countries": "*", "max_weight_g": 2000, "base": "11.00", "per_kg": "78.00",
     "currency": "CNY", "transit_days": 18},
    {"service": "466", "countries": "*", "max_weight_g": 2000, "base": "3.00", "per_kg": "70.00",
     "currency": "CNY", "transit_days": 25},
)

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "carriers.yanwen",
    "description": "Yanwen (燕文) open API and tracking API. Facts marked UNVERIFIED in the plugin "
                   "README are settings.",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "user_id", "api_token"],
    "properties": {
        "base_url": {
            "type": "string", "minLength": 1, "pattern": "^https?://",
            "description": "open API endpoint, with or without the trailing /api/order: "
                           f"{PRODUCTION_URL} (test: https://open-fat.yw56.com.cn/api/order, UNVERIFIED; "
                           "sandbox: ${MFN_SANDBOX_YANWEN})",
        },
        "tracking_base_url": {
            "type": "string", "minLength": 1, "pattern": "^https?://",
            "description": "tracking API endpoint, with or without /api/tracking. Unset: "
                           f"{PRODUCTION_TRACKING_URL} when base_url is a Yanwen host, else "
                           "base_url's origin + /api/tracking (the sandbox)",
        },
        "user_id": {"type": "string", "minLength": 1, "pattern": r"^\S+$",
                    "description": "制单账号 (the account's user id); sent as user_id and signed"},
        "api_token": {"type": "string", "minLength": 1, "x-secret": True,
                      "description": "API token: only ever inside the MD5 signature, never sent or logged"},
        "customer_number": {
            "type": "string", "minLength": 1,
            "description": "Authorization value of the tracking API (客户号 / 制单账号); unset = user_id",
        },
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                            "description": "read timeout of every call"},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        "services": {
            "type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "minItems": 1,
            "default": list(DEFAULT_SERVICES),
            "description": "channel ids to offer in quotes when the request names none",
        },
        "order_source": {
            "type": "string", "minLength": 1, "default": "amazon",
            "description": "UNVERIFIED vocabulary: express.order.create orderSource (required by the API)",
        },
        "cancel_note": {"type": "string", "default": "Cancelled by the seller",
                        "description": "express.order.cancel note (some channels require one)"},
        "quote_source": {
            "enum": ["api", "rate_card"], "default": "rate_card",
            "description": "quotes from calc.list (needs a permission Yanwen grants per account) or "
                           "from rate_card",
        },
        "rate_card": {**copy.deepcopy(RATE_CARD_SCHEMA), "default": [dict(r) for r in DEFAULT_RATE_CARD],
                      "description": "rows {service, countries, max_weight_g, base, per_kg, currency, "
                                     "transit_days}; the default is EXAMPLE data"},
        "calc_city_id": {
            "type": "string",
            "description": "UNVERIFIED: calc.list cityId (origin/collection city id); unset = not sent",
        },
        "duplicate_codes": {
            "type": "array", "items": {"type": "string"}, "default": list(DEFAULT_DUPLICATE_CODES),
            "description": "UNVERIFIED: envelope codes meaning 'orderNumber already used' (legacy: V121)",
        },
        "duplicate_keywords": {
            "type": "array", "items": {"type": "string", "minLength": 1},
            "default": list(DEFAULT_DUPLICATE_KEYWORDS),
            "description": "UNVERIFIED: message words meaning 'orderNumber already used'",
        },
        "cancelled_statuses": {
            "type": "array", "items": {"type": "integer"}, "default": list(DEFAULT_CANCELLED_STATUSES),
            "description": "UNVERIFIED: express.order.getlist status values of a cancelled waybill",
        },
        "timestamp_unit": {
            "enum": ["ms", "us"], "default": "ms",
            "description": "UNVERIFIED: unit of the signed timestamp (most clients: ms; one SDK: us)",
        },
        "tracking_utc_offset_hours": {
            "type": "number", "minimum": -12, "maximum": 14, "default": 8,
            "description": "UNVERIFIED: zone of a checkpoint time_stamp that carries no time_zone",
        },
        "track_batch_size": {
            "type": "integer", "minimum": 1, "maximum": TRACK_BATCH_MAX, "default": TRACK_BATCH_MAX,
            "description": "numbers per tracking call (the API takes 1-30)",
        },
        "max_requests_per_second": {
            "type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
            "description": "UNVERIFIED rate limit (none documented): pace calls client-side; null = off",
        },
    },
}


@dataclass(frozen=True)
class YanwenSettings:
    """The section with defaults applied. ``api_token`` is kept out of ``repr``."""

    base_url: str
    user_id: str
    api_token: str
    tracking_base_url: str = ""
    customer_number: str = ""
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    services: tuple[str, ...] = DEFAULT_SERVICES
    order_source: str = "amazon"
    cancel_note: str = "Cancelled by the seller"
    quote_source: str = "rate_card"
    rate_card: tuple[dict[str, Any], ...] = DEFAULT_RATE_CARD
    calc_city_id: str = ""
    duplicate_codes: tuple[str, ...] = DEFAULT_DUPLICATE_CODES
    duplicate_keywords: tuple[str, ...] = DEFAULT_DUPLICATE_KEYWORDS
    cancelled_statuses: tuple[int, ...] = DEFAULT_CANCELLED_STATUSES
    timestamp_unit: str = "ms"
    tracking_utc_offset_hours: float = 8.0
    track_batch_size: int = TRACK_BATCH_MAX
    max_requests_per_second: float | None = None

    def __repr__(self) -> str:
        return (f"YanwenSettings(base_url={self.base_url!r}, user_id={self.user_id!r}, "
                f"api_token='***')")

    @property
    def api_url(self) -> str:
        """``base_url`` normalised to end in ``/api/order`` (accepts it with or without)."""
        root = self.base_url.rstrip("/")
        return root if root.lower().endswith("/api/order") else root + "/api/order"

    @property
    def tracking_url(self) -> str:
        if self.tracking_base_url:
            root = self.tracking_base_url.rstrip("/")
            return root if root.lower().endswith("/api/tracking") else root + "/api/tracking"
        parts = urlsplit(self.base_url)
        host = (parts.hostname or "").lower()
        if host == YANWEN_HOST_SUFFIX or host.endswith("." + YANWEN_HOST_SUFFIX):
            return PRODUCTION_TRACKING_URL
        return f"{parts.scheme}://{parts.netloc}/api/tracking"

    @property
    def tracking_authorization(self) -> str:
        return self.customer_number or self.user_id

    @property
    def timeouts(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.timeout_seconds)


_TUPLES = ("services", "duplicate_codes", "duplicate_keywords")
_NUMBERS = ("timeout_seconds", "connect_timeout_seconds", "tracking_utc_offset_hours")


def resolve_settings(section: dict[str, Any]) -> YanwenSettings:
    """Apply defaults to a ``carriers.yanwen`` section and check what the client cannot do without.

    The configuration loader validates the section against :data:`SETTINGS_SCHEMA` with
    path-precise errors; this check only guards direct construction (tests, scripts).
    """
    if not isinstance(section, dict):
        raise ValueError("carriers.yanwen: expected a mapping of settings")
    missing = [k for k in SETTINGS_SCHEMA["required"] if not str(section.get(k) or "").strip()]
    if missing:
        raise ValueError("carriers.yanwen: missing required setting(s): " + ", ".join(missing))
    known = SETTINGS_SCHEMA["properties"]
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError("carriers.yanwen: unknown setting(s): " + ", ".join(unknown))
    values: dict[str, Any] = {}
    for key, value in section.items():
        if value is None and key != "max_requests_per_second":
            continue
        if key in _TUPLES:
            value = tuple(str(v) for v in value)
        elif key == "cancelled_statuses":
            value = tuple(int(v) for v in value)
        elif key == "rate_card":
            value = tuple(dict(row) for row in value)
        elif key in _NUMBERS:
            value = float(value)
        elif key == "max_requests_per_second":
            value = float(value) if value else None
        elif key == "track_batch_size":
            value = int(value)
            if not 1 <= value <= TRACK_BATCH_MAX:
                raise ValueError(f"carriers.yanwen: track_batch_size must be 1-{TRACK_BATCH_MAX}, "
                                 f"got {value}")
        else:
            value = str(value)
        values[key] = value
    if values.get("quote_source", "rate_card") not in ("api", "rate_card"):
        raise ValueError(f"carriers.yanwen: quote_source must be 'api' or 'rate_card', "
                         f"got {values['quote_source']!r}")
    if values.get("timestamp_unit", "ms") not in ("ms", "us"):
        raise ValueError(f"carriers.yanwen: timestamp_unit must be 'ms' or 'us', "
                         f"got {values['timestamp_unit']!r}")
    return YanwenSettings(**values)
