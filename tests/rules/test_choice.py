"""Discounts, the Buy Shipping premium, overrides, the built-in choice and select()."""
from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import jsonschema
import pytest

from connector.model import Money
from connector.rules import (
    SELECTION_SCHEMA,
    Candidate,
    ChoicePolicy,
    Discount,
    Override,
    QuoteOption,
    Rejection,
    Requirements,
    RulesError,
    apply_discounts,
    choose_cheapest,
    price_candidate,
    requirements,
    select,
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
)

# The seed's promotions as discount rules (dates are test data: take real ones from the carrier's notice).
PROMOTIONS = (
    Discount("chinapost", "percent", Decimal(5), name="China Post 5% off", valid_until=date(2026, 12, 31)),
    Discount("yanwen", "per_kg", Decimal(2), name="Yanwen 2% off per kg", valid_until=date(2026, 12, 31)),
    Discount("yunexpress", "percent", Decimal(2), name="YunExpress 2% off", valid_until=date(2026, 11, 20)),
    Discount("dhlec", "handling_percent", Decimal(15), name="DHL eCommerce 15% off handling",
             valid_until=date(2026, 6, 30)),
)


def req(site: str = "US", total: str = "10.00", **kw) -> Requirements:
    # IOSS is not what these tests are about: an EU order without a number ships direct
    return requirements(order(site, total, **kw), None, RULES, FX, parcel=parcel(), ioss=SHIP_WITHOUT_IOSS)


def cost(opt: QuoteOption, discounts=PROMOTIONS, r: Requirements | None = None, now=NOW) -> Money:
    return apply_discounts(opt, discounts, r or req(), now)


# -- discounts --------------------------------------------------------------------------------


def test_percent_discount_on_the_whole_price() -> None:
    assert cost(option(CHINAPOST, "EMS", "100.00", "CNY")) == Money(Decimal("95.00"), "CNY")


def test_per_kg_discount_on_the_weight_charge_only() -> None:
    # 18.00 handling + 82.00 weight charge: 2% of 82.00 = 1.64
    assert cost(option(YANWEN, "481", "100.00", "CNY", handling="18.00")) == Money(Decimal("98.36"), "CNY")


def test_per_kg_and_handling_discounts_need_the_handling_fee() -> None:
    assert cost(option(YANWEN, "481", "100.00", "CNY")) == Money(Decimal("100.00"), "CNY")
    c = price_candidate(option(YANWEN, "481", "100.00", "CNY"), req=req(), fx=FX, now=NOW,
                        discounts=PROMOTIONS)
    assert any("not applied: the quote does not break out its handling fee" in n for n in c.notes)


def test_handling_discount_and_expiry() -> None:
    opt = option(DHLEC, "PPS", "50.00", "CNY", handling="20.00")
    assert cost(opt, now=NOW.replace(year=2026, month=6, day=30)) == Money(Decimal("47.00"), "CNY")
    assert cost(opt) == Money(Decimal("50.00"), "CNY")  # expired on 2026-06-30: does nothing


def test_validity_window_is_inclusive_in_utc() -> None:
    yun = option(YUN, "AYPZXR", "100.00", "CNY")
    assert cost(yun, now=NOW.replace(hour=23, minute=59)) == Money(Decimal("98.00"), "CNY")  # last day
    assert cost(yun, now=NOW + timedelta(days=1)) == Money(Decimal("100.00"), "CNY")
    later = Discount("yunexpress", "percent", Decimal(10), valid_from=date(2026, 11, 21))
    assert cost(yun, (later,)) == Money(Decimal("100.00"), "CNY")
    assert cost(yun, (later,), now=NOW + timedelta(days=1)) == Money(Decimal("90.00"), "CNY")


def test_discount_filters_service_site_and_sku() -> None:
    only_ems = Discount("chinapost", "percent", Decimal(10), services=("EMS",))
    assert cost(option(CHINAPOST, "EUB", "10.00"), (only_ems,)) == Money(Decimal("10.00"), "USD")
    assert cost(option(CHINAPOST, "EMS", "10.00"), (only_ems,)) == Money(Decimal("9.00"), "USD")
    uk_only = Discount("chinapost", "percent", Decimal(10), sites=("UK",))
    assert cost(option(CHINAPOST, "EMS", "10.00"), (uk_only,)) == Money(Decimal("10.00"), "USD")
    assert cost(option(CHINAPOST, "EMS", "10.00"), (uk_only,), req("UK")) == Money(Decimal("9.00"), "USD")
    sku = Discount("chinapost", "percent", Decimal(10), skus=("SKU-2",))
    assert cost(option(CHINAPOST, "EMS", "10.00"), (sku,)) == Money(Decimal("10.00"), "USD")
    r2 = req("US", items=(("SKU-1", 1, None), ("SKU-2", 1, None)))
    assert cost(option(CHINAPOST, "EMS", "10.00"), (sku,), r2) == Money(Decimal("9.00"), "USD")


def test_discounts_add_up_on_the_undiscounted_price_and_never_go_below_zero() -> None:
    two = (Discount("chinapost", "percent", Decimal(10)), Discount("chinapost", "percent", Decimal(5)))
    assert cost(option(CHINAPOST, "EMS", "10.00"), two) == Money(Decimal("8.50"), "USD")
    all_off = two + (Discount("chinapost", "percent", Decimal(90)),)
    assert cost(option(CHINAPOST, "EMS", "10.00"), all_off) == Money(Decimal("0.00"), "USD")


def test_rounding_half_up_to_the_cent() -> None:
    d = (Discount("chinapost", "percent", Decimal(5)),)
    assert cost(option(CHINAPOST, "EMS", "0.10"), d) == Money(Decimal("0.10"), "USD")  # 0.095 -> 0.10
    assert cost(option(CHINAPOST, "EMS", "0.30"), d) == Money(Decimal("0.29"), "USD")  # 0.285 -> 0.29


def test_bad_discounts_are_refused() -> None:
    with pytest.raises(RulesError, match="kind"):
        Discount("x", "fixed", Decimal(1))
    with pytest.raises(RulesError, match="percentage"):
        Discount("x", "percent", Decimal(150))


# -- choice -----------------------------------------------------------------------------------


def cand(opt: QuoteOption, *, premium: Money | None = None, r: Requirements | None = None) -> Candidate:
    return price_candidate(opt, req=r or req(), fx=FX, now=NOW, buy_shipping_premium=premium)


def test_cheapest_across_currencies() -> None:
    cny = cand(option(YUN, "AYPZXR", "30.00", "CNY"))  # 4.20 USD
    usd = cand(option(CHINAPOST, "EMS", "4.21"))
    assert choose_cheapest([usd, cny]) is cny
    assert cny.comparable == Money(Decimal("4.2000"), "USD")


@pytest.mark.parametrize("premium, bs_wins", [(None, False), ("0.99", False), ("1.00", True),
                                              ("1.50", True)])
def test_buy_shipping_premium(premium: str | None, bs_wins: bool) -> None:
    own = cand(option(YUN, "AYPZXR", "5.00"))
    bs = cand(option(AMAZON, "YUNEXPRESS_AYPZXR", "6.00"),
              premium=Money(Decimal(premium), "USD") if premium else None)
    chosen = choose_cheapest([own, bs])
    # at exactly 1.00 the comparable costs tie and Buy Shipping wins the tie (its protections are free)
    assert (chosen is bs) is bs_wins


def test_premium_in_another_currency_is_converted() -> None:
    own = cand(option(YUN, "AYPZXR", "5.00"))
    bs = cand(option(AMAZON, "YUNEXPRESS_AYPZXR", "6.00"), premium=Money(Decimal("1.00"), "GBP"))  # 1.27 USD
    assert choose_cheapest([own, bs]) is bs and bs.comparable == Money(Decimal("4.73"), "USD")


def test_ties_break_the_same_way_whatever_the_order() -> None:
    same = [cand(option(YUN, "THPHR", "4.00", transit_days=8)),      # tracked
            cand(option(YUN, "AYPZXR", "4.00", transit_days=12)),    # fully tracked, slower
            cand(option(CHINAPOST, "EMS", "4.00", transit_days=9)),  # fully tracked, faster
            cand(option(YANWEN, "481", "4.00", transit_days=9))]     # fully tracked, as fast
    for _ in range(10):
        random.shuffle(same)
        chosen = choose_cheapest(same)
        assert chosen is not None and chosen.option.key == ("chinapost", "EMS")  # before yanwen
    assert choose_cheapest([]) is None


# -- overrides and select ---------------------------------------------------------------------

OPTIONS = [option(YUN, "AYPZXR", "5.00"), option(CHINAPOST, "EMS", "6.00"), option(YANWEN, "481", "4.00"),
           option(AMAZON, "YUNEXPRESS_AYPZXR", "5.50")]


def run(r: Requirements, policy: ChoicePolicy | None = None, **kw):
    return select(r, OPTIONS, rules=RULES[r.site], fx=FX, now=NOW, policy=policy, ship_from_city="Shenzhen",
                  **kw)


def test_select_picks_the_cheapest_eligible_and_orders_the_rest() -> None:
    s = run(req("US", "30"))
    assert s.chosen is not None and s.chosen.option.key == ("yanwen", "481")
    assert [c.option.key for c in s.candidates][:2] == [("yanwen", "481"), ("yunexpress", "AYPZXR")]
    assert s.rejections == ()


def test_forbid_and_force_per_site_and_sku() -> None:
    forbid = ChoicePolicy(overrides=(Override("forbid", "yanwen", site="US"),))
    s = run(req("US", "30"), forbid)
    assert s.chosen.option.key == ("yunexpress", "AYPZXR")
    assert any("forbidden: site US forbids yanwen" in str(x) for x in s.rejections)
    assert run(req("UK", "30"), forbid).chosen.option.key == ("yanwen", "481")  # other site: no effect

    force = ChoicePolicy(overrides=(Override("force", "chinapost", "EMS", sku="SKU-1"),))
    s = run(req("US", "30"), force)
    assert s.chosen.option.key == ("chinapost", "EMS")
    assert len(s.rejections) == 3 and all("not forced: SKU SKU-1 forces chinapost:EMS" in str(x)
                                          for x in s.rejections)


def test_forced_option_that_is_not_eligible_holds_the_order_with_every_reason() -> None:
    force = ChoicePolicy(overrides=(Override("force", "amazon_shipping", site="US"),))
    s = run(req("US", "900"), force)
    assert s.chosen is None and s.candidates == ()
    message = s.held_message()
    assert "amazon_shipping:YUNEXPRESS_AYPZXR: order value 900 USD is above the Buy Shipping cap" in message
    assert message.count("not forced") == 3


def test_nothing_eligible_lists_every_rejection_and_quote_failures() -> None:
    failures = [Rejection("dhlec", "", ("quote timed out after 10 s",))]
    s = run(req("US", "30", deliver_by=NOW + timedelta(days=1)), failures=failures)
    assert s.chosen is None
    message = s.held_message()
    assert message.startswith("dhlec: quote timed out after 10 s; ")
    assert message.count("after the deliver-by date") == 4
    assert select(req(), [], rules=RULES["US"], fx=FX, now=NOW).held_message() == \
        "no carrier service offered a quote"


def test_policy_premium_and_discounts_flow_through_select() -> None:
    policy = ChoicePolicy(discounts=(Discount("yunexpress", "percent", Decimal(30)),),
                          buy_shipping_premium={"*": Money(Decimal("2.00"), "USD")})
    s = run(req("US", "30"), policy)
    # Buy Shipping 5.50 - 2.00 premium = 3.50 ties with YunExpress 5.00 - 30 % = 3.50:
    # same tracking level and transit days, so Buy Shipping wins the tie
    assert s.chosen.option.key == ("amazon_shipping", "YUNEXPRESS_AYPZXR")
    yun = next(c for c in s.candidates if c.option.key == ("yunexpress", "AYPZXR"))
    assert yun.cost == Money(Decimal("3.50"), "USD")


def test_a_chooser_hook_may_pick_any_eligible_option_but_not_an_ineligible_one() -> None:
    r = req("US", "30", deliver_by=NOW + timedelta(days=30))
    dearest = run(r, choose=lambda cands: cands[-1])
    assert dearest.chosen.option.key == ("chinapost", "EMS")
    by_option = run(r, choose=lambda cands: cands[0].option)  # a plugin may answer with the QuoteOption
    assert by_option.chosen.option.key == ("yanwen", "481")
    rogue = option(YUN, "AYPZXU", "0.10")  # untracked: never eligible for a 30 USD order
    s = run(r, choose=lambda cands: rogue)
    assert s.chosen is None and "not eligible; ignored" in s.held_message()


def test_vtr_exact_match_is_noted_for_small_orders() -> None:
    r = req("DE", "19.99")
    s = select(r, [option(YANWEN, "481", "3.00")], rules=RULES["DE"], fx=FX, now=NOW)
    assert any("match Amazon's list exactly: excluded from VTR" in n for n in s.chosen.notes)
    s = select(r, [option(YUN, "AYPZXR", "3.00")], rules=RULES["DE"], fx=FX, now=NOW,
               ship_from_city="Shenzhen")
    assert any("counts toward VTR" in n for n in s.chosen.notes)


# -- configuration ----------------------------------------------------------------------------

CONFIG = {
    "drop_off": True,
    "buy_shipping_premium": {"default": "1.00 USD", "UK": "0.80 GBP"},
    "discounts": [
        {"name": "China Post 5% off", "carrier": "chinapost", "kind": "percent", "value": 5,
         "valid_until": "2026-12-31"},
        {"name": "Yanwen 2% off per kg", "carrier": "yanwen", "kind": "per_kg", "value": "2",
         "valid_from": "2026-01-01", "valid_until": "2026-12-31", "sites": ["US", "UK"]},
    ],
    "overrides": [{"action": "forbid", "carrier": "dhlec", "site": "JP"},
                  {"action": "force", "carrier": "yunexpress", "service": "AYPZXR", "sku": "POWERBANK-10K"}],
}


def test_policy_from_configuration() -> None:
    jsonschema.validate(CONFIG, SELECTION_SCHEMA)
    policy = ChoicePolicy.from_config(CONFIG)
    assert policy.drop_off
    assert policy.premium_for("US") == Money(Decimal("1.00"), "USD")
    assert policy.premium_for("UK") == Money(Decimal("0.80"), "GBP")
    assert policy.discounts[1].valid_from == date(2026, 1, 1) and policy.discounts[1].sites == ("US", "UK")
    assert policy.overrides[1] == Override("force", "yunexpress", "AYPZXR", sku="POWERBANK-10K")
    assert ChoicePolicy.from_config({"buy_shipping_premium": "2 USD"}).premium_for("DE") == \
        Money(Decimal("2"), "USD")
    assert ChoicePolicy.from_config(None) == ChoicePolicy()


def test_bad_policy_configuration_names_the_entry() -> None:
    with pytest.raises(RulesError, match=r"selection.discounts\[0\]"):
        ChoicePolicy.from_config({"discounts": [{"carrier": "x", "kind": "percent"}]})
    with pytest.raises(RulesError, match=r"selection.overrides\[0\]"):
        ChoicePolicy.from_config({"overrides": [{"action": "prefer", "carrier": "x"}]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"discounts": [{"carrier": "x", "kind": "fixed", "value": 1}]}, SELECTION_SCHEMA)


def test_drop_off_from_the_policy_lifts_the_pickup_limit() -> None:
    r = req("US", "30")
    far = select(r, [option(YUN, "AYPZXR", "5.00")], rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Yiwu")
    assert far.chosen is None and "does not pick up in Yiwu" in far.held_message()
    handed_in = select(r, [option(YUN, "AYPZXR", "5.00")], rules=RULES["US"], fx=FX, now=NOW,
                       ship_from_city="Yiwu", policy=ChoicePolicy(drop_off=True))
    assert handed_in.chosen is not None


def test_a_quote_in_a_currency_without_a_rate_is_rejected_not_fatal() -> None:
    s = select(req("US", "30"), [option(YUN, "AYPZXR", "5.00", "HKD"), option(CHINAPOST, "EMS", "9.00")],
               rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen")
    assert s.chosen.option.key == ("chinapost", "EMS")
    assert "yunexpress:AYPZXR: no exchange rate for HKD" in s.held_message()
