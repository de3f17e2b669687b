"""Settings of the ``carriers.dhl_ecommerce`` section and the services the plugin offers.

Pure data and a resolver; no I/O. Facts the reference pack marks UNVERIFIED that change what we
send are settings here (see the README).
"""

from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

from connector.carriers import ServiceSpec
from connector.ratecard import RATE_CARD_SCHEMA

# Product codes for CN origin (the DHL eCommerce WooCommerce plugin's tables).
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
)
DEFAULT_SERVICES: tuple[str, ...] = tuple(s.code for s in SERVICES)
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
            "pattern": r"^[A-Za-z0-9]*$",
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
            "pattern": r"^[A-Za-z0-9]*$",
            "default": "remarks",
            "description": "UNVERIFIED: shipmentItem field carrying the IOSS number; '' = not sent",
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
    """The packaged example rate card (EXAMPLE prices, not a DHL tariff)."""
    text = resources.files(__package__).joinpath(EXAMPLE_RATE_CARD).read_text(encoding="utf-8")
    return [
        {k: v for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(io.StringIO(text))
    ]


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
            continue
        if key == "services":
            value = tuple(str(v) for v in value)
        elif key == "rate_card":
            value = tuple(dict(row) for row in value)
        elif key in ("timeout_seconds", "connect_timeout_seconds", "tracking_utc_offset_hours"):
            value = float(value)
        elif key == "handover_method":
            value = int(value)
            if value not in (1, 2):
                raise ValueError(f"carriers.dhl_ecommerce: handover_method must be 1 or 2, got {value}")
        else:
            value = str(value)
        values[key] = value
    return DhlEcommerceSettings(**values)
