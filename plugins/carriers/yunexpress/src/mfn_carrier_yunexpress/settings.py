"""Settings of the ``carriers.yunexpress`` configuration section and the services the plugin offers.

Pure data; no I/O. Every fact about the API that public sources leave UNVERIFIED and that changes
what we send or how we read an answer is a setting here, with the value the sources point to as
its default (see the plugin README).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from connector.kit import URL, HttpSettings, PickupCoverage, Secret, ServiceSpec, settings_schema
from connector.kit.ratecard import services_setting
from connector.kit.values import keywords_setting, url_with_path, utc_offset_setting

# Where the lines deliver. EXAMPLE DATA (UNVERIFIED): no public source lists the countries of each
# YunExpress line; this is every Amazon site country (GB, not UK: ISO codes) plus the other EU/EFTA
# countries, KR and NZ. GetShippingMethods?CountryCode=<country> tells what your account may use.
DESTINATIONS: tuple[str, ...] = (
    "US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE", "SA",
    "EG", "IN", "ZA", "JP", "AU", "SG",  # Amazon's site countries
    "AT", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "GR", "HU", "LV", "LT", "LU", "MT", "PT", "RO", "SK",
    "SI", "CH", "NO", "KR", "NZ",
)

# The Amazon lines first: they are what an MFN seller ships with (GetShippingMethods fixture).
# Limits: no public source states them for these lines. All are small-packet lines (专线挂号/平邮),
# so each carries the typical Chinese small-packet limits -- 2 kg, longest side 60 cm, length +
# width + height 90 cm -- UNVERIFIED; check your contract. The emulator enforces these same values,
# and the Buy Shipping plugin's copies of the lines (YUNEXPRESS_AYPZXR, YUNEXPRESS_ZXR) carry them too.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("AYPZXR", "Amazon Yuntu Global Tracked Line DDP", "fully_tracked",
                amazon_shipping_method="Amazon Yuntu Global Tracked Line DDP", allows_battery=True,
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("AYUZXR", "Amazon Yuntu Global Tracked line DDU", "fully_tracked",
                amazon_shipping_method="Amazon Yuntu Global Tracked line DDU",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("AYPZXU", "Amazon Yuntu Global Untracked Line DDP", "untracked",
                amazon_shipping_method="Amazon Yuntu Global Untracked Line DDP", allows_battery=True,
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("THPHR", "YunExpress Registered Standard General", "tracked",
                amazon_shipping_method="YunExpress Registered Standard General",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("ZXR", "YunExpress Global Line", "fully_tracked",
                amazon_shipping_method="YunExpress Global Direct line (standard )-Tracked",
                allows_battery=True,
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
)
SERVICE_SPECS: dict[str, ServiceSpec] = {s.code: s for s in SERVICES}

DEFAULT_SERVICES: tuple[str, ...] = ("AYPZXR", "AYUZXR", "AYPZXU")

# The tracking numbers the plugin expects, by ``tracking_number_source``: a YunExpress waybill is
# "YT" + 16 digits (every captured WayBillNumber); a TrackingNumber is the last-mile carrier's
# number (the captured GetOrder answer has "D1234567"), whose form depends on that carrier, so
# any plausible number passes: letters, digits and dashes, 4 to 50 characters. The waybill stands
# in for a TrackingNumber YunExpress does not issue (TrackType 3), and passes too.
WAYBILL_PATTERN = r"^YT\d{16}$"
TRACKING_NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{3,49}$"
PATTERN_BY_SOURCE = {"WayBillNumber": WAYBILL_PATTERN, "TrackingNumber": TRACKING_NUMBER_PATTERN}

SCHEMA: dict[str, Any] = settings_schema(
    "carriers.yunexpress",
    description="YunExpress (云途) OMS API. Facts marked UNVERIFIED in the plugin README are settings.",
    required=["base_url", "customer_code", "api_secret"],
    properties={
        "base_url": {
            **URL,
            "description": "OMS API root without /api, e.g. http://oms.api.yunexpress.com "
                           "(UAT: http://omsapi.uat.yunexpress.com; sandbox: ${MFN_SANDBOX_YUNEXPRESS})",
        },
        "customer_code": {"type": "string", "minLength": 1, "description": "CustomerCode, e.g. C12345"},
        "api_secret": {"type": "string", "minLength": 1, "x-secret": True,
                       "description": "ApiSecret; sent only inside the Basic auth header, never logged"},
        "services": services_setting(DEFAULT_SERVICES,
                                     "ShippingMethodCodes to offer in quotes (default: the Amazon lines)"),
        "language": {"type": "string", "default": "en-us",
                     "description": "Accept-Language header (carrier messages in English)"},
        "tracking_number_source": {
            "enum": ["TrackingNumber", "WayBillNumber"], "default": "TrackingNumber",
            "description": "UNVERIFIED: which YunExpress number is the one Amazon tracks",
        },
        "tracking_number_pattern": {
            "type": ["string", "null"], "minLength": 1, "default": None,
            "description": "regex the tracking numbers must match before they are sent to Amazon (a "
                           "label whose number does not is held invalid_tracking_number); null: by "
                           "tracking_number_source, ^YT\\d{16}$ for WayBillNumber, any letters, digits "
                           "and dashes (4-50) for TrackingNumber",
        },
        "label_request_format": {
            "enum": ["array", "object"], "default": "array",
            "description": "UNVERIFIED: Label/Print body as [numbers] or {\"OrderNumbers\": [numbers]}",
        },
        "duplicate_codes": {
            "type": "array", "items": {"type": "string"}, "default": ["1001"],
            "description": "UNVERIFIED: envelope Codes meaning 'CustomerOrderNumber already used'",
        },
        "duplicate_keywords": keywords_setting(
            ["重复", "repeat", "exist"],
            "UNVERIFIED: Remark words meaning 'CustomerOrderNumber already used'"),
        "delete_success_statuses": {
            "type": "array", "items": {"type": "string"}, "default": ["success", "5012"],
            "description": "UNVERIFIED: WayBill/Delete Item.Status values meaning deleted",
        },
        "already_cancelled_keywords": keywords_setting(
            ["已删除", "already deleted"],
            "UNVERIFIED: WayBill/Delete Remark words meaning 'this waybill is deleted already' (taken "
            "as deleted, not as a refusal; 'does not exist' is not one: it is also the answer for a "
            "number YunExpress does not know yet, so the order's tracking state decides)"),
        "application_type": {
            "enum": [1, 2, 3, 4], "default": 4,
            "description": "CreateOrder ApplicationType: 1 gift, 2 sample, 3 documents, 4 other (goods sold)",
        },
        "price_trial_package_type_param": {
            "type": "string", "minLength": 1, "default": "PackageType",
            "description": "UNVERIFIED: GetPriceTrial parameter for 1 battery / 0 general goods",
        },
        "price_trial_origin": {"type": "string", "default": "",
                               "description": "GetPriceTrial Origin (empty: the carrier's default, YT-SZ)"},
        "quote_currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "CNY",
                           "description": "currency of quotes whose Items carry no Currency"},
        "tracking_utc_offset_hours": utc_offset_setting(
            "UNVERIFIED: UTC offset of tracking ProcessDate values (no zone in the answer)"),
    },
)


@dataclass(frozen=True, kw_only=True)
class YunExpressSettings(HttpSettings):
    """The ``carriers.yunexpress`` section, typed, with the schema's defaults applied."""

    SCHEMA: ClassVar[dict[str, Any]] = SCHEMA

    base_url: str
    customer_code: str
    api_secret: Secret
    services: tuple[str, ...]
    language: str
    tracking_number_source: str
    tracking_number_pattern: str | None
    label_request_format: str
    duplicate_codes: tuple[str, ...]
    duplicate_keywords: tuple[str, ...]
    delete_success_statuses: tuple[str, ...]
    already_cancelled_keywords: tuple[str, ...]
    application_type: int
    price_trial_package_type_param: str
    price_trial_origin: str
    quote_currency: str
    tracking_utc_offset_hours: float

    @property
    def api_root(self) -> str:
        """``base_url`` normalised to end in ``/api`` (accepts it with or without)."""
        return url_with_path(self.base_url, "/api")

    def __post_init__(self) -> None:
        try:
            re.compile(self.tracking_pattern)
        except re.error as exc:
            raise ValueError(f"tracking_number_pattern is not a regular expression: {exc}") from None

    @property
    def use_waybill_as_tracking(self) -> bool:
        return self.tracking_number_source == "WayBillNumber"

    @property
    def tracking_pattern(self) -> str:
        """The regex this account's tracking numbers must match: ``tracking_number_pattern``, or
        the pattern of the ``tracking_number_source`` (:data:`PATTERN_BY_SOURCE`)."""
        return self.tracking_number_pattern or PATTERN_BY_SOURCE[self.tracking_number_source]


# Where YunExpress collects from the seller: EXAMPLE DATA (UNVERIFIED). No public source lists its
# pickup coverage; these are the cities where it is generally known to run pickup/receiving, and
# the provinces of its South China base (anywhere there). Check with the account manager before
# relying on it; the site rules refuse a pickup outside it unless selection.drop_off is set.
PICKUP_CITIES = ("Shenzhen", "Guangzhou", "Dongguan", "Foshan", "Yiwu", "Hangzhou", "Shanghai",
                 "Xiamen", "Quanzhou", "Beijing")
PICKUP_PROVINCES = ("Guangdong", "Fujian")
PICKUP = PickupCoverage.listed(PICKUP_CITIES, PICKUP_PROVINCES, source="example data (UNVERIFIED)")
