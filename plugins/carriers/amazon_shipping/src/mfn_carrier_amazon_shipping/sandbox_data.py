"""Data and pure helpers behind the Buy Shipping emulator (:mod:`.sandbox`).

The rate card is example data, not Amazon's prices: four China cross-border carriers (YunExpress,
China Post, Yanwen, DHL eCommerce) offered as Buy Shipping services, with a different selection,
currency, price level and (for Yanwen on the EU-region sites) carrier spelling per site, so that
a client cannot assume one answer everywhere. Everything here is deterministic.

Tracking numbers follow the formats the SP-API emulator's confirmShipment checks
(``SpApiEmulator.TRACKING_FORMATS``): YunExpress ``YT`` + 16 digits, China Post a UPU S10 number
posted in China with a valid check digit, Yanwen ``UG`` + 9 digits + ``YP``, DHL eCommerce
``GM`` + 18 digits.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    DELIVERED,
    DELIVERY_FACILITY,
    DELIVERY_FAILED,
    DEPARTED,
    INFO_RECEIVED,
    OUT_FOR_DELIVERY,
    RETURNED,
    RETURNING,
    ParcelLife,
)

from .api import BUSINESS_ID_VALUES as _BUSINESS_ID_VALUES
from .settings import SERVICE_SPECS

BUY_SHIPPING_SITES: tuple[str, ...] = ("US", "CA", "UK", "FR", "DE", "IT", "ES", "IN", "MX", "NL", "JP", "BR")
"""The sites the emulator sells Buy Shipping on (those the connector's Amazon site rules mark as
offering it); orders of any other site are refused."""

# The model's purchaseShipment description: "You must complete the purchase within 10 minutes of
# rate creation", else the error code TOKEN_EXPIRED.
TOKEN_TTL = timedelta(minutes=10)

BUSINESS_ID_VALUES: frozenset[str] = frozenset(_BUSINESS_ID_VALUES)
DEFAULT_BUSINESS_ID = "AmazonShipping_UK"  # what Amazon assumes when the header is missing (the model)

_EU_BUSINESSES = frozenset({"AmazonShipping_UK", "AmazonShipping_FR", "AmazonShipping_IT",
                            "AmazonShipping_ES"})
ACCEPTED_BUSINESS_IDS: dict[str, frozenset[str]] = {
    "US": frozenset({"AmazonShipping_US"}),
    "CA": frozenset({"AmazonShipping_US"}),
    "MX": frozenset({"AmazonShipping_US"}),
    "BR": frozenset({"AmazonShipping_US"}),
    "UK": frozenset({"AmazonShipping_UK"}),
    "FR": frozenset({"AmazonShipping_FR"}),
    "IT": frozenset({"AmazonShipping_IT"}),
    "ES": frozenset({"AmazonShipping_ES"}),
    "DE": _EU_BUSINESSES,
    "NL": _EU_BUSINESSES,
    "IN": frozenset({"AmazonShipping_IN"}),
    "JP": frozenset({"AmazonShipping_JP"}),
}
"""Site -> the x-amzn-shipping-business-id values the emulator accepts for its orders.

The emulator's stand-in for an UNVERIFIED fact: the header's enum has no CA/MX/BR/DE/NL value,
so the NA sites take the US business and DE/NL any EU one. A US order sent without the header
(= AmazonShipping_UK) is refused: the mistake the header's UK default invites.
"""


@dataclass(frozen=True)
class Service:
    service_id: str
    carrier_id: str
    name: str
    base_usd: Decimal  # per parcel
    per_100g_usd: Decimal
    transit_days: int

    # The limits are the plugin's ServiceSpec's (settings.SERVICES): one source for the client's
    # rules and this emulator.
    @property
    def max_weight_g(self) -> int:
        return SERVICE_SPECS[self.service_id].max_weight_g or 0

    @property
    def destinations(self) -> tuple[str, ...]:
        return SERVICE_SPECS[self.service_id].destinations


CARRIER_NAMES: dict[str, str] = {
    "YUNEXPRESS": "YunExpress",
    "CHINAPOST": "China Post",
    "YANWEN": "Yanwen",
    "DHLEC": "DHL eCommerce",
}
"""carrierId -> carrierName (the name also becomes the order package's ``carrier``)."""

SERVICES: dict[str, Service] = {
    s.service_id: s
    for s in (
        Service("YUNEXPRESS_AYPZXR", "YUNEXPRESS", "YunExpress Global Tracked Line DDP", Decimal("2.60"),
                Decimal("0.85"), 9),
        Service("YUNEXPRESS_ZXR", "YUNEXPRESS", "YunExpress Global Line", Decimal("3.20"), Decimal("0.95"),
                8),
        Service("CHINAPOST_EPACKET", "CHINAPOST", "China Post ePacket", Decimal("1.90"), Decimal("0.75"), 14),
        Service("CHINAPOST_REGISTERED", "CHINAPOST", "China Post Registered Air Mail", Decimal("2.40"),
                Decimal("0.90"), 20),
        Service("YANWEN_SPECIAL_LINE", "YANWEN", "Yanwen Special Line Tracked", Decimal("2.20"),
                Decimal("0.80"), 11),
        Service("YANWEN_EXPRESS", "YANWEN", "Yanwen Direct Line Express", Decimal("3.00"), Decimal("1.00"),
                8),
        Service("DHLEC_PKD", "DHLEC", "DHL eCommerce Packet Plus", Decimal("3.50"), Decimal("1.05"), 7),
        Service("DHLEC_PPS", "DHLEC", "DHL eCommerce Parcel Standard", Decimal("4.20"), Decimal("1.10"), 9),
    )
}


@dataclass(frozen=True)
class SiteCard:
    currency: str
    per_usd: Decimal  # site currency units per USD
    factor: Decimal  # the site's price level
    decimals: int
    services: tuple[str, ...]  # serviceIds offered on the site, the others are NO_COVERAGE
    label_sizes: tuple[tuple[float, float, str], ...]  # (width, length, unit) PDF label sizes
    origin: tuple[str, str, str]  # (city, stateOrRegion, countryCode) of the first scans


_INCH = ((4.0, 6.0, "INCH"),)
_BOTH = ((4.0, 6.0, "INCH"), (10.0, 15.0, "CENTIMETER"))
_SZ = ("Shenzhen", "Guangdong", "CN")
_GZ = ("Guangzhou", "Guangdong", "CN")
_YW = ("Yiwu", "Zhejiang", "CN")

SITE_CARDS: dict[str, SiteCard] = {
    "US": SiteCard("USD", Decimal("1"), Decimal("1.00"), 2, tuple(SERVICES), _INCH, _SZ),
    "CA": SiteCard("CAD", Decimal("1.37"), Decimal("1.10"), 2,
                   ("YUNEXPRESS_AYPZXR", "CHINAPOST_EPACKET", "YANWEN_SPECIAL_LINE", "DHLEC_PKD"),
                   _INCH, _SZ),
    "MX": SiteCard("MXN", Decimal("17"), Decimal("1.15"), 2,
                   ("YUNEXPRESS_AYPZXR", "CHINAPOST_REGISTERED", "DHLEC_PPS"), _INCH, _GZ),
    "BR": SiteCard("BRL", Decimal("5.5"), Decimal("1.25"), 2, ("CHINAPOST_REGISTERED", "YUNEXPRESS_ZXR"),
                   _INCH, _GZ),
    "UK": SiteCard("GBP", Decimal("0.79"), Decimal("1.00"), 2,
                   ("YUNEXPRESS_AYPZXR", "YUNEXPRESS_ZXR", "CHINAPOST_REGISTERED", "YANWEN_SPECIAL_LINE",
                    "DHLEC_PKD"), _BOTH, _SZ),
    "DE": SiteCard("EUR", Decimal("0.92"), Decimal("1.00"), 2,
                   ("YUNEXPRESS_AYPZXR", "CHINAPOST_REGISTERED", "YANWEN_SPECIAL_LINE", "YANWEN_EXPRESS",
                    "DHLEC_PKD", "DHLEC_PPS"), _BOTH, _YW),
    "FR": SiteCard("EUR", Decimal("0.92"), Decimal("1.05"), 2,
                   ("YUNEXPRESS_AYPZXR", "CHINAPOST_REGISTERED", "YANWEN_SPECIAL_LINE", "DHLEC_PKD"),
                   _BOTH, _YW),
    "IT": SiteCard("EUR", Decimal("0.92"), Decimal("1.08"), 2,
                   ("YUNEXPRESS_AYPZXR", "CHINAPOST_REGISTERED", "YANWEN_SPECIAL_LINE"), _BOTH, _YW),
    "ES": SiteCard("EUR", Decimal("0.92"), Decimal("1.06"), 2,
                   ("YUNEXPRESS_AYPZXR", "CHINAPOST_REGISTERED", "YANWEN_SPECIAL_LINE", "DHLEC_PKD"),
                   _BOTH, _YW),
    "NL": SiteCard("EUR", Decimal("0.92"), Decimal("1.02"), 2,
                   ("YUNEXPRESS_AYPZXR", "YANWEN_SPECIAL_LINE", "DHLEC_PKD"), _BOTH, _SZ),
    "IN": SiteCard("INR", Decimal("84"), Decimal("0.90"), 2, ("CHINAPOST_REGISTERED", "DHLEC_PPS"),
                   _BOTH, _GZ),
    "JP": SiteCard("JPY", Decimal("150"), Decimal("0.95"), 0,
                   ("YUNEXPRESS_AYPZXR", "YUNEXPRESS_ZXR", "CHINAPOST_EPACKET", "YANWEN_EXPRESS"),
                   _BOTH, _SZ),
}

_EU_REGION = frozenset({"UK", "DE", "FR", "IT", "ES", "NL", "IN"})


def carrier_name(carrier_id: str, site: str) -> str:
    """The carrierName shown on ``site`` (Yanwen is spelt ``YANWEN`` on the EU-region sites, as in
    the SP-API emulator's confirmShipment carrier codes)."""
    if carrier_id == "YANWEN" and site in _EU_REGION:
        return "YANWEN"
    return CARRIER_NAMES[carrier_id]


def grams(weight: dict[str, Any]) -> float:
    """A Shipping v2 ``Weight`` in grams."""
    factor = {"GRAM": 1.0, "KILOGRAM": 1000.0, "OUNCE": 28.349523125, "POUND": 453.59237}[weight["unit"]]
    return float(weight["value"]) * factor


def price(service: Service, site: str, weight_g: float) -> Decimal:
    """The service's total charge on ``site`` in the site's currency (deterministic)."""
    card = SITE_CARDS[site]
    steps = max(1, math.ceil(weight_g / 100))
    usd = service.base_usd + service.per_100g_usd * steps
    quantum = Decimal(1).scaleb(-card.decimals)
    return (usd * card.per_usd * card.factor).quantize(quantum, rounding=ROUND_HALF_UP)


def billed_weight_g(weight_g: float) -> int:
    """The weight :func:`price` charges: whole 100 g steps, at least one."""
    return 100 * max(1, math.ceil(weight_g / 100))


def handling(service: Service, site: str) -> Decimal:
    """The per-parcel part of :func:`price` (``base_usd`` on the site), shown as the rate's
    TRANSACTION_FEE item; the rest of the price is its BASE_RATE item."""
    card = SITE_CARDS[site]
    quantum = Decimal(1).scaleb(-card.decimals)
    return (service.base_usd * card.per_usd * card.factor).quantize(quantum, rounding=ROUND_HALF_UP)


def money_number(amount: Decimal) -> float | int:
    """A ``Currency.value`` (a JSON number): int for whole amounts, else float."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


# -- tracking numbers --------------------------------------------------------------------------


def s10_check_digit(serial: str) -> int:
    """UPU S10 check digit of an 8-digit serial number."""
    weights = (8, 6, 4, 2, 3, 5, 9, 7)
    total = sum(int(d) * w for d, w in zip(serial, weights, strict=True))
    check = 11 - total % 11
    return 5 if check == 11 else 0 if check == 10 else check


def tracking_number(carrier_id: str, rng: random.Random) -> str:
    """A tracking number in the carrier's format."""
    if carrier_id == "YUNEXPRESS":
        return "YT" + "".join(str(rng.randrange(10)) for _ in range(16))
    if carrier_id == "CHINAPOST":
        serial = f"{rng.randrange(10**8):08d}"
        return f"{rng.choice(('LK', 'LX', 'RB', 'UA'))}{serial}{s10_check_digit(serial)}CN"
    if carrier_id == "YANWEN":
        return f"UG{rng.randrange(10**9):09d}YP"
    if carrier_id == "DHLEC":
        return "GM" + "".join(str(rng.randrange(10)) for _ in range(18))
    raise KeyError(carrier_id)


# -- tracking timeline -------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# How each step of a parcel's life (connector.kit.sandbox step kinds) reads in getTracking:
# [(seconds after the step, eventCode, shipmentType or None)]. Kinds without an entry are not
# shown. The way back is the RETURNS leg (shipmentType RETURNS), its "Delivered" the arrival back
# at the sender.
TRACKING_EVENTS: dict[str, tuple[tuple[int, str, str | None], ...]] = {
    INFO_RECEIVED: ((0, "ReadyForReceive", None),),
    ACCEPTED: ((0, "PickupDone", None),),
    DEPARTED: ((0, "Departed", None),),
    ARRIVED: ((0, "ArrivedAtCarrierFacility", None),),
    DELIVERY_FACILITY: ((0, "ArrivedAtCarrierFacility", None),),
    OUT_FOR_DELIVERY: ((0, "OutForDelivery", None),),
    DELIVERED: ((0, "Delivered", None),),
    DELIVERY_FAILED: ((0, "DeliveryAttempted", None),),
    RETURNING: ((0, "Undeliverable", None), (3600, "ReturnInitiated", "RETURNS"),
                (7200, "Departed", "RETURNS")),
    RETURNED: ((0, "Delivered", "RETURNS"),),
}
# The summary status after an event (forward leg; any RETURNS event: Undeliverable) and its
# detail codes.
_STATUS_OF = {
    "ReadyForReceive": "PreTransit",
    "PickupDone": "InTransit",
    "Departed": "InTransit",
    "ArrivedAtCarrierFacility": "InTransit",
    "OutForDelivery": "OutForDelivery",
    "Delivered": "Delivered",
    "DeliveryAttempted": "DeliveryAttempted",
    "Undeliverable": "Undeliverable",
    "PickupCancelled": "PickupCancelled",
}
_DETAIL_CODES = {"DeliveryAttempted": ["CustomerUnavailable"], "Undeliverable": ["Undeliverable"],
                 "Delivered": ["Signed"]}


def tracking_events(life: ParcelLife, *, now: datetime, site: str,
                    destination: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The ``eventHistory`` up to ``now`` (oldest first) and the ``summary`` of a shipment whose
    parcel lives ``life`` (:class:`connector.kit.sandbox.ParcelLife`; a cancelled shipment's life
    ends with ``PickupCancelled``). Times in UTC."""
    city, state, country = SITE_CARDS[site].origin
    origin = {"city": city, "stateOrRegion": state, "countryCode": country}
    there = {"countryCode": destination}
    events: list[dict[str, Any]] = []
    for step in life.steps(now):
        for offset, code, leg in TRACKING_EVENTS.get(step.kind, ()):
            when = step.at + timedelta(seconds=offset)
            if when > now:
                continue
            event: dict[str, Any] = {"eventCode": code, "eventTime": _iso(when),
                                     "location": dict(origin if step.leg == "origin" else there)}
            if leg:
                event["shipmentType"] = leg
            events.append(event)
    cancelled = life.cancelled_at
    if cancelled is not None and cancelled <= now:
        events.append({"eventCode": "PickupCancelled", "eventTime": _iso(cancelled),
                       "location": dict(origin)})
    forward = [e["eventCode"] for e in events if "shipmentType" not in e]
    status = _STATUS_OF.get(forward[-1], "InTransit") if forward else "PreTransit"
    if any(e.get("shipmentType") == "RETURNS" for e in events):
        status = "Undeliverable"
    summary: dict[str, Any] = {"status": status}
    detail = _DETAIL_CODES.get(forward[-1] if forward else "")
    if detail:
        summary["trackingDetailCodes"] = {"forward": list(detail), "returns": []}
    return events, summary
