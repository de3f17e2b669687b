"""Settings of the ``carriers.yanwen`` configuration section and the services the plugin offers.

Pure data; no I/O. Every fact about the APIs that public sources leave UNVERIFIED and that changes
what we send or how we read an answer is a setting here, with the value the sources point to as
its default (see the plugin README).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

from connector.kit import URL, HttpSettings, PickupCoverage, Secret, ServiceSpec, settings_schema
from connector.kit.amazon import SITES
from connector.kit.ratecard import RateCardSettings, rate_card_setting, services_setting
from connector.kit.values import empty_lookup_setting, keywords_setting, url_with_path, utc_offset_setting

# -- services ---------------------------------------------------------------------------------
#
# EXAMPLE DATA: the channel ids below are placeholders in the range public integrations use
# (a Go SDK's test creates on channel "481"); every Yanwen account sees its own list through
# ``express.channel.getlist``. Map your account's ids with the ``services`` setting and routing.

#
# Destinations, EXAMPLE DATA (UNVERIFIED): no public source lists the countries of each channel
# (``channels/{channelId}/countries`` of the legacy API tells your account's); this is every Amazon
# site country (GB, not UK: ISO codes) plus the other EU/EFTA countries, KR and NZ.
# Limits, UNVERIFIED: the channels are small packets, so each carries the typical Chinese
# small-packet limits -- 2 kg, longest side 60 cm, length + width + height 90 cm. The emulator and
# the example rate card use these same values.

DESTINATIONS: tuple[str, ...] = (
    "US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE", "SA",
    "EG", "IN", "ZA", "JP", "AU", "SG",  # Amazon's site countries
    "AT", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "GR", "HU", "LV", "LT", "LU", "MT", "PT", "RO", "SK",
    "SI", "CH", "NO", "KR", "NZ",
)

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("481", "Yanwen Special Line Tracked - General", "fully_tracked",
                amazon_shipping_method="Direct Line Tracked Packet",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("482", "Yanwen Special Line Tracked - Battery", "fully_tracked",
                amazon_shipping_method="Direct Line Tracked Packet", allows_battery=True,
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("464", "Yanwen Economy Air Mail Tracked", "tracked",
                amazon_shipping_method="Yanwen Economy Tracked",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("466", "Yanwen Untracked - General", "untracked",
                amazon_shipping_method="Yanwen Untracked",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
)
SERVICE_SPECS: dict[str, ServiceSpec] = {s.code: s for s in SERVICES}
# Lines that accept parcels with batteries (the others are 普货, general goods only).
BATTERY_SERVICES: frozenset[str] = frozenset({"482"})

# -- Amazon carrier codes ----------------------------------------------------------------------
#
# The spelling per site follows Amazon's site table (the mfn-marketplace-amazon plugin's
# sites.yaml, which the SP-API emulator enforces; this plugin's tests check the two agree):
# "YANWEN" on the EU-region sites except IN, "Yanwen" on IN and elsewhere. UNVERIFIED: Amazon's
# feed schema has "YANWEN" (https://github.com/veeqo/mws-rb/blob/9f6538d/lib/mws/api/feeds/xsd/amzn-base.xsd),
# Amazon IN's VTR FAQ writes "Yanwen" (https://sellercentral.amazon.in/gp/help/external/202014610),
# and one user reports that confirmShipment matches case-sensitively
# (https://github.com/amzn/selling-partner-api-docs/issues/2530). Check each site's Seller Central list.
AMAZON_CARRIER_CODE = "Yanwen"
EU_REGION_SITES: tuple[str, ...] = tuple(code for code, site in SITES.items() if site.region == "eu")
SITE_CARRIER_CODES: dict[str, str | None] = {site: "YANWEN" for site in EU_REGION_SITES if site != "IN"}

# Yanwen numbers: UPU S10-shaped waybills (``UG`` + 8 digits + check digit + ``YP`` on the
# special lines, ``LX…CN``-style postal numbers on postal channels) and ``YW`` numbers. Every
# alternative also matches the SP-API emulator's TRACKING_FORMATS["Yanwen"/"YANWEN"].
TRACKING_NUMBER_PATTERN = r"^(?:[A-Z]{2}\d{9}[A-Z]{2}|YW[A-Z0-9]{8,18})$"

# -- settings --------------------------------------------------------------------------------

PRODUCTION_URL = "https://open.yw56.com.cn/api/order"
PRODUCTION_TRACKING_URL = "http://api.track.yw56.com.cn/api/tracking"
YANWEN_HOST_SUFFIX = "yw56.com.cn"
TRACK_BATCH_MAX = 30  # the tracking API takes 1-30 numbers per call
LOOKUP_BATCH_MAX = 50  # express.order.getlist takes at most 50 numbers

# EXAMPLE prices (CNY), not a Yanwen tariff: replace them with your contract's rate card.
EXAMPLE_RATE_CARD: tuple[dict[str, Any], ...] = (
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

SCHEMA: dict[str, Any] = settings_schema(
    "carriers.yanwen",
    description="Yanwen (燕文) open API and tracking API. Facts marked UNVERIFIED in the plugin README "
                "are settings.",
    required=["base_url", "user_id", "api_token"],
    properties={
        "base_url": {
            **URL,
            "description": "open API endpoint, with or without the trailing /api/order: "
                           f"{PRODUCTION_URL} (test: https://open-fat.yw56.com.cn/api/order, UNVERIFIED; "
                           "sandbox: ${MFN_SANDBOX_YANWEN})",
        },
        "tracking_base_url": {
            **URL, "type": ["string", "null"], "default": None,
            "description": "tracking API endpoint, with or without /api/tracking. null: "
                           f"{PRODUCTION_TRACKING_URL} when base_url is a Yanwen host, else "
                           "base_url's origin + /api/tracking (the sandbox)",
        },
        "user_id": {"type": "string", "minLength": 1, "pattern": r"^\S+$",
                    "description": "制单账号 (the account's user id); sent as user_id and signed"},
        "api_token": {"type": "string", "minLength": 1, "pattern": r"\S", "x-format": "not blank",
                      "x-secret": True,
                      "description": "API token: only ever inside the MD5 signature, never sent or logged"},
        "customer_number": {
            "type": ["string", "null"], "minLength": 1, "default": None,
            "description": "Authorization value of the tracking API (客户号 / 制单账号); null: user_id",
        },
        "services": services_setting([s.code for s in SERVICES],
                                     "channel ids to offer in quotes when the request names none"),
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
        "rate_card": rate_card_setting(EXAMPLE_RATE_CARD, "rows {service, countries, max_weight_g, base, "
                                                          "per_kg, currency, transit_days}; the default is "
                                                          "EXAMPLE data"),
        "calc_city_id": {
            "type": "string", "default": "",
            "description": "UNVERIFIED: calc.list cityId (origin/collection city id); empty: not sent",
        },
        "duplicate_codes": {
            "type": "array", "items": {"type": "string"}, "default": ["121", "V121"],
            "description": "UNVERIFIED: envelope codes meaning 'orderNumber already used' (legacy: V121)",
        },
        "duplicate_keywords": keywords_setting(
            ["重复", "already exist", "repeat", "duplicate", "V121"],
            "UNVERIFIED: message words meaning 'orderNumber already used'"),
        "already_cancelled_keywords": keywords_setting(
            ["运单已取消", "运单已经取消"],
            "UNVERIFIED: express.order.cancel message words meaning 'this waybill is cancelled already' "
            "(taken as cancelled, not as a refusal)"),
        "cancelled_statuses": {
            "type": "array", "items": {"type": "integer"}, "default": [5],
            "description": "UNVERIFIED: express.order.getlist status values of a cancelled waybill",
        },
        "empty_lookup": empty_lookup_setting(
            "UNVERIFIED whether express.order.getlist shows an order just created: after a create lost "
            "its answer, an empty lookup buys again (buy) or holds the order label_uncertain (hold)"),
        "timestamp_unit": {
            "enum": ["ms", "us"], "default": "ms",
            "description": "UNVERIFIED: unit of the signed timestamp (most clients: ms; one SDK: us)",
        },
        "tracking_utc_offset_hours": utc_offset_setting(
            "UNVERIFIED: zone of a checkpoint time_stamp that carries no time_zone"),
        "track_batch_size": {
            "type": "integer", "minimum": 1, "maximum": TRACK_BATCH_MAX, "default": TRACK_BATCH_MAX,
            "description": "numbers per tracking call (the API takes 1-30)",
        },
    },
)


@dataclass(frozen=True, kw_only=True)
class YanwenSettings(HttpSettings, RateCardSettings):
    """The ``carriers.yanwen`` section, typed, with the schema's defaults applied."""

    SCHEMA: ClassVar[dict[str, Any]] = SCHEMA

    base_url: str
    tracking_base_url: str | None
    user_id: str
    api_token: Secret
    customer_number: str | None
    services: tuple[str, ...]
    order_source: str
    cancel_note: str
    quote_source: str
    calc_city_id: str
    duplicate_codes: tuple[str, ...]
    duplicate_keywords: tuple[str, ...]
    already_cancelled_keywords: tuple[str, ...]
    cancelled_statuses: tuple[int, ...]
    empty_lookup: str
    timestamp_unit: str
    tracking_utc_offset_hours: float
    track_batch_size: int

    @property
    def api_url(self) -> str:
        """``base_url`` normalised to end in ``/api/order`` (accepts it with or without)."""
        return url_with_path(self.base_url, "/api/order")

    @property
    def tracking_url(self) -> str:
        if self.tracking_base_url:
            return url_with_path(self.tracking_base_url, "/api/tracking")
        parts = urlsplit(self.base_url)
        host = (parts.hostname or "").lower()
        if host == YANWEN_HOST_SUFFIX or host.endswith("." + YANWEN_HOST_SUFFIX):
            return PRODUCTION_TRACKING_URL
        return f"{parts.scheme}://{parts.netloc}/api/tracking"

    @property
    def tracking_authorization(self) -> str:
        return self.customer_number or self.user_id


# Where Yanwen collects from the seller: EXAMPLE DATA (UNVERIFIED). No public source lists its
# pickup coverage; these are the cities where it is generally known to run collection/sorting, and
# the province-level areas around its Beijing head office and its Guangdong hubs (anywhere there).
# Check with the account manager before relying on it.
PICKUP_CITIES = ("Beijing", "Shenzhen", "Guangzhou", "Dongguan", "Yiwu", "Hangzhou", "Shanghai", "Suzhou",
                 "Quanzhou", "Xiamen")
PICKUP_PROVINCES = ("Beijing", "Guangdong")
PICKUP = PickupCoverage.listed(PICKUP_CITIES, PICKUP_PROVINCES, source="example data (UNVERIFIED)")
