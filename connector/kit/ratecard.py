"""Rate cards: quotes for carriers that have no rate API, from data (karrio's services.csv idea).

A card is a list of rows; the first row that matches the service, the destination country and
the parcel weight prices it as ``base + per_kg * weight_kg``, rounded to the cent::

    - {service: EUB, countries: "US,CA", max_weight_g: 2000, base: "18.00", per_kg: "95.00",
       currency: CNY, transit_days: 12}
    - {service: EUB, countries: "*", max_weight_g: 2000, base: "25.00", per_kg: "110.00",
       currency: CNY, transit_days: 15}

``countries`` is a comma-separated list of ISO 3166 codes or ``*`` for any. An optional
``origins`` lists the cities the row prices from (the request's ``ship_from.city``, any case;
absent or ``*``: any city), so one card carries each warehouse city's prices. Rows are tried in
order, so put specific countries and origins before ``*``.

A card quote breaks its price down for discounts: ``handling_fee`` is the row's ``base`` (the fixed
per-parcel fee; the rest of the price is the weight charge) and ``chargeable_weight_g`` the weight
it priced. A card has no volumetric divisor or minimum chargeable weight, so that is the parcel's
actual weight.

A plugin whose settings hold a card derives them from :class:`RateCardSettings` and declares the
setting with :func:`rate_card_setting`; :func:`services_setting` declares the services it quotes
when a request names none, and :func:`tracking_levels` maps its ServiceSpecs for the quotes.
"""
from __future__ import annotations

import copy
import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

from ..model import Money, Quote, ShipmentRequest
from .settings import CarrierSettings

if TYPE_CHECKING:
    from .carrier import ServiceSpec

RATE_CARD_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["service", "countries", "max_weight_g", "base", "per_kg", "currency"],
        "properties": {
            "service": {"type": "string", "minLength": 1},
            "countries": {"type": "string", "pattern": r"^(\*|[A-Z]{2}(,[A-Z]{2})*)$",
                          "x-format": "* or comma-separated ISO country codes, e.g. US,CA"},
            "max_weight_g": {"type": "integer", "minimum": 1},
            "base": {"type": ["string", "number"]},
            "per_kg": {"type": ["string", "number"]},
            "currency": {"type": "string", "pattern": r"^[A-Z]{3}$", "x-format": "ISO 4217 code"},
            "transit_days": {"type": "integer", "minimum": 0},
            "origins": {"type": "string", "pattern": r"^(\*|[^,]+(,[^,]+)*)$",
                        "x-format": "* or comma-separated ship-from cities, e.g. Shenzhen,Dongguan"},
        },
    },
}


@dataclass(frozen=True)
class RateRow:
    service: str
    countries: frozenset[str]  # empty = any country
    max_weight_g: int
    base: Decimal
    per_kg: Decimal
    currency: str
    transit_days: int | None = None
    origins: frozenset[str] = frozenset()  # lower-case ship-from cities; empty = any

    def matches(self, service: str, country: str, weight_g: int, origin: str = "") -> bool:
        return (self.service == service and weight_g <= self.max_weight_g
                and (not self.countries or country in self.countries)
                and (not self.origins or origin.strip().lower() in self.origins))

    def price(self, weight_g: int) -> Money:
        amount = self.base + self.per_kg * Decimal(weight_g) / 1000
        return Money(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), self.currency)

    def handling_fee(self) -> Money:
        """The fixed per-parcel part of :meth:`price` (``base``), rounded to the cent."""
        return Money(self.base.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), self.currency)

    def quote(self, carrier_code: str, service: str, weight_g: int, *, tracking_level: str = "") -> Quote:
        """This row's quote for a parcel of ``weight_g``, with its price breakdown: the handling
        fee (``base``) and the chargeable weight (the actual weight: a card knows no volumetric
        divisor or minimum chargeable weight)."""
        return Quote(carrier=carrier_code, service=service, price=self.price(weight_g),
                     transit_days=self.transit_days, tracking_level=tracking_level,
                     handling_fee=self.handling_fee(), chargeable_weight_g=weight_g)


class RateCard:
    def __init__(self, rows: list[RateRow]) -> None:
        self.rows = rows

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> RateCard:
        parsed = []
        for i, row in enumerate(rows):
            try:
                countries = str(row["countries"]).strip()
                parsed.append(RateRow(
                    service=str(row["service"]),
                    countries=frozenset() if countries == "*" else
                    frozenset(c.strip().upper() for c in countries.split(",") if c.strip()),
                    max_weight_g=int(row["max_weight_g"]),
                    base=Decimal(str(row["base"])), per_kg=Decimal(str(row["per_kg"])),
                    currency=str(row["currency"]).upper(),
                    transit_days=int(row["transit_days"]) if row.get("transit_days") not in (None, "")
                    else None,
                    origins=_origins(row.get("origins"))))
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise ValueError(f"rate card row {i + 1}: {type(exc).__name__}: {exc}") from None
        return cls(parsed)

    @classmethod
    def from_setting(cls, rows: Iterable[Mapping[str, Any]], *, where: str) -> RateCard:
        """The card of a ``rate_card`` setting; a bad row is a ValueError naming ``where``."""
        try:
            return cls.from_rows([dict(row) for row in rows])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def services(self) -> list[str]:
        return list(dict.fromkeys(r.service for r in self.rows))

    def quote(self, carrier_code: str, request: ShipmentRequest, *, services: Iterable[str] | None = None,
              tracking_levels: Mapping[str, str] | None = None) -> list[Quote]:
        """One quote per service the card can price for this parcel and destination.

        The services asked for: ``request.service`` when set, else ``services`` (default: every
        service on the card). With ``tracking_levels`` (service -> level, the carrier's
        ServiceSpecs) only those services are quoted, each carrying its level.
        """
        country = request.ship_to.country_code.upper()
        origin = request.ship_from.city
        weight = request.parcel.weight_g
        wanted = [request.service] if request.service else list(services or self.services())
        quotes = []
        for service in wanted:
            if tracking_levels is not None and service not in tracking_levels:
                continue
            row = next((r for r in self.rows if r.matches(service, country, weight, origin)), None)
            if row is not None:
                level = tracking_levels[service] if tracking_levels is not None else ""
                quotes.append(row.quote(carrier_code, service, weight, tracking_level=level))
        return quotes


def _origins(value: Any) -> frozenset[str]:
    text = str(value or "").strip()
    if text in ("", "*"):
        return frozenset()
    return frozenset(city.strip().lower() for city in text.split(",") if city.strip())


def csv_rows(text: str) -> list[dict[str, Any]]:
    """Rate card rows from CSV text, shaped like a ``rate_card`` setting (empty cells dropped,
    whole-number columns as integers), so they validate against :data:`RATE_CARD_SCHEMA`."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        clean: dict[str, Any] = {k: v.strip() for k, v in row.items() if k and v not in (None, "")}
        for key in ("max_weight_g", "transit_days"):
            if key in clean:
                clean[key] = int(clean[key])
        rows.append(clean)
    return rows


def packaged_rows(package: str, resource: str) -> list[dict[str, Any]]:
    """The rows of a rate card CSV shipped inside a plugin package (e.g. its EXAMPLE card)."""
    return csv_rows(resources.files(package).joinpath(resource).read_text(encoding="utf-8"))


def tracking_levels(services: Iterable[ServiceSpec]) -> dict[str, str]:
    """``{service code: tracking level}`` of a carrier's ServiceSpecs, as quotes carry it."""
    return {s.code: s.tracking_level for s in services}


def services_setting(default: Iterable[str], description: str, *,
                     codes: Iterable[str] | None = None) -> dict[str, Any]:
    """Schema of a ``services`` setting: the services to quote when a request names none, at
    least one, each once; ``codes`` limits them to those the carrier knows."""
    items = {"enum": list(codes)} if codes is not None else {"type": "string", "minLength": 1}
    return {"type": "array", "items": items, "uniqueItems": True, "minItems": 1, "default": list(default),
            "description": description}


def rate_card_setting(default: Iterable[Mapping[str, Any]], description: str) -> dict[str, Any]:
    """Schema of a ``rate_card`` setting: :data:`RATE_CARD_SCHEMA` with its default rows."""
    return {**copy.deepcopy(RATE_CARD_SCHEMA), "default": [dict(row) for row in default],
            "description": description}


@dataclass(frozen=True, kw_only=True)
class RateCardSettings(CarrierSettings):
    """Settings with a ``rate_card`` (:func:`rate_card_setting`), e.g. ``class
    AcmeSettings(HttpSettings, RateCardSettings)``. ``card`` is the card the quotes come from,
    built with the settings: a row the schema lets through but that prices nothing (``base:
    "cheap"``) is refused when the section is read, naming the row, not at the first quote.

    ``PACKAGED_RATE_CARD`` (package, resource), when set, is a packaged CSV (:func:`packaged_rows`)
    that an empty ``rate_card`` stands for."""

    PACKAGED_RATE_CARD: ClassVar[tuple[str, str] | None] = None

    rate_card: tuple[dict[str, Any], ...] = field(repr=False)  # no default: it is in the schema
    card: RateCard = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = [dict(row) for row in self.rate_card]
        if not rows and self.PACKAGED_RATE_CARD:
            rows = packaged_rows(*self.PACKAGED_RATE_CARD)
        object.__setattr__(self, "card", RateCard.from_setting(rows, where="rate_card"))
