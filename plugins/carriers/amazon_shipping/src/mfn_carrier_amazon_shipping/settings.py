"""Settings of the ``carriers.amazon_shipping`` section and the Buy Shipping services offered.

Pure data and a resolver; no I/O. The plugin needs no credentials of its own: it calls the
Shipping API v2 through the seller accounts' SP-API clients (``accounts`` in the configuration).
Every UNVERIFIED fact that changes what we send (business ids, carrier ids) is a setting here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.amazon.shipping import BUSINESS_ID_VALUES, BUSINESS_IDS
from connector.carriers import ServiceSpec

CODE = "amazon_shipping"

BUY_SHIPPING_SITES: tuple[str, ...] = ("US", "CA", "UK", "FR", "DE", "IT", "ES", "IN", "MX", "NL", "JP", "BR")
"""DESIGN §7: the sites where Amazon offers Buy Shipping."""

CHEAPEST = "cheapest"

# serviceId -> the Buy Shipping service. The ids are those the sandbox's SP-API emulator offers
# (connector/sandbox/buy_shipping.py); Amazon's real serviceIds per carrier are account data
# (UNVERIFIED): list yours under ``services`` and route to them.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        CHEAPEST,
        "Cheapest eligible Buy Shipping rate",
        "tracked",
        amazon_shipping_method="Amazon Buy Shipping (cheapest rate)",
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "YUNEXPRESS_AYPZXR",
        "YunExpress Global Tracked Line DDP",
        "fully_tracked",
        amazon_shipping_method="YunExpress Global Tracked Line DDP",
        max_weight_g=2500,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "YUNEXPRESS_ZXR",
        "YunExpress Global Line",
        "fully_tracked",
        amazon_shipping_method="YunExpress Global Line",
        max_weight_g=30000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "CHINAPOST_EPACKET",
        "China Post ePacket",
        "tracked",
        amazon_shipping_method="China Post ePacket",
        max_weight_g=2000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "CHINAPOST_REGISTERED",
        "China Post Registered Air Mail",
        "tracked",
        amazon_shipping_method="China Post Registered Air Mail",
        max_weight_g=2000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "YANWEN_SPECIAL_LINE",
        "Yanwen Special Line Tracked",
        "fully_tracked",
        amazon_shipping_method="Yanwen Special Line Tracked",
        max_weight_g=2000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "YANWEN_EXPRESS",
        "Yanwen Direct Line Express",
        "fully_tracked",
        amazon_shipping_method="Yanwen Direct Line Express",
        max_weight_g=5000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "DHLEC_PKD",
        "DHL eCommerce Packet Plus",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Packet Plus",
        max_weight_g=2000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
    ServiceSpec(
        "DHLEC_PPS",
        "DHL eCommerce Parcel Standard",
        "fully_tracked",
        amazon_shipping_method="DHL eCommerce Parcel Standard",
        max_weight_g=20000,
        allows_battery=True,  # Amazon decides per rate (ineligibleRates)
    ),
)
SERVICE_IDS: tuple[str, ...] = tuple(s.code for s in SERVICES if s.code != CHEAPEST)

DEFAULT_CARRIER_IDS: dict[str, str] = {
    "YunExpress": "YUNEXPRESS",
    "Yun Express": "YUNEXPRESS",
    "China Post": "CHINAPOST",
    "Yanwen": "YANWEN",
    "YANWEN": "YANWEN",
    "DHL eCommerce": "DHLEC",
}
"""Order package ``carrier`` (the rate's carrierName) -> the Shipping API carrierId (UNVERIFIED)."""

DEFAULT_TRACKING_PATTERNS: dict[str, str] = {
    "YUNEXPRESS": r"^YT\d{16}$",
    "CHINAPOST": r"^[A-Z]{2}\d{9}CN$",
    "YANWEN": r"^(UG|LX|YW|VR)[A-Z0-9]{9,18}$",
    "DHLEC": r"^GM\d{16,18}$",
}
"""carrierId -> the format of its tracking numbers, to find the carrierId of a number whose
label this process did not buy (``track`` after a restart)."""

DEFAULT_LABEL_SIZE: dict[str, Any] = {"width": 4, "length": 6, "unit": "INCH"}

_SITE_PROPS = {site: {"enum": list(BUSINESS_ID_VALUES)} for site in BUY_SHIPPING_SITES}

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "carriers.amazon_shipping",
    "description": "Amazon Buy Shipping through Shipping API v2, bought with the seller accounts' SP-API "
    "access. Labels bought here confirm the shipment on Amazon by themselves.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "business_ids": {
            "type": "object",
            "additionalProperties": False,
            "properties": _SITE_PROPS,
            "description": "x-amzn-shipping-business-id per site, over the built-in table (US, UK, IN, IT, "
            "ES, FR, JP map to their own value; CA/MX/BR -> AmazonShipping_US and DE/NL -> "
            "AmazonShipping_UK are UNVERIFIED)",
        },
        "default_business_id": {
            "enum": list(BUSINESS_ID_VALUES),
            "default": "AmazonShipping_US",
            "description": "business id for getTracking of a number whose site this process does not know "
            "(after a restart); UNVERIFIED whether getTracking is scoped by it",
        },
        "rate_choice": {
            "enum": ["service", CHEAPEST],
            "default": "service",
            "description": "service: buy the rate whose serviceId is the routed service (the cheapest when "
            "the service is 'cheapest'); cheapest: always the cheapest allowed rate",
        },
        "services": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
            "minItems": 1,
            "default": list(SERVICE_IDS),
            "description": "serviceIds the plugin may buy and quote (the cheapest choice picks among them)",
        },
        "label_format": {
            "enum": ["PDF"],
            "default": "PDF",
            "description": "label document format (the engine stores PDF labels)",
        },
        "label_size": {
            "type": "object",
            "additionalProperties": False,
            "required": ["width", "length", "unit"],
            "properties": {
                "width": {"type": "number", "exclusiveMinimum": 0},
                "length": {"type": "number", "exclusiveMinimum": 0},
                "unit": {"enum": ["INCH", "CENTIMETER"]},
            },
            "default": dict(DEFAULT_LABEL_SIZE),
            "description": "label size; must be one of the rate's supportedDocumentSpecifications",
        },
        "label_dpi": {
            "type": ["integer", "null"],
            "exclusiveMinimum": 0,
            "default": None,
            "description": "label resolution (null: Amazon's default)",
        },
        "reconcile_by_tracking": {
            "type": "boolean",
            "default": True,
            "description": "when the order's packages cannot be proven ours through getShipmentDocuments, "
            "accept the one package getTracking knows as a Shipping API purchase "
            "(see README, reconciliation)",
        },
        "carrier_ids": {
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1},
            "default": dict(DEFAULT_CARRIER_IDS),
            "description": "UNVERIFIED: order package carrier name -> Shipping API carrierId",
        },
        "tracking_patterns": {
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1},
            "default": dict(DEFAULT_TRACKING_PATTERNS),
            "description": "carrierId -> tracking number regex, to track numbers bought by another process",
        },
        "label_cache_size": {
            "type": "integer",
            "minimum": 0,
            "default": 256,
            "description": "labels kept in memory after a purchase (0: always download)",
        },
    },
}


@dataclass(frozen=True)
class AmazonShippingSettings:
    """The section with defaults applied."""

    business_ids: dict[str, str] = field(default_factory=lambda: dict(BUSINESS_IDS))
    default_business_id: str = "AmazonShipping_US"
    rate_choice: str = "service"
    services: tuple[str, ...] = SERVICE_IDS
    label_format: str = "PDF"
    label_size: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LABEL_SIZE))
    label_dpi: int | None = None
    reconcile_by_tracking: bool = True
    carrier_ids: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CARRIER_IDS))
    tracking_patterns: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TRACKING_PATTERNS))
    label_cache_size: int = 256


def resolve_settings(section: dict[str, Any] | None) -> AmazonShippingSettings:
    """Apply defaults to a ``carriers.amazon_shipping`` section (``None``/``{}`` = all defaults).

    The configuration loader validates the section against :data:`SETTINGS_SCHEMA` with
    path-precise errors; this check only guards direct construction (tests, scripts).
    """
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise ValueError("carriers.amazon_shipping: expected a mapping of settings")
    unknown = sorted(set(section) - set(SETTINGS_SCHEMA["properties"]))
    if unknown:
        raise ValueError("carriers.amazon_shipping: unknown setting(s): " + ", ".join(unknown))
    values: dict[str, Any] = {}
    business_ids = dict(BUSINESS_IDS)
    for site, value in (section.get("business_ids") or {}).items():
        if site not in BUY_SHIPPING_SITES or value not in BUSINESS_ID_VALUES:
            raise ValueError(
                f"carriers.amazon_shipping.business_ids.{site}: {value!r} is not a business id "
                f"of a Buy Shipping site"
            )
        business_ids[site] = value
    values["business_ids"] = business_ids
    for key in ("default_business_id", "rate_choice", "label_format"):
        if section.get(key) is not None:
            values[key] = str(section[key])
    if values.get("default_business_id", "AmazonShipping_US") not in BUSINESS_ID_VALUES:
        raise ValueError("carriers.amazon_shipping.default_business_id: not a business id")
    if values.get("rate_choice", "service") not in ("service", CHEAPEST):
        raise ValueError("carriers.amazon_shipping.rate_choice: expected 'service' or 'cheapest'")
    if section.get("services") is not None:
        services = tuple(str(s) for s in section["services"])
        if not services:
            raise ValueError("carriers.amazon_shipping.services: list at least one serviceId")
        values["services"] = services
    if section.get("label_size") is not None:
        values["label_size"] = dict(section["label_size"])
    if section.get("label_dpi") is not None:
        values["label_dpi"] = int(section["label_dpi"])
    if section.get("reconcile_by_tracking") is not None:
        values["reconcile_by_tracking"] = bool(section["reconcile_by_tracking"])
    for key, default in (
        ("carrier_ids", DEFAULT_CARRIER_IDS),
        ("tracking_patterns", DEFAULT_TRACKING_PATTERNS),
    ):
        if section.get(key) is not None:
            values[key] = {**default, **{str(k): str(v) for k, v in section[key].items()}}
    if section.get("label_cache_size") is not None:
        values["label_cache_size"] = int(section["label_cache_size"])
    return AmazonShippingSettings(**values)
