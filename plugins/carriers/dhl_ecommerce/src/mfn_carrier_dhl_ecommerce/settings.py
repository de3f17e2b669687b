"""Settings of the ``carriers.dhl_ecommerce`` section and the services the plugin offers.

Pure data and a resolver; no I/O. Facts the reference pack marks UNVERIFIED that change what we
send are settings here (see the README).
"""

from __future__ import annotations

import copy
import csv
import io
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from connector.carriers import ServiceSpec
from connector.ratecard import RATE_CARD_SCHEMA

# Product codes for CN origin (the DHL eCommerce WooCommerce plugin's tables, reference/carriers.md
# section 4). Tracking levels: "Packet Plus" and "Parcel" products are tracked to the door
# (fully_tracked); "Packet" products get origin/line-haul scans only (tracked); "Packet Economy"
# is untracked. Weight limits: 2 kg for packets (UPU small-packet limit), 20 kg for parcels;
# battery acceptance per product: all UNVERIFIED (account-specific), see the README.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "PPM",
        "Packet Plus International Priority Manifest",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Packet Plus",
        max_weight_g=2000,
        allows_battery=True,
    ),
    ServiceSpec(
        "PKD",
        "Packet International Standard",
        "tracked",
        amazon_shipping_method="DHL eCommerce Packet",
        max_weight_g=2000,
    ),
    ServiceSpec(
        "PLT",
        "Parcel International Direct Standard",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Parcel Direct",
        max_weight_g=20000,
        allows_battery=True,
    ),
    ServiceSpec(
        "PPS",
        "Packet Plus International Standard",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Packet Plus Standard",
        max_weight_g=2000,
        allows_battery=True,
    ),
    ServiceSpec(
        "PKM",
        "Packet International Priority Manifest",
        "tracked",
        amazon_shipping_method="DHL eCommerce Packet Priority",
        max_weight_g=2000,
    ),
    ServiceSpec(
        "PLE",
        "Parcel International Direct Expedited",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Parcel Direct Expedited",
        max_weight_g=20000,
        allows_battery=True,
    ),
    ServiceSpec(
        "PLD",
        "Parcel International Standard",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Parcel International",
        max_weight_g=20000,
        allows_battery=True,
    ),
    ServiceSpec(
        "PKW",
        "Parcel International Direct Semi",
        "tracked",
        amazon_shipping_method="DHL eCommerce Parcel Direct Semi",
        max_weight_g=20000,
    ),
    ServiceSpec(
        "PKG",
        "Packet International Economy",
        "untracked",
        amazon_shipping_method="DHL eCommerce Packet Economy",
        max_weight_g=2000,
    ),
)
# Quoted when the request names no service (the example rate card prices these three).
DEFAULT_SERVICES: tuple[str, ...] = ("PPM", "PKD", "PLT")
BATTERY_SERVICES: frozenset[str] = frozenset(s.code for s in SERVICES if s.allows_battery)

AMAZON_CARRIER_CODE = "DHL eCommerce"
# Same as the SP-API emulator's TRACKING_FORMATS["DHL eCommerce"]; the emulator issues 16 digits
# like the captured responses ("7027018415475994").
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
# references must never map to one shipmentID).
SHIPMENT_ID_PATTERN = r"^[A-Za-z0-9~_\\.\-]+$"
# ioss_field: "" (not sent), an item-level field name ("remarks", "customerReference2", ...) or
# "shipmentContents.<name>" (on every customs line).
IOSS_FIELD_PATTERN = r"^$|^(shipmentContents\.)?[A-Za-z][A-Za-z0-9]*$"
CONTENT_INDICATORS = ("00", "01", "02", "03", "04", "05", "06")

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "carriers.dhl_ecommerce",
    "description": "DHL eCommerce Asia-Pacific REST API (label, reprint, delete, tracking).",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url"],
    "properties": {
        "base_url": {
            "type": "string",
            "minLength": 1,
            "pattern": "^https?://",
            "description": f"API origin: {PRODUCTION_URL} (pre-prod https://apitest.dhlecommerce.asia, "
            "sandbox https://sandbox.dhlecommerce.asia; emulator "
            "${MFN_SANDBOX_DHL_ECOMMERCE})",
        },
        "client_id": {"type": "string", "minLength": 1, "default": SANDBOX_CLIENT_ID},
        "password": {
            "type": "string",
            "minLength": 1,
            "x-secret": True,
            "default": SANDBOX_PASSWORD,
            "description": "API password; only sent to the token endpoint, never logged",
        },
        "pickup_account_id": {"type": "string", "minLength": 1, "default": SANDBOX_ACCOUNT},
        "sold_to_account_id": {"type": "string", "minLength": 1, "default": SANDBOX_ACCOUNT},
        "shipment_id_prefix": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9~_\\.\-]*$",
            "default": DEFAULT_PREFIX,
            "description": "account prefix put before our reference in shipmentID",
        },
        "handover_method": {
            "type": "integer",
            "enum": [1, 2],
            "default": 2,
            "description": "1 drop-off, 2 pickup",
        },
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        "services": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
            "minItems": 1,
            "default": list(DEFAULT_SERVICES),
            "description": "product codes to quote when the request names none",
        },
        "rate_card": {
            **copy.deepcopy(RATE_CARD_SCHEMA),
            "description": "quotes (DHL eCommerce Asia has no rate API); unset = the packaged EXAMPLE card",
        },
        "ioss_field": {
            "type": "string",
            "pattern": IOSS_FIELD_PATTERN,
            "default": "remarks",
            "description": "UNVERIFIED: where the IOSS number goes: 'remarks' (as 'IOSS <number>'), "
            "another shipmentItem field, 'shipmentContents.<field>', or '' = not sent",
        },
        "incoterm": {
            "enum": ["DDP", "DDU"],
            "default": "DDP",
            "description": "DDP shipper pays duties/taxes (the Amazon norm), DDU consignee pays",
        },
        "battery_content_indicator": {
            "enum": list(CONTENT_INDICATORS[1:]),
            "default": "04",
            "description": "UNVERIFIED: shipmentContents.contentIndicator for battery parcels "
            "('00' = no battery is sent otherwise; '04'..'06' rechargeable per one source)",
        },
        "token_refresh_margin_seconds": {
            "type": "number",
            "minimum": 0,
            "default": 1800,
            "description": "fetch a new access token this long before the cached one expires "
            "(at most half its lifetime)",
        },
        "tracking_batch_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": TRACK_BATCH_MAX,
            "default": TRACK_BATCH_MAX,
            "description": "UNVERIFIED: references per rest/v3/Tracking call (<= 100 per one integrator)",
        },
        "max_requests_per_second": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "default": None,
            "description": "UNVERIFIED: client-side pacing (a generic DHL eCommerce FAQ answers 429 "
            "above 5 calls/s); null = off",
        },
        "tracking_utc_offset_hours": {
            "type": "number",
            "minimum": -12,
            "maximum": 14,
            "default": 8,
            "description": "UNVERIFIED: UTC offset of event dateTime values",
        },
    },
}


def example_rate_card_rows() -> list[dict[str, Any]]:
    """The packaged example rate card (EXAMPLE prices, not a DHL tariff), as rows that validate
    against ``RATE_CARD_SCHEMA`` (what a ``rate_card`` setting holds)."""
    text = resources.files(__package__).joinpath(EXAMPLE_RATE_CARD).read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        clean: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
        for key in ("max_weight_g", "transit_days"):
            if key in clean:
                clean[key] = int(clean[key])
        rows.append(clean)
    return rows


@dataclass(frozen=True)
class DhlEcommerceSettings:
    """The section with defaults applied; the password is kept out of ``repr``."""

    base_url: str
    client_id: str = SANDBOX_CLIENT_ID
    password: str = SANDBOX_PASSWORD
    pickup_account_id: str = SANDBOX_ACCOUNT
    sold_to_account_id: str = SANDBOX_ACCOUNT
    shipment_id_prefix: str = DEFAULT_PREFIX
    handover_method: int = 2
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    services: tuple[str, ...] = DEFAULT_SERVICES
    rate_card: tuple[dict[str, Any], ...] = ()
    ioss_field: str = "remarks"
    incoterm: str = "DDP"
    battery_content_indicator: str = "04"
    token_refresh_margin_seconds: float = 1800.0
    tracking_batch_size: int = TRACK_BATCH_MAX
    max_requests_per_second: float | None = None
    tracking_utc_offset_hours: float = 8.0

    def __repr__(self) -> str:
        return (
            f"DhlEcommerceSettings(base_url={self.base_url!r}, client_id={self.client_id!r}, password='***')"
        )

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def timeouts(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.timeout_seconds)

    def rate_card_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rate_card] if self.rate_card else example_rate_card_rows()


def resolve_settings(section: dict[str, Any]) -> DhlEcommerceSettings:
    """Apply defaults to a ``carriers.dhl_ecommerce`` section (the loader validates the schema)."""
    if not isinstance(section, dict):
        raise ValueError("carriers.dhl_ecommerce: expected a mapping of settings")
    if not str(section.get("base_url") or "").strip():
        raise ValueError("carriers.dhl_ecommerce: missing required setting(s): base_url")
    unknown = sorted(set(section) - set(SETTINGS_SCHEMA["properties"]))
    if unknown:
        raise ValueError("carriers.dhl_ecommerce: unknown setting(s): " + ", ".join(unknown))
    values: dict[str, Any] = {}
    for key, value in section.items():
        if value is None:
            continue  # null = the default (for max_requests_per_second: off)
        if key == "services":
            value = tuple(str(v) for v in value)
        elif key == "rate_card":
            value = tuple(dict(row) for row in value)
        elif key in (
            "timeout_seconds",
            "connect_timeout_seconds",
            "tracking_utc_offset_hours",
            "token_refresh_margin_seconds",
            "max_requests_per_second",
        ):
            value = float(value)
        elif key == "tracking_batch_size":
            value = int(value)
            if not 1 <= value <= TRACK_BATCH_MAX:
                raise ValueError(f"carriers.dhl_ecommerce: tracking_batch_size must be 1-{TRACK_BATCH_MAX}")
        elif key == "handover_method":
            value = int(value)
            if value not in (1, 2):
                raise ValueError(f"carriers.dhl_ecommerce: handover_method must be 1 or 2, got {value}")
        else:
            value = str(value)
        values[key] = value
    prefix = values.get("shipment_id_prefix", "")
    if prefix and not re.fullmatch(SHIPMENT_ID_PATTERN, prefix):
        raise ValueError(
            f"carriers.dhl_ecommerce: shipment_id_prefix {prefix!r} has characters "
            "shipmentID does not allow (letters, digits, ~ _ \\ . -)"
        )
    if not re.fullmatch(IOSS_FIELD_PATTERN, values.get("ioss_field", "remarks")):
        raise ValueError(
            f"carriers.dhl_ecommerce: ioss_field {values['ioss_field']!r} is not a field "
            "name or shipmentContents.<field>"
        )
    return DhlEcommerceSettings(**values)
