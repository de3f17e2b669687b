"""The rate table: exact conversions, clear errors, configuration over the example defaults."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import jsonschema
import pytest

from connector.amazon.sites import SITES
from connector.fx import DEFAULT_RATES, FX_SCHEMA, FxError, RateTable
from connector.model import Money

TABLE = RateTable("USD", {"EUR": "1.08", "MXN": "0.05", "GBP": "1.25"})


def test_convert_to_and_from_the_base_and_across() -> None:
    assert TABLE.convert(Money(Decimal("100"), "EUR"), "USD") == Money(Decimal("108.00"), "USD")
    assert TABLE.convert(Money(Decimal("54"), "USD"), "EUR") == Money(Decimal("50"), "EUR")
    # EUR -> MXN goes through the base: 1 EUR = 1.08 USD = 21.6 MXN
    assert TABLE.convert(Money(Decimal("10"), "EUR"), "MXN").amount == Decimal("216")


def test_conversion_is_exact_not_rounded() -> None:
    # a cent above 1000 MXN stays above 50 USD: rounding to cents would hide it
    assert TABLE.convert(Money(Decimal("1000.01"), "MXN"), "USD").amount == Decimal("50.0005")
    assert TABLE.convert(Money(Decimal("1000.00"), "MXN"), "USD").amount == Decimal("50")


def test_same_currency_is_returned_unchanged() -> None:
    money = Money(Decimal("3.333"), "MXN")
    assert TABLE.convert(money, "MXN") is money


def test_missing_currency_names_it_and_the_fix() -> None:
    with pytest.raises(FxError, match=r"no exchange rate for BRL .*fx\.rates"):
        TABLE.convert(Money(Decimal("1"), "BRL"), "USD")
    with pytest.raises(FxError, match="BRL"):
        TABLE.convert(Money(Decimal("1"), "USD"), "BRL")


@pytest.mark.parametrize("rates, message", [
    ({"EUR": "0"}, "EUR: must be a positive"),
    ({"EUR": "-1"}, "EUR: must be a positive"),
    ({"EUR": "abc"}, "EUR: 'abc' is not a number"),
    ({"EURO": "1"}, "not an ISO 4217"),
    ({"USD": "2"}, "base currency's rate must be 1"),
])
def test_bad_rates_are_refused(rates: dict[str, str], message: str) -> None:
    with pytest.raises(FxError, match=message):
        RateTable("USD", rates)


def test_config_rates_override_the_defaults_of_the_same_base() -> None:
    table = RateTable.from_config({"rates": {"EUR": "1.10"}, "as_of": "2026-12-01"})
    assert table.rate("EUR") == Decimal("1.10")
    assert table.rate("GBP") == DEFAULT_RATES.rate("GBP")  # untouched defaults stay
    assert table.as_of == date(2026, 12, 1)
    assert RateTable.from_config(None) is DEFAULT_RATES


def test_config_with_another_base_replaces_the_table() -> None:
    table = RateTable.from_config({"base": "EUR", "rates": {"USD": "0.92"}})
    assert table.base == "EUR" and set(table.rates) == {"EUR", "USD"}
    with pytest.raises(FxError, match="GBP"):
        table.rate("GBP")


def test_config_errors_name_the_key() -> None:
    with pytest.raises(FxError, match="unknown key"):
        RateTable.from_config({"ratez": {}})
    with pytest.raises(FxError, match="as_of"):
        RateTable.from_config({"as_of": "yesterday"})


def test_default_table_is_dated_example_data_covering_every_site_currency() -> None:
    assert DEFAULT_RATES.as_of is not None and "EXAMPLE" in DEFAULT_RATES.note
    for site in SITES.values():
        assert DEFAULT_RATES.rate(site.currency) > 0, site.code
    assert DEFAULT_RATES.rate("CNY") > 0  # carriers in China quote in CNY


def test_default_mxn_rate_matches_the_seed_assumption_of_17_per_usd() -> None:
    # connector/sandbox/seed.py puts MX orders around 850 MXN = 50 USD (the Buy Shipping cap)
    assert DEFAULT_RATES.to_base(Money(Decimal("850"), "MXN")) <= 50
    assert DEFAULT_RATES.to_base(Money(Decimal("851"), "MXN")) > 50


def test_schema_accepts_the_documented_section() -> None:
    jsonschema.validate({"base": "USD", "as_of": "2026-11-01", "rates": {"EUR": "1.08", "MXN": 0.0588}},
                        FX_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"rates": {"euro": "1.08"}}, FX_SCHEMA)
