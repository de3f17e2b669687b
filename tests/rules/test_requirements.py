"""requirements(): every value rule at its boundary (exactly at, one cent over, one cent under),
and how site rules merge from plugins and configuration."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from connector.amazon.sites import BUILTIN, Site, SiteTable
from connector.fx import DEFAULT_RATES, FxError, RateTable
from connector.model import CatalogItem, Money
from connector.rules import (
    Requirements,
    RulesError,
    SiteRules,
    SiteRulesPatch,
    merge_rules,
    requirements,
)

from .helpers import FX, NOW, RULES, order, parcel


def req(site: str = "US", total: str | None = "10.00", *, fx=FX, rules=None, **kw) -> Requirements:
    return requirements(order(site, total, **kw), None, rules or RULES, fx, parcel=parcel())


# -- China-origin tracking rule ---------------------------------------------------------------


@pytest.mark.parametrize("total, level", [("4.99", "tracked"), ("5.00", "fully_tracked"),
                                          ("5.01", "fully_tracked")])
def test_us_tracking_level_around_5_usd(total: str, level: str) -> None:
    r = req("US", total)
    assert r.tracking_level == level
    assert r.min_scans == (1 if level == "tracked" else 2)


@pytest.mark.parametrize("total, level", [("4.99", "tracked"), ("5.00", "fully_tracked"),
                                          ("5.01", "fully_tracked")])
def test_uk_tracking_level_around_5_gbp(total: str, level: str) -> None:
    # 4.99 GBP is 6.34 USD: only the UK's own 5 GBP threshold makes it "tracked"
    assert req("UK", total).tracking_level == level


def test_tracking_threshold_in_usd_is_converted_for_a_eur_site() -> None:
    # 5 USD = 4.6296... EUR at 1.08
    assert req("DE", "4.62").tracking_level == "tracked"
    assert req("DE", "4.63").tracking_level == "fully_tracked"


def test_site_without_threshold_is_always_fully_tracked() -> None:
    strict = {"US": SiteRules("US", tracked_below=None)}
    r = req("US", "0.50", rules=strict)
    assert r.tracking_level == "fully_tracked" and any("no low-value exception" in n for n in r.notes)


# -- Buy Shipping caps ------------------------------------------------------------------------


@pytest.mark.parametrize("site, at, over", [
    ("US", "800.00", "800.01"),
    ("CA", "20.00", "20.01"),
    ("UK", "135.00", "135.01"),
    ("DE", "150.00", "150.01"),
    ("FR", "150.00", "150.01"),
])
def test_buy_shipping_cap_is_inclusive(site: str, at: str, over: str) -> None:
    assert req(site, at).buy_shipping_allowed
    assert req(site, str(Decimal(at) - Decimal("0.01"))).buy_shipping_allowed
    above = req(site, over)
    assert not above.buy_shipping_allowed
    assert "above the Buy Shipping cap" in above.buy_shipping_reason and over in above.buy_shipping_reason


def test_mx_cap_in_usd_for_an_order_in_mxn_through_the_rate_table() -> None:
    # FX: 1 MXN = 0.05 USD, so the 50 USD cap is exactly 1000 MXN
    at, over, under = req("MX", "1000.00"), req("MX", "1000.01"), req("MX", "999.99")
    assert at.buy_shipping_allowed and under.buy_shipping_allowed
    assert not over.buy_shipping_allowed
    assert "1000.01 MXN (= 50.0005 USD)" in over.buy_shipping_reason


def test_mx_cap_with_the_default_table_follows_the_seed() -> None:
    assert req("MX", "850.00", fx=DEFAULT_RATES).buy_shipping_allowed
    assert not req("MX", "850.01", fx=DEFAULT_RATES).buy_shipping_allowed


def test_mx_cap_moves_with_the_configured_rate() -> None:
    cheaper_peso = RateTable.from_config({"rates": {"MXN": "0.04"}}, default=FX)  # 50 USD = 1250 MXN
    assert req("MX", "1250.00", fx=cheaper_peso).buy_shipping_allowed
    assert not req("MX", "1250.01", fx=cheaper_peso).buy_shipping_allowed


def test_site_without_buy_shipping() -> None:
    r = req("SE", "10.00", currency="SEK")
    assert not r.buy_shipping_allowed and "does not offer Buy Shipping on SE" in r.buy_shipping_reason


def test_site_with_buy_shipping_and_no_cap() -> None:
    assert req("JP", "500000").buy_shipping_allowed


def test_unknown_value_is_not_within_a_cap() -> None:
    r = req("US", None, items=(("SKU-1", 1, None),))
    assert r.order_value is None and not r.buy_shipping_allowed
    assert r.tracking_level == "fully_tracked"
    assert not r.returnless_refund


# -- IOSS -------------------------------------------------------------------------------------


def test_ioss_cap_in_eur_for_a_sek_order() -> None:
    # 150 EUR = 162 USD = 1705.263... SEK at 0.095; with no number at all, the cap decides whether
    # the missing-number policy applies (within) or import VAT is due at the border (above)
    inside = req("SE", "1705.26", items=(("SKU-1", 1, "1705.26"),))
    outside = req("SE", "1705.27", items=(("SKU-1", 1, "1705.27"),))
    assert inside.ioss_missing == "buy_shipping" and outside.ioss_missing == ""
    assert any("above 150 EUR" in n for n in outside.notes)


def test_ioss_compares_the_goods_not_the_shipping() -> None:
    # items 148 EUR + shipping: the consignment's intrinsic value is within 150 EUR, the order total is not
    r = req("DE", "155.00", items=(("SKU-1", 2, "74.00"),), ioss="IM2760000742")
    assert r.goods_value == Money(Decimal("148.00"), "EUR")
    assert r.ioss_number == "IM2760000742"
    assert not r.buy_shipping_allowed  # Buy Shipping's cap is on the order value (items + shipping)


def test_ioss_not_sent_outside_the_eu_or_on_a_site_without_ioss() -> None:
    to_swiss = req("DE", "50.00", items=(("SKU-1", 1, "50.00"),), ioss="IM2760000742", country="CH")
    assert to_swiss.ioss_number == "" and to_swiss.destination_country == "CH"
    on_uk = req("UK", "50.00", ioss="IM2760000742")
    assert on_uk.ioss_number == ""


def test_ioss_within_cap_without_any_number_follows_the_missing_policy() -> None:
    r = req("FR", "20.00", items=(("SKU-1", 1, "20.00"),))
    assert r.ioss_number == "" and r.ioss_missing == "buy_shipping"
    assert any("there is no IOSS number" in n and "ioss.missing: buy_shipping" in n for n in r.notes)


# -- VTR exclusion and returnless refunds -----------------------------------------------------


@pytest.mark.parametrize("site, under, at", [("DE", "19.99", "20.00"), ("ES", "14.99", "15.00"),
                                             ("FR", "9.99", "10.00")])
def test_small_order_vtr_exclusion(site: str, under: str, at: str) -> None:
    assert req(site, under).vtr_excluded_if_exact
    assert not req(site, at).vtr_excluded_if_exact
    assert not req("US", "1.00").vtr_excluded_if_exact


@pytest.mark.parametrize("site, under, at", [("US", "24.99", "25.00"), ("JP", "999", "1000")])
def test_returnless_refund(site: str, under: str, at: str) -> None:
    assert req(site, under).returnless_refund
    assert not req(site, at).returnless_refund
    assert not req("DE", "1.00").returnless_refund


# -- order value, parcel, dates ---------------------------------------------------------------


def test_without_grand_total_the_items_are_only_a_lower_bound() -> None:
    r = req("US", None, items=(("SKU-1", 1, "2.00"), ("SKU-2", 1, "2.50")), shipped=1)
    # SKU-1: 1 to ship + 1 shipped at 2.00, SKU-2: 1 at 2.50; shipping unknown
    assert r.order_value is None and r.goods_value == Money(Decimal("6.50"), "USD")
    assert r.tracking_level == "fully_tracked"
    assert any("Amazon sent no order total" in n and "6.50 USD" in n for n in r.notes)


def test_grand_total_wins_over_item_prices() -> None:
    r = req("US", "4.99", items=(("SKU-1", 1, "3.00"),))
    assert r.order_value == Money(Decimal("4.99"), "USD") and r.goods_value == Money(Decimal("3.00"), "USD")


def test_parcel_declared_value_dates_and_battery_skus() -> None:
    catalog = {"SKU-1": CatalogItem("SKU-1", 100, Decimal(1), Decimal(1), Decimal(1), "Power bank",
                                    "移动电源", "850760", Money(Decimal("11.00"), "USD"), has_battery=True)}
    o = order("US", "30.00", deliver_by=NOW)
    p = parcel(battery=True, value="11.00")
    r = requirements(o, catalog, RULES, FX, parcel=p)
    assert r.declared_value == Money(Decimal("11.00"), "USD") and r.parcel is p
    assert r.battery_skus == ("SKU-1",) and r.skus == ("SKU-1",)
    assert r.ship_by == o.ship_by and r.deliver_by == NOW
    assert r.site == "US" and r.order_id == o.order_id and r.destination_country == "US"


def test_unknown_site_and_missing_rate_are_clear_errors() -> None:
    with pytest.raises(RulesError, match="no site rules for site ZZ"):
        requirements(replace(order("US"), site="ZZ"), None, RULES, FX, parcel=parcel())
    with pytest.raises(RulesError, match="the rules are for DE"):
        requirements(order("US"), None, RULES["DE"], FX, parcel=parcel())
    with pytest.raises(FxError, match="MXN"):
        requirements(order("MX", "900"), None, RULES, RateTable("USD", {}), parcel=parcel())


# -- merging site rules -----------------------------------------------------------------------

BASE = [RULES["DE"], RULES["US"]]


def test_patch_overrides_one_field_and_config_wins() -> None:
    merged = merge_rules(BASE, [SiteRulesPatch("DE", vtr_exclusion_below="25 EUR")],
                         {"DE": {"vtr_exclusion_below": "30 EUR"}, "US": {"buy_shipping_cap": None}})
    assert merged["DE"].vtr_exclusion_below == Money(Decimal("30"), "EUR")
    assert merged["DE"].tracked_below == RULES["DE"].tracked_below  # untouched
    assert merged["US"].buy_shipping_cap is None
    assert req("US", "5000", rules=merged).buy_shipping_allowed


def test_patch_for_unknown_site_is_an_error_naming_it() -> None:
    with pytest.raises(RulesError, match="unknown site ZA"):
        merge_rules(BASE, [SiteRulesPatch("ZA", tracked_below="5 USD")])


def test_patch_with_unknown_field_is_refused() -> None:
    with pytest.raises(RulesError, match="unknown site rule field.*buy_shiping"):
        SiteRulesPatch("DE", buy_shiping=True)


def test_site_registered_twice_is_an_error() -> None:
    with pytest.raises(RulesError, match="site DE is registered twice"):
        merge_rules([*BASE, RULES["DE"]])


def test_third_party_adds_a_site_and_config_can_too() -> None:
    za = SiteRules("ZA", carrier_codes={"China Post": ()})
    config = {"NO": {"marketplace_id": "AXXXXXXXXXXXX", "region": "eu", "currency": "NOK", "country": "NO",
                     "carrier_codes": {"China Post": []}}}
    sites = BUILTIN.extended(config)
    merged = merge_rules([*BASE, za], [], config, sites=sites)
    assert merged["ZA"] == za and merged["ZA"].country == "ZA"
    assert sites["NO"].currency == "NOK" and sites["NO"].marketplace_id == "AXXXXXXXXXXXX"
    assert merged["NO"].country == "NO" and merged["NO"].carrier_codes == {"China Post": ()}


def test_incomplete_new_site_in_config_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="site_rules.NO: a new site needs marketplace_id, region, country"):
        BUILTIN.extended({"NO": {"currency": "NOK", "carrier_codes": {}}})
    with pytest.raises(RulesError, match="site rules for NO, which is not in the site table; add "
                                         "marketplace_id, region, currency, country under site_rules.NO"):
        merge_rules(BASE, [], {"NO": {"currency": "NOK", "carrier_codes": {}}})
    with pytest.raises(ValueError, match="site_rules.DE: marketplace_id of a known Amazon site cannot be"):
        BUILTIN.extended({"DE": {"marketplace_id": "AXXXXXXXXXXXX"}})


def test_carrier_codes_merge_code_by_code() -> None:
    merged = merge_rules(BASE, [SiteRulesPatch("DE", carrier_codes={"4PX": [], "DHL eCommerce": None})])
    codes = merged["DE"].carrier_codes
    assert "4PX" in codes and "DHL eCommerce" not in codes and "YANWEN" in codes


def test_bad_money_in_rules_names_site_and_field() -> None:
    with pytest.raises(RulesError, match="site DE: vtr_exclusion_below: '150' is not an amount with a"):
        SiteRulesPatch("DE", vtr_exclusion_below="150")
    with pytest.raises(ValueError, match="site XX: region must be one of na, eu, fe"):
        SiteTable([Site("XX", "A", "asia", "USD", "XX")])


@pytest.mark.parametrize("value", ["NaN USD", "Infinity USD", "-5 USD",
                                   {"amount": "sNaN", "currency": "USD"}])
def test_a_threshold_that_is_no_amount_is_refused(value) -> None:
    # a NaN threshold would fail every order's comparison (decimal.InvalidOperation) instead of the file
    with pytest.raises(RulesError, match="site US: tracked_below: .* is not an amount with a currency"):
        SiteRulesPatch("US", tracked_below=value)
