"""Rate cards: quotes for carriers that have no rate API, from data (karrio's services.csv idea).

A card is a list of rows; the first row that matches the service, the destination country and
the parcel weight prices it as ``base + per_kg * weight_kg``, rounded to the cent::

    - {service: EUB, countries: "US,CA", max_weight_g: 2000, base: "18.00", per_kg: "95.00",
       currency: CNY, transit_days: 12}
    - {service: EUB, countries: "*", max_weight_g: 2000, base: "25.00", per_kg: "110.00",
       currency: CNY, transit_days: 15}

``countries`` is a comma-separated list of ISO 3166 codes or ``*`` for any. Rows are tried in
order, so put specific countries before ``*``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from .model import Money, Quote, ShipmentRequest

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

    def matches(self, service: str, country: str, weight_g: int) -> bool:
        return (self.service == service and weight_g <= self.max_weight_g
                and (not self.countries or country in self.countries))

    def price(self, weight_g: int) -> Money:
        amount = self.base + self.per_kg * Decimal(weight_g) / 1000
        return Money(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), self.currency)


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
                    else None))
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise ValueError(f"rate card row {i + 1}: {type(exc).__name__}: {exc}") from None
        return cls(parsed)

    @classmethod
    def from_csv(cls, path: str | Path) -> RateCard:
        with open(path, encoding="utf-8", newline="") as fh:
            return cls.from_rows(list(csv.DictReader(fh)))

    def services(self) -> list[str]:
        return list(dict.fromkeys(r.service for r in self.rows))

    def quote(self, carrier_code: str, request: ShipmentRequest) -> list[Quote]:
        """One quote per service the card can price for this parcel and destination.

        With ``request.service`` set, only that service is quoted.
        """
        country = request.ship_to.country_code.upper()
        weight = request.parcel.weight_g
        wanted = [request.service] if request.service else self.services()
        quotes = []
        for service in wanted:
            row = next((r for r in self.rows if r.matches(service, country, weight)), None)
            if row is not None:
                quotes.append(Quote(carrier=carrier_code, service=service, price=row.price(weight),
                                    transit_days=row.transit_days))
        return quotes
