"""Amazon's Buy Shipping answer stands on tracking compliance (docs/site-rules.md#buy-shipping).

Amazon offers only the services that meet its tracking rules for the order, so a Buy Shipping
offer is not re-checked against the project's own tracking table unless
``selection.buy_shipping_tracking: check``; direct labels always are.
"""
from __future__ import annotations

import pytest

from connector.rules import ChoicePolicy, eligibility, requirements, select

from .helpers import AMAZON, CHINAPOST, FX, NOW, RULES, SHIP_WITHOUT_IOSS, option, order, parcel

CHECK = ChoicePolicy(buy_shipping_tracking="check")


def req(site: str, total: str):
    return requirements(order(site, total), None, RULES, FX, parcel=parcel(), ioss=SHIP_WITHOUT_IOSS)


def reasons(r, opt, policy=None) -> list[str]:
    return eligibility(r, opt, rules=RULES[r.site], ship_from_city="Shenzhen", policy=policy, now=NOW)


@pytest.mark.parametrize("site, total", [("US", "5.00"), ("US", "5.01"), ("UK", "5.00"), ("CA", "7.00")])
def test_amazons_tracked_offer_just_above_the_threshold_stands(site: str, total: str) -> None:
    r = req(site, total)
    assert r.tracking_level == "fully_tracked"
    epacket = option(AMAZON, "CHINAPOST_EPACKET", "2.10")  # our table: tracked only
    assert reasons(r, epacket) == []
    assert any("below the required fully_tracked" in x for x in reasons(r, epacket, CHECK))


def test_the_same_service_bought_direct_is_still_checked() -> None:
    r = req("US", "5.00")
    assert any("below the required fully_tracked" in x for x in reasons(r, option(CHINAPOST, "EUB", "2.00")))


def test_below_the_threshold_both_channels_are_eligible() -> None:
    r = req("US", "4.99")
    assert r.tracking_level == "tracked"
    assert reasons(r, option(AMAZON, "CHINAPOST_EPACKET", "2.10"), CHECK) == []
    assert reasons(r, option(CHINAPOST, "EUB", "2.00")) == []


def test_the_cheapest_compliant_offer_wins_and_quote_says_why() -> None:
    r = req("US", "5.01")
    s = select(r, [option(AMAZON, "CHINAPOST_EPACKET", "2.10"), option(CHINAPOST, "EMS", "9.00")],
               rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen")
    assert s.chosen is not None and s.chosen.option.service == "CHINAPOST_EPACKET"
    assert any("its answer stands" in n for n in s.chosen.notes)
    strict = select(r, [option(AMAZON, "CHINAPOST_EPACKET", "2.10"), option(CHINAPOST, "EMS", "9.00")],
                    rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen", policy=CHECK)
    assert strict.chosen is not None and strict.chosen.option.service == "EMS"


def test_other_buy_shipping_rules_still_apply() -> None:
    over_cap = req("US", "800.01")
    assert any("Buy Shipping cap" in x for x in reasons(over_cap, option(AMAZON, "CHINAPOST_EPACKET", "2")))


def test_setting_is_validated() -> None:
    from connector.rules import RulesError
    with pytest.raises(RulesError, match="buy_shipping_tracking"):
        ChoicePolicy(buy_shipping_tracking="maybe")
