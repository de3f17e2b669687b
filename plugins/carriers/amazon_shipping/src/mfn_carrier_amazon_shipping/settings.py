"""Settings of the ``carriers.amazon_shipping`` section and the Buy Shipping services offered.

Pure data; no I/O. The plugin needs no credentials of its own: it calls the Shipping API v2
through the seller accounts' SP-API clients (``accounts`` in the configuration, handed to the
carrier as ``context.amazon``). Every UNVERIFIED fact that changes what we send (business ids,
carrier ids) is a setting here, its default in the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from connector.kit import CarrierSettings, ServiceSpec, settings_schema

from .api import BUSINESS_ID_VALUES, BUSINESS_IDS, DEFAULT_LABEL_SIZE

CHEAPEST = "cheapest"


def _service(code: str, name: str, level: str, max_weight_g: int | None) -> ServiceSpec:
    # Amazon decides per rate whether a battery may go (ineligibleRates), so every service takes one
    return ServiceSpec(code, name, level, amazon_shipping_method=name, max_weight_g=max_weight_g,
                       allows_battery=True)


# serviceId -> the Buy Shipping service. The ids are those the plugin's emulator offers
# (sandbox_data.py); Amazon's real serviceIds per carrier are account data (UNVERIFIED): list yours
# under ``services`` and route to them.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(CHEAPEST, "Cheapest eligible Buy Shipping rate", "tracked",
                amazon_shipping_method="Amazon Buy Shipping (cheapest rate)", allows_battery=True),
    _service("YUNEXPRESS_AYPZXR", "YunExpress Global Tracked Line DDP", "fully_tracked", 2500),
    _service("YUNEXPRESS_ZXR", "YunExpress Global Line", "fully_tracked", 30000),
    _service("CHINAPOST_EPACKET", "China Post ePacket", "tracked", 2000),
    _service("CHINAPOST_REGISTERED", "China Post Registered Air Mail", "tracked", 2000),
    _service("YANWEN_SPECIAL_LINE", "Yanwen Special Line Tracked", "fully_tracked", 2000),
    _service("YANWEN_EXPRESS", "Yanwen Direct Line Express", "fully_tracked", 5000),
    _service("DHLEC_PKD", "DHL eCommerce Packet Plus", "fully_tracked", 2000),
    _service("DHLEC_PPS", "DHL eCommerce Parcel Standard", "fully_tracked", 20000),
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


def _map_with_defaults(defaults: dict[str, str], description: str) -> dict[str, Any]:
    """An object whose listed keys default to ``defaults`` (a section adds to or changes them)."""
    text = {"type": "string", "minLength": 1}
    return {"type": "object", "default": {}, "description": description,
            "properties": {key: {**text, "default": value} for key, value in defaults.items()},
            "additionalProperties": text}


SCHEMA: dict[str, Any] = settings_schema(
    "carriers.amazon_shipping",
    http=False,
    description="Amazon Buy Shipping through Shipping API v2, bought with the seller accounts' SP-API "
                "access. Labels bought here confirm the shipment on Amazon by themselves.",
    properties={
        "business_ids": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {site: {"enum": list(BUSINESS_ID_VALUES), "default": value}
                           for site, value in BUSINESS_IDS.items()},
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
        "carrier_ids": _map_with_defaults(
            DEFAULT_CARRIER_IDS, "UNVERIFIED: order package carrier name -> Shipping API carrierId, over "
                                 "the built-in table"),
        "tracking_patterns": _map_with_defaults(
            DEFAULT_TRACKING_PATTERNS, "carrierId -> tracking number regex, to track numbers bought by "
                                       "another process, over the built-in table"),
        "label_cache_size": {
            "type": "integer",
            "minimum": 0,
            "default": 256,
            "description": "labels kept in memory after a purchase (0: always download)",
        },
    },
)


@dataclass(frozen=True, kw_only=True)
class AmazonShippingSettings(CarrierSettings):
    """The ``carriers.amazon_shipping`` section, typed, with the schema's defaults applied."""

    SCHEMA: ClassVar[dict[str, Any]] = SCHEMA

    business_ids: dict[str, str]
    default_business_id: str
    rate_choice: str
    services: tuple[str, ...]
    label_format: str
    label_size: dict[str, Any]
    label_dpi: int | None
    reconcile_by_tracking: bool
    carrier_ids: dict[str, str]
    tracking_patterns: dict[str, str]
    label_cache_size: int

    def __post_init__(self) -> None:
        bad = []
        for carrier_id, pattern in self.tracking_patterns.items():
            try:
                re.compile(pattern)
            except re.error:
                bad.append(carrier_id)
        if bad:
            raise ValueError(f"tracking_patterns: not a regular expression for {', '.join(sorted(bad))}")
        unknown = sorted({cid for cid in self.carrier_ids.values()} - set(self.tracking_patterns))
        if unknown:
            raise ValueError(f"carrier_ids: carrierId(s) {', '.join(unknown)} have no tracking_patterns "
                             "entry (track() could not tell their numbers apart)")
