"""Settings of the ``carriers.dhl_ecommerce`` section and the services the plugin offers.

Pure data; no I/O. Facts about the API that public sources leave UNVERIFIED and that change what
we send are settings here (see the plugin README).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from connector.kit import (
    HTTP_PROPERTIES,
    URL,
    HttpSettings,
    PickupCoverage,
    Secret,
    ServiceSpec,
    settings_schema,
)
from connector.kit.ratecard import RateCardSettings, rate_card_setting, services_setting
from connector.kit.values import keywords_setting, utc_offset_setting

# Product codes for CN origin, from the product tables of the DHL eCommerce Asia integration in
# the "DHL for WooCommerce" plugin
# (https://github.com/RafaelFunchal/dhl-logistic-services-for-woocommerce, includes/REST_API/DHL_eCS_Asia).
# Tracking levels: "Packet Plus" and "Parcel" products are tracked to the door (fully_tracked);
# "Packet" products get origin/line-haul scans only (tracked); "Packet Economy" is untracked.
# Limits, all UNVERIFIED (account-specific; no public source states them): packets carry the
# typical small-packet limits -- 2 kg, longest side 60 cm, length + width + height 90 cm; parcels
# 20 kg, longest side 120 cm, length + width + height 240 cm (120 x 60 x 60). Battery acceptance per
# product: UNVERIFIED too, see the README. Destinations, EXAMPLE DATA (UNVERIFIED): every Amazon site
# country (GB, not UK: ISO codes) plus the other EU/EFTA countries, KR and NZ. The emulator and the
# example rate card use these same values.
DESTINATIONS: tuple[str, ...] = (
    "US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE", "SA",
    "EG", "IN", "ZA", "JP", "AU", "SG",  # Amazon's site countries
    "AT", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "GR", "HU", "LV", "LT", "LU", "MT", "PT", "RO", "SK",
    "SI", "CH", "NO", "KR", "NZ",
)
_PACKET: dict[str, Any] = {"max_weight_g": 2000, "max_length_cm": Decimal(60),
                           "max_dimensions_sum_cm": Decimal(90), "destinations": DESTINATIONS}
_PARCEL: dict[str, Any] = {"max_weight_g": 20000, "max_length_cm": Decimal(120),
                           "max_dimensions_sum_cm": Decimal(240), "destinations": DESTINATIONS}
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("PPM", "Packet Plus International Priority Manifest", "fully_tracked", **_PACKET,
                allows_battery=True, amazon_shipping_method="Packet Plus International"),
    ServiceSpec("PKD", "Packet International Standard", "tracked", **_PACKET,
                amazon_shipping_method="Packet International Standard"),
    ServiceSpec("PLT", "Parcel International Direct Standard", "fully_tracked", **_PARCEL,
                allows_battery=True, amazon_shipping_method="Parcel International Direct-Standard"),
    ServiceSpec("PPS", "Packet Plus International Standard", "fully_tracked", **_PACKET,
                allows_battery=True, amazon_shipping_method="Packet Plus International"),
    ServiceSpec("PKM", "Packet International Priority Manifest", "tracked", **_PACKET,
                amazon_shipping_method="DHL eCommerce Packet Priority"),
    ServiceSpec("PLE", "Parcel International Direct Expedited", "fully_tracked", **_PARCEL,
                allows_battery=True, amazon_shipping_method="Parcel International Direct-Expedited"),
    ServiceSpec("PLD", "Parcel International Standard", "fully_tracked", **_PARCEL,
                allows_battery=True, amazon_shipping_method="DHL eCommerce Parcel International"),
    ServiceSpec("PKW", "Parcel International Direct Semi", "tracked", **_PARCEL,
                amazon_shipping_method="Parcel International Direct-Semi"),
    ServiceSpec("PKG", "Packet International Economy", "untracked", **_PACKET,
                amazon_shipping_method="Packet International Economy"),
)
SERVICE_SPECS: dict[str, ServiceSpec] = {s.code: s for s in SERVICES}
# Quoted when the request names no service (the example rate card prices these three).
DEFAULT_SERVICES: tuple[str, ...] = ("PPM", "PKD", "PLT")
BATTERY_SERVICES: frozenset[str] = frozenset(s.code for s in SERVICES if s.allows_battery)

AMAZON_CARRIER_CODE = "DHL eCommerce"
# The check Amazon applies to "DHL eCommerce" tracking numbers (as the sandbox's SP-API emulator
# models it); DHL issues 16 digits ("7027018415475994" in captured answers, and in the emulator).
TRACKING_NUMBER_PATTERN = r"^[A-Z0-9]{10,39}$"

PRODUCTION_URL = "https://api.dhlecommerce.dhl.com"
TRACK_BATCH_MAX = 100  # UNVERIFIED (one integrator's note)
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_ACCOUNT = "5999999"
DEFAULT_PREFIX = "CNMFN"
EXAMPLE_RATE_CARD = "data/example_rate_card.csv"
# shipmentID may hold letters, digits and the documented specials ~ _ \ . ('-' is seen in every
# captured answer); anything else in a reference is refused, never silently dropped (two
# references must never map to one shipmentID). The prefix may be empty.
SHIPMENT_ID_PREFIX_PATTERN = r"^[A-Za-z0-9~_\\.\-]*$"
# ioss_field: "" (not sent), an item-level field name ("remarks", "customerReference2", ...) or
# "shipmentContents.<name>" (on every customs line).
IOSS_FIELD_PATTERN = r"^$|^(shipmentContents\.)?[A-Za-z][A-Za-z0-9]*$"
CONTENT_INDICATORS = ("00", "01", "02", "03", "04", "05", "06")


@dataclass(frozen=True, kw_only=True)
class DhlEcommerceSettings(HttpSettings, RateCardSettings):
    """The ``carriers.dhl_ecommerce`` section, typed, with the schema's defaults applied. ``card``
    is the configured rate card, or the packaged EXAMPLE card when ``rate_card`` is empty."""

    PACKAGED_RATE_CARD: ClassVar[tuple[str, str] | None] = (__package__, EXAMPLE_RATE_CARD)

    SCHEMA: ClassVar[dict[str, Any]] = settings_schema(
        "carriers.dhl_ecommerce",
        description="DHL eCommerce Asia-Pacific REST API (label, reprint, delete, tracking).",
        required=["base_url"],
        properties={
            "base_url": {**URL, "description": f"API origin: {PRODUCTION_URL} (pre-prod "
                         "https://apitest.dhlecommerce.asia, sandbox https://sandbox.dhlecommerce.asia; "
                         "emulator ${MFN_SANDBOX_DHL_ECOMMERCE})"},
            "client_id": {"type": "string", "minLength": 1, "default": SANDBOX_CLIENT_ID},
            "password": {"type": "string", "minLength": 1, "x-secret": True, "default": SANDBOX_PASSWORD,
                         "description": "API password; only sent to the token endpoint, never logged"},
            "pickup_account_id": {"type": "string", "minLength": 1, "default": SANDBOX_ACCOUNT},
            "sold_to_account_id": {"type": "string", "minLength": 1, "default": SANDBOX_ACCOUNT},
            "shipment_id_prefix": {"type": "string", "pattern": SHIPMENT_ID_PREFIX_PATTERN,
                                   "x-format": "letters, digits, ~ _ \\ . -", "default": DEFAULT_PREFIX,
                                   "description": "account prefix put before our reference in shipmentID"},
            "handover_method": {"type": "integer", "enum": [1, 2], "default": 2,
                                "description": "1 drop-off, 2 pickup"},
            "services": services_setting(DEFAULT_SERVICES,
                                         "product codes to quote when the request names none"),
            "rate_card": rate_card_setting([], "quotes (DHL eCommerce Asia has no rate API); empty = the "
                                           "packaged EXAMPLE card"),
            "ioss_field": {
                "type": "string", "pattern": IOSS_FIELD_PATTERN, "default": "remarks",
                "x-format": "a field name, shipmentContents.<field> or empty",
                "description": "UNVERIFIED: where the IOSS number goes: 'remarks' (as 'IOSS <number>'), "
                "another shipmentItem field, 'shipmentContents.<field>', or '' = not sent"},
            "incoterm": {"enum": ["DDP", "DDU"], "default": "DDP", "description": "DDP shipper pays "
                         "duties/taxes (the Amazon norm), DDU consignee pays"},
            "battery_content_indicator": {
                "enum": list(CONTENT_INDICATORS[1:]), "default": "04",
                "description": "UNVERIFIED: shipmentContents.contentIndicator for battery parcels "
                "('00' = no battery is sent otherwise; '04'..'06' rechargeable per one source)"},
            "token_refresh_margin_seconds": {
                "type": "number", "minimum": 0, "default": 1800,
                "description": "fetch a new access token this long before the cached one expires "
                "(at most half its lifetime)"},
            "tracking_batch_size": {
                "type": "integer", "minimum": 1, "maximum": TRACK_BATCH_MAX, "default": TRACK_BATCH_MAX,
                "description": "UNVERIFIED: references per rest/v3/Tracking call (<= 100 per one "
                "integrator)"},
            "max_requests_per_second": {
                **HTTP_PROPERTIES["max_requests_per_second"],
                "description": "UNVERIFIED: client-side pacing, calls spaced evenly at this rate (a generic "
                "DHL eCommerce FAQ answers 429 above 5 calls/s); null = off"},
            "already_cancelled_keywords": keywords_setting(
                ["already deleted"],
                "UNVERIFIED: Label/Delete message words meaning 'this shipmentID is deleted already' "
                "(taken as deleted, not as a refusal)"),
            "tracking_utc_offset_hours": utc_offset_setting(
                "UNVERIFIED: UTC offset of event dateTime values"),
        },
    )

    base_url: str
    client_id: str
    password: Secret
    pickup_account_id: str
    sold_to_account_id: str
    shipment_id_prefix: str
    handover_method: int
    services: tuple[str, ...]
    ioss_field: str
    incoterm: str
    battery_content_indicator: str
    token_refresh_margin_seconds: float
    tracking_batch_size: int
    already_cancelled_keywords: tuple[str, ...]
    tracking_utc_offset_hours: float

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")


# Where DHL eCommerce Asia collects from the seller (handoverMethod 2): EXAMPLE DATA (UNVERIFIED).
# No public source lists its pickup coverage in China; these are the cities it is generally known
# to serve, and Guangdong, where its Shenzhen hub is (anywhere there). Check with DHL before
# relying on it.
PICKUP_CITIES = ("Shenzhen", "Guangzhou", "Dongguan", "Shanghai", "Yiwu", "Hangzhou", "Xiamen")
PICKUP_PROVINCES = ("Guangdong",)
PICKUP = PickupCoverage.listed(PICKUP_CITIES, PICKUP_PROVINCES, source="example data (UNVERIFIED)")
