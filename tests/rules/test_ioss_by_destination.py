"""IOSS follows the destination country, not the Amazon site (docs/site-rules.md#ioss).

Written from the rule: a consignment delivered into the EU carries Amazon's per-item IOSS number
whenever Amazon sent one (Amazon collected the VAT: it judged the value, net of VAT); without it, one
whose goods (without shipping) are worth at most 150 EUR carries the seller's own number for the
account, else the ``ioss.missing`` policy decides (Buy Shipping only, hold, or ship with a warning).
"""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from connector.model import Money
from connector.rules import ChoicePolicy, IossPolicy, RulesError, eligibility, requirements, select

from .helpers import AMAZON, CHINAPOST, FX, NOW, RULES, YUN, option, order, parcel

AMAZON_IOSS = "IM2760000742"
SELLER_IOSS = "IM1560000001"


def req(site: str, goods: str, *, to: str, ioss: str = "", seller: str = "", missing: str = "buy_shipping",
        total: str | None = None, currency: str | None = None):
    o = order(site, total or goods, items=(("SKU-1", 1, goods),), ioss=ioss, country=to, currency=currency)
    return requirements(o, None, RULES, FX, parcel=parcel(), ioss=IossPolicy(missing=missing),
                        seller_ioss=seller)


@pytest.mark.parametrize("site, to", [("UK", "DE"), ("US", "FR"), ("JP", "IT"), ("DE", "AT")])
def test_amazons_number_goes_with_an_eu_bound_consignment_from_any_site(site: str, to: str) -> None:
    r = req(site, "20", to=to, ioss=AMAZON_IOSS)
    assert (r.ioss_number, r.ioss_source, r.ioss_missing) == (AMAZON_IOSS, "amazon", "")
    assert any("Amazon's IOSS number goes to the carrier" in n for n in r.notes)


@pytest.mark.parametrize("site, to", [("DE", "CH"), ("DE", "GB"), ("UK", "GB"), ("US", "US")])
def test_no_number_outside_the_eu_even_on_an_eu_site(site: str, to: str) -> None:
    r = req(site, "20", to=to, ioss=AMAZON_IOSS, seller=SELLER_IOSS)
    assert (r.ioss_number, r.ioss_missing) == ("", "")


def test_cap_is_on_the_goods_at_most_150_eur() -> None:
    assert req("DE", "150.00", to="DE", seller=SELLER_IOSS).ioss_number == SELLER_IOSS
    above = req("DE", "150.01", to="DE", seller=SELLER_IOSS)
    assert above.ioss_number == "" and above.ioss_missing == ""  # import VAT at the border instead
    assert any("above 150 EUR" in n for n in above.notes)


@pytest.mark.parametrize("goods", ["160.00", "179.99", "400.00"])
def test_amazons_number_is_sent_whatever_the_buyers_prices_add_up_to(goods: str) -> None:
    """Amazon's prices include VAT (160 EUR is ~134 EUR net in Germany) and Amazon sends the number
    only when it collected the VAT under IOSS: dropping it would charge the buyer VAT twice."""
    r = req("DE", goods, to="DE", ioss=AMAZON_IOSS, seller=SELLER_IOSS)
    assert (r.ioss_number, r.ioss_source, r.ioss_missing) == (AMAZON_IOSS, "amazon", "")
    assert any("Amazon collected the VAT" in n for n in r.notes)


def test_cap_converted_for_a_uk_order_into_ireland() -> None:
    # 150 EUR = 162 USD = 127.5590... GBP at the test table (EUR 1.08, GBP 1.27 USD)
    assert req("UK", "127.55", to="IE", seller=SELLER_IOSS).ioss_number == SELLER_IOSS
    assert req("UK", "127.56", to="IE", seller=SELLER_IOSS).ioss_number == ""


def test_shipping_does_not_count_towards_the_ioss_cap() -> None:
    r = req("FR", "149.00", to="FR", ioss=AMAZON_IOSS, total="160.00")
    assert r.ioss_number == AMAZON_IOSS and r.order_value == Money(Decimal("160.00"), "EUR")


def test_sellers_own_number_when_amazon_sent_none() -> None:
    r = req("UK", "30", to="DE", seller=SELLER_IOSS)
    assert (r.ioss_number, r.ioss_source, r.ioss_missing) == (SELLER_IOSS, "seller", "")
    assert any("seller's own number" in n for n in r.notes)
    assert req("UK", "30", to="DE", ioss=AMAZON_IOSS, seller=SELLER_IOSS).ioss_source == "amazon"


def _eligible(r, opt, policy=None) -> list[str]:
    return eligibility(r, opt, rules=RULES[r.site], ship_from_city="Shenzhen", policy=policy, now=NOW)


def test_missing_number_policy_buy_shipping_allows_only_buy_shipping() -> None:
    r = req("DE", "30", to="DE", missing="buy_shipping")
    assert r.ioss_missing == "buy_shipping"
    assert any("ioss.missing is buy_shipping" in x for x in _eligible(r, option(YUN, "AYPZXR", "5")))
    assert _eligible(r, option(AMAZON, "YUNEXPRESS_AYPZXR", "6")) == []
    chosen = select(r, [option(YUN, "AYPZXR", "5"), option(AMAZON, "YUNEXPRESS_AYPZXR", "6")],
                    rules=RULES["DE"], fx=FX, now=NOW, ship_from_city="Shenzhen").chosen
    assert chosen is not None and chosen.option.is_buy_shipping  # the dearer label, but the legal one


def test_missing_number_policy_hold_allows_nothing() -> None:
    r = req("DE", "30", to="DE", missing="hold")
    for opt in (option(YUN, "AYPZXR", "5"), option(AMAZON, "YUNEXPRESS_AYPZXR", "6")):
        assert any("ioss.missing is hold" in x for x in _eligible(r, opt))


def test_missing_number_policy_ship_allows_direct_with_a_warning() -> None:
    r = req("DE", "30", to="DE", missing="ship")
    assert r.ioss_missing == "ship" and r.ioss_number == ""
    s = select(r, [option(YUN, "AYPZXR", "5")], rules=RULES["DE"], fx=FX, now=NOW, ship_from_city="Shenzhen",
               policy=ChoicePolicy())
    assert s.chosen is not None
    assert "IOSS: shipped direct without an IOSS number (ioss.missing: ship)" in s.chosen.notes


def test_missing_policy_does_not_apply_above_the_cap_or_outside_the_eu() -> None:
    assert req("DE", "200", to="DE", missing="hold").ioss_missing == ""
    assert req("DE", "30", to="CH", missing="hold").ioss_missing == ""
    assert _eligible(req("DE", "200", to="DE", missing="hold"), option(CHINAPOST, "EMS", "50")) == []


def test_policy_values_are_checked() -> None:
    with pytest.raises(RulesError, match="ioss.missing must be one of buy_shipping, hold, ship"):
        IossPolicy(missing="sometimes")
    assert IossPolicy.from_config({"cap": "100 EUR", "missing": "hold"}) == IossPolicy(
        cap=Money(Decimal(100), "EUR"), missing="hold")


def _to(country: str, postal: str, *, site: str = "ES", ioss: str = "", seller: str = SELLER_IOSS):
    o = order(site, "30", items=(("SKU-1", 1, "30"),), ioss=ioss, country=country)
    assert o.ship_to is not None
    o = replace(o, ship_to=replace(o.ship_to, postal_code=postal))
    return requirements(o, None, RULES, FX, parcel=parcel(), ioss=IossPolicy(missing="hold"),
                        seller_ioss=seller)


@pytest.mark.parametrize("site, country, postal", [
    ("ES", "ES", "35001"), ("ES", "ES", "38 004"),  # Canary Islands
    ("ES", "ES", "51001"), ("ES", "ES", "52001"),  # Ceuta, Melilla
    ("FR", "FR", "97400"), ("FR", "FR", "97150"),  # Réunion, Saint-Martin
    ("DE", "DE", "78266"), ("DE", "DE", "27498"),  # Büsingen, Heligoland
    ("DE", "IT", "23041"), ("DE", "IT", "22061"),  # Livigno, Campione d'Italia
    ("SE", "FI", "AX-22100"), ("DE", "GR", "630 86"),  # Åland, Mount Athos
])
def test_territories_outside_the_eu_vat_area_carry_no_ioss_number(site: str, country: str,
                                                                   postal: str) -> None:
    """IOSS covers imports into the EU VAT area, which leaves out some territories of member states
    (VAT Directive art. 6): a Canary Islands order is not held for a number, nor sent the seller's."""
    r = _to(country, postal, site=site, ioss=AMAZON_IOSS)
    assert (r.ioss_number, r.ioss_source, r.ioss_missing) == ("", "", "")
    assert any("outside the EU VAT area" in n for n in r.notes)
    assert _to(country, postal, site=site).ioss_missing == ""


@pytest.mark.parametrize("country, postal", [("ES", "28001"), ("ES", "03501"), ("FR", "75001"),
                                             ("DE", "10115"), ("DE", "78267"), ("IT", "20121"),
                                             ("FI", "00100"), ("GR", "10558"), ("ES", "")])
def test_the_rest_of_those_member_states_still_carries_the_number(country: str, postal: str) -> None:
    r = _to(country, postal, ioss=AMAZON_IOSS)
    assert (r.ioss_number, r.ioss_source) == (AMAZON_IOSS, "amazon")
    assert _to(country, postal).ioss_number == SELLER_IOSS


def test_monaco_is_in_the_eu_vat_area_as_part_of_france() -> None:
    # VAT Directive art. 7: Monaco is not a third territory; IOSS covers goods delivered there
    assert req("FR", "30", to="MC", ioss=AMAZON_IOSS).ioss_number == AMAZON_IOSS
    assert req("FR", "30", to="MC", missing="hold").ioss_missing == "hold"
