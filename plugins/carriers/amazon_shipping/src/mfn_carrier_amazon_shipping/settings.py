"""Settings of the ``carriers.amazon_shipping`` section and the Buy Shipping services offered.

Pure data; no I/O. The plugin needs no credentials of its own: it calls the Shipping API v2
through the seller accounts' SP-API clients (``accounts`` in the configuration, handed to the
carrier as ``context.amazon``). Every UNVERIFIED fact that changes what we send (business ids,
carrier ids) is a setting here, its default in the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from connector.kit import CarrierSettings, PickupCoverage, ServiceSpec, settings_schema

from .api import BUSINESS_ID_VALUES, BUSINESS_IDS, DEFAULT_LABEL_SIZE

CHEAPEST = "cheapest"


# Where the services deliver, EXAMPLE DATA (UNVERIFIED): the same list as the carriers' own
# plugins -- every Amazon site country (GB, not UK: ISO codes) plus the other EU/EFTA countries, KR
# and NZ. Amazon answers getRates with the rates it can serve for the order's address anyway.
DESTINATIONS: tuple[str, ...] = (
    "US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE", "SA",
    "EG", "IN", "ZA", "JP", "AU", "SG",  # Amazon's site countries
    "AT", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "GR", "HU", "LV", "LT", "LU", "MT", "PT", "RO", "SK",
    "SI", "CH", "NO", "KR", "NZ",
)


def _service(code: str, name: str, level: str, max_weight_g: int, max_length_cm: int,
             max_dimensions_sum_cm: int) -> ServiceSpec:
    # Amazon decides per rate whether a battery may go (ineligibleRates), so every service takes one
    return ServiceSpec(code, name, level, amazon_shipping_method=name, max_weight_g=max_weight_g,
                       max_length_cm=Decimal(max_length_cm),
                       max_dimensions_sum_cm=Decimal(max_dimensions_sum_cm),
                       destinations=DESTINATIONS, allows_battery=True)


# serviceId -> the Buy Shipping service. The ids are those the plugin's emulator offers
# (sandbox_data.py); Amazon's real serviceIds per carrier are account data (UNVERIFIED): list yours
# under ``services`` and route to them. Limits (weight g, longest side cm, length + width + height
# cm), all UNVERIFIED: a line sold through Buy Shipping carries the limits of the same line in its
# carrier's own plugin (YunExpress AYPZXR/ZXR, China Post EUB/REGISTERED, Yanwen 481, DHL eCommerce
# packets): the typical small-packet 2 kg, 60 cm, 90 cm; DHL's parcel 20 kg, 120 cm, 240 cm. Yanwen
# Direct Line Express has no counterpart there: 5 kg in small-packet sizes. The emulator reads them here.
_SOLD: tuple[ServiceSpec, ...] = (
    _service("YUNEXPRESS_AYPZXR", "YunExpress Global Tracked Line DDP", "fully_tracked", 2000, 60, 90),
    _service("YUNEXPRESS_ZXR", "YunExpress Global Line", "fully_tracked", 2000, 60, 90),
    _service("CHINAPOST_EPACKET", "China Post ePacket", "tracked", 2000, 60, 90),
    _service("CHINAPOST_REGISTERED", "China Post Registered Air Mail", "tracked", 2000, 60, 90),
    _service("YANWEN_SPECIAL_LINE", "Yanwen Special Line Tracked", "fully_tracked", 2000, 60, 90),
    _service("YANWEN_EXPRESS", "Yanwen Direct Line Express", "fully_tracked", 5000, 60, 90),
    _service("DHLEC_PKD", "DHL eCommerce Packet Plus", "fully_tracked", 2000, 60, 90),
    _service("DHLEC_PPS", "DHL eCommerce Parcel Standard", "fully_tracked", 20000, 120, 240),
)
# "cheapest" buys whichever of them Amazon rates cheapest: it takes what the loosest of them takes.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(CHEAPEST, "Cheapest eligible Buy Shipping rate", "tracked",
                amazon_shipping_method="Amazon Buy Shipping (cheapest rate)", allows_battery=True,
                max_weight_g=max(s.max_weight_g or 0 for s in _SOLD),
                max_length_cm=max(s.max_length_cm or Decimal(0) for s in _SOLD),
                max_dimensions_sum_cm=max(s.max_dimensions_sum_cm or Decimal(0) for s in _SOLD),
                destinations=tuple(dict.fromkeys(c for s in _SOLD for c in s.destinations))),
    *_SOLD,
)
SERVICE_SPECS: dict[str, ServiceSpec] = {s.code: s for s in SERVICES}
SERVICE_IDS: tuple[str, ...] = tuple(s.code for s in SERVICES if s.code != CHEAPEST)

# RateItemID values of the Shipping API v2 model (definitions.RateItemID), as of the model this
# plugin ships (spapi_models/shippingV2.json).
RATE_ITEM_IDS: tuple[str, ...] = (
    "BASE_RATE", "TRANSACTION_FEE", "ADULT_SIGNATURE_CONFIRMATION", "SIGNATURE_CONFIRMATION",
    "NO_CONFIRMATION", "WAIVE_SIGNATURE", "IMPLIED_LIABILITY", "HIDDEN_POSTAGE", "DECLARED_VALUE",
    "SUNDAY_HOLIDAY_DELIVERY", "DELIVERY_CONFIRMATION", "IMPORT_DUTY_CHARGE", "VAT", "NO_SATURDAY_DELIVERY",
    "INSURANCE", "COD", "FUEL_SURCHARGE", "INSPECTION_CHARGE", "DELIVERY_AREA_SURCHARGE", "WAYBILL_CHARGE",
    "AMAZON_SPONSORED_DISCOUNT", "INTEGRATOR_SPONSORED_DISCOUNT", "OVERSIZE_SURCHARGE", "CONGESTION_CHARGE",
    "RESIDENTIAL_SURCHARGE", "ADDITIONAL_SURCHARGE", "SURCHARGE", "REBATE", "HIGH_CUBE_SURCHARGE",
    "HIGH_LENGTH_SURCHARGE", "HIGH_WIDTH_SURCHARGE", "DEMAND_SURCHARGE", "NONSTANDARD_FEE",
)
DEFAULT_HANDLING_RATE_ITEMS: tuple[str, ...] = ("TRANSACTION_FEE", "WAYBILL_CHARGE")
"""Rate items taken as the per-parcel handling fee: an UNVERIFIED choice (the model names the
items, not which of them are per parcel)."""

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
        "handling_rate_items": {
            "type": "array",
            "items": {"enum": list(RATE_ITEM_IDS)},
            "uniqueItems": True,
            "default": list(DEFAULT_HANDLING_RATE_ITEMS),
            "description": "UNVERIFIED: the rate's rateItemList entries (rateItemID) that are the fixed "
                           "per-parcel handling part of its price; their sum is the quote's handling fee "
                           "(discounts with handling_percent apply to it, per_kg to the rest)",
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
    handling_rate_items: tuple[str, ...]

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


# Pickup is Amazon's call: getRates is sent with the ship-from address (shipFrom is required) and
# answers only the rates it can serve from there, each with its pickupWindow; a carrier that cannot
# collect there gives no rate, so the quote decides. Source: Amazon's Shipping API v2 model.
PICKUP = PickupCoverage(
    "by_quote",
    source="https://github.com/amzn/selling-partner-api-models/tree/main/models/shipping-api-model",
)
