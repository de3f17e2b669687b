from dataclasses import replace
from decimal import Decimal

import jsonschema
import pytest

from connector.kit.ratecard import RATE_CARD_SCHEMA, RateCard
from connector.model import Address, CustomsLine, Money, Parcel, ShipmentRequest

ROWS = [
    {"service": "EUB", "countries": "US,CA", "max_weight_g": 2000, "base": "18.00", "per_kg": "95",
     "currency": "CNY", "transit_days": 12},
    {"service": "EUB", "countries": "*", "max_weight_g": 2000, "base": "25", "per_kg": "110",
     "currency": "CNY", "transit_days": 15},
    {"service": "EMS", "countries": "*", "max_weight_g": 30000, "base": "120", "per_kg": "60.5",
     "currency": "CNY"},
]


def request(country: str, weight: int, service: str = "") -> ShipmentRequest:
    line = CustomsLine("S", "Thing", "东西", "123456", 1, Money(Decimal(1), "USD"), weight)
    return ShipmentRequest(reference="r", order_id="o", site="US", service=service,
                           ship_from=Address(name="a", line1="l", city="c", country_code="CN"),
                           ship_to=Address(name="b", line1="l", city="c", country_code=country),
                           parcel=Parcel(weight, Decimal(1), Decimal(1), Decimal(1), (line,)))


def test_first_matching_row_prices_base_plus_per_kg():
    card = RateCard.from_rows(ROWS)
    quotes = {q.service: q for q in card.quote("chinapost", request("US", 250))}
    assert quotes["EUB"].price == Money(Decimal("41.75"), "CNY") and quotes["EUB"].transit_days == 12
    assert quotes["EMS"].price == Money(Decimal("135.13"), "CNY")  # 120 + 60.5 * 0.25, half-up
    assert {q.price.amount for q in card.quote("chinapost", request("DE", 250, "EUB"))} == {Decimal("52.50")}


def test_a_card_quote_carries_its_handling_fee_and_chargeable_weight():
    card = RateCard.from_rows(ROWS)
    quotes = {q.service: q for q in card.quote("chinapost", request("US", 250))}
    # EUB US: 18.00 + 95 * 0.25 = 41.75, of which 18.00 is the per-parcel fee, 23.75 the weight charge
    assert quotes["EUB"].handling_fee == Money(Decimal("18.00"), "CNY")
    assert quotes["EUB"].chargeable_weight_g == 250
    # EMS: base "120" -> 120.00; weight charge 135.13 - 120.00 = 15.13
    assert quotes["EMS"].handling_fee == Money(Decimal("120.00"), "CNY")
    assert quotes["EMS"].price.amount - quotes["EMS"].handling_fee.amount == Decimal("15.13")
    # no volumetric divisor or minimum on a card: the chargeable weight is the actual one
    assert {q.chargeable_weight_g for q in card.quote("chinapost", request("DE", 1, "EUB"))} == {1}


def test_overweight_and_unknown_service_get_no_quote():
    card = RateCard.from_rows(ROWS)
    assert [q.service for q in card.quote("cp", request("US", 2500))] == ["EMS"]
    assert card.quote("cp", request("US", 100, "NOPE")) == []


def test_schema_and_bad_rows():
    jsonschema.validate(ROWS, RATE_CARD_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{**ROWS[0], "countries": "usa"}], RATE_CARD_SCHEMA)
    with pytest.raises(ValueError, match="rate card row 1"):
        RateCard.from_rows([{**ROWS[0], "base": "cheap"}])


def test_rows_with_origins_price_each_warehouse_city():
    """One card, two warehouse cities: the row for the parcel's ship-from city prices it."""
    rows = [{"service": "EUB", "countries": "*", "max_weight_g": 2000, "base": "10", "per_kg": "80",
             "currency": "CNY", "origins": "Yiwu"},
            {"service": "EUB", "countries": "*", "max_weight_g": 2000, "base": "12", "per_kg": "90",
             "currency": "CNY", "origins": "*"}]
    for row in rows:
        jsonschema.validate([row], RATE_CARD_SCHEMA)
    card = RateCard.from_rows(rows)
    from_yiwu = replace(request("US", 500), ship_from=Address(name="a", line1="l", city=" yiwu ",
                                                              country_code="CN"))
    assert card.quote("chinapost", from_yiwu)[0].price == Money(Decimal("50.00"), "CNY")
    assert card.quote("chinapost", request("US", 500))[0].price == Money(Decimal("57.00"), "CNY")
    only_yiwu = RateCard.from_rows(rows[:1])
    assert only_yiwu.quote("chinapost", request("US", 500)) == []  # no row for this city: no quote
