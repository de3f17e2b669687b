"""eligibility(): every rejection rule, each with its reason, and several reasons at once."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from connector.kit import ServiceSpec
from connector.rules import (
    ChoicePolicy,
    QuoteOption,
    Requirements,
    carrier_rejections,
    eligibility,
    requirements,
    tracking_level_of,
)

from .helpers import (
    AMAZON,
    CHINAPOST,
    DHLEC,
    FX,
    NOW,
    RULES,
    SHIP_WITHOUT_IOSS,
    YANWEN,
    YUN,
    option,
    order,
    parcel,
    spec,
)


def req(site: str = "US", total: str = "10.00", *, p=None, **kw) -> Requirements:
    # IOSS has its own tests (test_ioss.py): here an EU order without a number ships direct
    return requirements(order(site, total, **kw), None, RULES, FX, parcel=p or parcel(),
                        ioss=SHIP_WITHOUT_IOSS)


def check(r: Requirements, opt: QuoteOption, *, city: str = "Shenzhen", drop_off: bool = False,
          **kw) -> list[str]:
    return eligibility(r, opt, rules=RULES[r.site], ship_from_city=city, drop_off=drop_off, now=NOW, **kw)


def test_a_fitting_option_is_eligible() -> None:
    assert check(req("US", "10.00"), option(YUN, "AYPZXR", "5.00")) == []


# -- tracking level ---------------------------------------------------------------------------


@pytest.mark.parametrize("total, service, ok", [
    ("4.99", "AYPZXU", False),   # untracked never
    ("4.99", "THPHR", True),     # tracked is enough below 5 USD
    ("5.00", "THPHR", False),    # at 5 USD: fully tracked required
    ("5.00", "AYPZXR", True),
])
def test_tracking_level(total: str, service: str, ok: bool) -> None:
    reasons = check(req("US", total), option(YUN, service, "3.00"))
    assert (reasons == []) is ok
    if not ok:
        assert any("below the required" in r for r in reasons)


def test_tracking_level_is_the_lower_of_quote_and_service() -> None:
    opt = option(YUN, "AYPZXR", "3.00", tracking_level="tracked")
    assert tracking_level_of(opt) == "tracked"
    assert "tracking level tracked is below the required fully_tracked" in check(req("US", "9"), opt)
    odd = option(YUN, "AYPZXR", "3.00", tracking_level="full-ish")  # unknown word: worst case
    assert tracking_level_of(odd) == "untracked"


# -- Amazon's carrier list --------------------------------------------------------------------


def test_carrier_amazon_does_not_accept_on_the_site() -> None:
    reasons = check(req("JP", "2000"), option(DHLEC, "PPS", "9.00"))
    assert "Amazon does not accept Dhlec on JP" in reasons


def test_carrier_code_not_in_the_sites_list_no_silent_other() -> None:
    special = ServiceSpec("481", "x", "fully_tracked", "Yanwen Special Line Tracked")
    unlisted = spec("yw", "Yanwen Express", (special,))
    reasons = check(req("FR", "30"), option(unlisted, "481", "4.00"))
    assert any("carrier code 'Yanwen Express' is not in Amazon's list for FR" in r for r in reasons)
    # the Yanwen plugin maps FR to "YANWEN": accepted; a plugin spelling it "Yanwen" gets the list's
    # spelling (case and spacing only), so it is accepted too and sent as "YANWEN"
    assert check(req("FR", "30"), option(YANWEN, "481", "4.00")) == []
    assert check(req("FR", "30"), option(spec("yw", "Yanwen", (special,)), "481", "4.00")) == []


def test_shipping_method_must_be_in_the_list_when_the_site_gives_one() -> None:
    # DE lists only "Yanwen Special Line Tracked" for YANWEN
    assert check(req("DE", "30"), option(YANWEN, "481", "4.00")) == []
    reasons = check(req("DE", "4.00"), option(YANWEN, "464", "2.00"))
    assert any("shipping method 'Yanwen Economy Tracked' is not in Amazon's list for 'YANWEN' on DE" in r
               for r in reasons)


# -- Buy Shipping -----------------------------------------------------------------------------


def test_buy_shipping_within_and_above_the_cap() -> None:
    opt = option(AMAZON, "YUNEXPRESS_AYPZXR", "7.00")
    assert check(req("US", "800.00"), opt) == []
    reasons = check(req("US", "800.01"), opt)
    assert len(reasons) == 1 and "above the Buy Shipping cap 800 USD" in reasons[0]


def test_buy_shipping_where_amazon_does_not_offer_it() -> None:
    opt = option(AMAZON, "YUNEXPRESS_AYPZXR", "70.00", "SEK")
    assert check(req("SE", "100", currency="SEK"), opt) == ["Amazon does not offer Buy Shipping on SE"]


def test_buy_shipping_is_not_checked_against_the_carrier_code_list() -> None:
    # Amazon sells the label and confirms it itself; "Amazon Shipping" is in no site's list here
    assert "Amazon Shipping" not in RULES["UK"].carrier_codes
    assert check(req("UK", "20"), option(AMAZON, "YUNEXPRESS_AYPZXR", "6.00", "GBP")) == []


# -- pickup -----------------------------------------------------------------------------------


def test_pickup_city_not_covered_unless_drop_off() -> None:
    opt = option(YUN, "AYPZXR", "5.00")
    reasons = check(req(), opt, city="Yiwu")
    assert any("does not pick up in Yiwu" in r and "Shenzhen, Guangzhou" in r for r in reasons)
    assert check(req(), opt, city="Yiwu", drop_off=True) == []
    assert check(req(), opt, city="  guangzhou ") == []  # case and spaces do not matter
    assert check(req(), option(CHINAPOST, "EMS", "9.00"), city="Yiwu") == []  # no pickup list: no limit


# -- delivery promise -------------------------------------------------------------------------


def test_promised_delivery_after_deliver_by() -> None:
    r = req("US", "10", deliver_by=NOW + timedelta(days=10))
    assert check(r, option(YUN, "AYPZXR", "5.00", transit_days=10)) == []  # exactly on the date
    late = check(r, option(YUN, "AYPZXR", "5.00", transit_days=11))
    assert any("after the deliver-by date" in x for x in late)
    promised = QuoteOption("yunexpress", "AYPZXR", option(YUN, "AYPZXR", "5").price, "fully_tracked",
                           transit_days=1, promised_delivery=NOW + timedelta(days=12), spec=YUN)
    assert any("promised delivery" in x for x in check(r, promised))  # the carrier's date wins
    assert check(req("US", "10"), option(YUN, "AYPZXR", "5.00", transit_days=90)) == []  # no deliver-by


# -- parcel limits ----------------------------------------------------------------------------


def test_weight_above_the_services_maximum() -> None:
    opt = option(YUN, "AYPZXR", "5.00")  # max 2500 g
    assert check(req(p=parcel(weight_g=2500)), opt) == []
    assert any("2501 g is above the service's maximum 2500 g" in r
               for r in check(req(p=parcel(weight_g=2501)), opt))


def test_size_limits_read_from_the_service() -> None:
    boxy = spec("boxy", "China Post", (ServiceSpec("S", "x", "fully_tracked", "m", None, allows_battery=True,
                                                   max_length_cm=Decimal(60),
                                                   max_dimensions_sum_cm=Decimal(90)),))
    opt = option(boxy, "S", "5.00")
    assert check(req(p=parcel(dims=("60", "20", "10"))), opt) == []
    assert any("longest side 61 cm" in r for r in check(req(p=parcel(dims=("20", "61", "5"))), opt))
    too_big = check(req(p=parcel(dims=("50", "30", "11"))), opt)
    assert any("length + width + height 91 cm" in r for r in too_big)


def test_battery_needs_a_service_that_declares_it() -> None:
    battery = req(p=parcel(battery=True))
    assert check(battery, option(YUN, "AYPZXR", "5.00")) == []  # allows_battery=True
    plain = check(battery, option(CHINAPOST, "EMS", "9.00"))  # a ServiceSpec without the field
    assert any("contains a battery" in r for r in plain)


def test_destination_not_served() -> None:
    eu_only = spec("eu", "China Post", (ServiceSpec("E", "x", "fully_tracked", "m", None,
                                                    destinations=("DE", "FR")),))
    opt = option(eu_only, "E", "5.00")
    assert check(req("DE", "30"), opt) == []
    assert any("does not deliver to AT" in r for r in check(req("DE", "30", country="AT"), opt))


def test_unknown_service_and_uninstalled_carrier() -> None:
    assert any("has no service NOPE" in r for r in check(req(), option(YUN, "NOPE", "5.00")))
    bare = QuoteOption("ghost", "X", option(YUN, "AYPZXR", "5").price)
    assert check(req(), bare) == ["carrier ghost is not installed"]


def test_every_reason_is_kept() -> None:
    r = req("US", "900.00", p=parcel(weight_g=3000, battery=True), deliver_by=NOW + timedelta(days=3))
    reasons = check(r, option(AMAZON, "CHINAPOST_EPACKET", "5.00", transit_days=12),
                    policy=ChoicePolicy(buy_shipping_tracking="check"))
    assert len(reasons) == 5, reasons  # cap, tracking, late, weight, battery
    joined = " | ".join(reasons)
    for part in ("Buy Shipping cap", "below the required", "deliver-by", "above the service's maximum",
                 "battery"):
        assert part in joined


def test_carrier_rejections_before_quoting() -> None:
    r = req("US", "900.00")
    assert carrier_rejections(r, AMAZON, RULES["US"]) != []
    assert carrier_rejections(r, YUN, RULES["US"], ship_from_city="Shenzhen") == []
    assert carrier_rejections(req("JP", "1000"), DHLEC, RULES["JP"]) == ["Amazon does not accept Dhlec on JP"]


def test_the_sites_list_spelling_of_a_carrier_code_is_the_one_sent() -> None:
    """An operator who corrects a site's list to the spelling Seller Central shows (`{Yanwen: null,
    YANWEN: []}`) gets that spelling sent, not the carrier dropped from the site for a case."""
    from dataclasses import replace

    from connector.rules import amazon_carrier_code

    codes = {k: v for k, v in RULES["US"].carrier_codes.items() if k != "Yanwen"}
    corrected = replace(RULES["US"], carrier_codes={**codes, "YANWEN": ()})
    assert amazon_carrier_code(YANWEN, corrected, "US") == "YANWEN"
    assert carrier_rejections(req("US", "20.00"), YANWEN, corrected, ship_from_city="Shenzhen") == []
    spaced = replace(RULES["US"], carrier_codes={**{k: v for k, v in codes.items() if k != "Yun Express"},
                                                 "Yun-Express": ()})
    assert amazon_carrier_code(YUN, spaced, "US") == "Yun-Express"
    assert amazon_carrier_code(YANWEN, replace(RULES["US"], carrier_codes=codes), "US") == "Yanwen"  # refused
    assert amazon_carrier_code(YANWEN, None, "US") == "Yanwen"
