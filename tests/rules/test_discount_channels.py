"""Promotions carry a channel, a service list and a window (docs/site-rules.md#discounts).

A ``buy_shipping`` offer applies to the named Buy Shipping services only, never to the same
carrier's direct labels; a ``direct`` one never to Buy Shipping. ``per_kg`` takes its percentage
off the weight charge (price minus the handling fee), ``handling_percent`` off the handling fee;
outside its window a discount does nothing and the quote says so.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from connector.model import Money
from connector.rules import Discount, QuoteOption, apply_discounts, discount_notes, requirements

from .helpers import AMAZON, CHINAPOST, FX, NOW, RULES, SHIP_WITHOUT_IOSS, YUN, option, order, parcel

REQ = requirements(order("US", "10.00"), None, RULES, FX, parcel=parcel(), ioss=SHIP_WITHOUT_IOSS)
TODAY = NOW.date()

EPACKET_BS = Discount("chinapost", "percent", Decimal(5), services=("CHINAPOST_EPACKET",),
                      channel="buy_shipping",
                      name="China Post ePacket 5% on Buy Shipping", valid_until=TODAY)
YUN_PER_KG_BS = Discount("yunexpress", "per_kg", Decimal(2), services=("YUNEXPRESS_AYPZXR",),
                         channel="buy_shipping",
                         name="YunExpress 2% per kg on Buy Shipping")
HANDLING_BS = Discount("dhl_ecommerce", "handling_percent", Decimal(15), services=("YUNEXPRESS_AYPZXR",),
                       channel="buy_shipping", name="15% off handling")


def bs(service: str, price: str, *, handling: str | None = None, kg: int | None = None) -> QuoteOption:
    opt = option(AMAZON, service, price, handling=handling)
    return QuoteOption(**{**opt.__dict__, "chargeable_weight_g": kg})


def cost(opt: QuoteOption, *discounts: Discount, now=NOW) -> Money:
    return apply_discounts(opt, discounts, REQ, now)


def test_buy_shipping_offer_applies_to_its_service_on_buy_shipping_only() -> None:
    assert cost(bs("CHINAPOST_EPACKET", "10.00"), EPACKET_BS) == Money(Decimal("9.50"), "USD")
    assert cost(option(CHINAPOST, "EUB", "10.00"), EPACKET_BS) == Money(Decimal("10.00"), "USD")  # direct
    other_service = bs("YUNEXPRESS_AYPZXR", "10.00")
    assert cost(other_service, EPACKET_BS) == Money(Decimal("10.00"), "USD")


def test_direct_contract_never_applies_to_buy_shipping() -> None:
    direct = Discount("chinapost", "percent", Decimal(10))
    assert cost(option(CHINAPOST, "EUB", "10.00"), direct) == Money(Decimal("9.00"), "USD")
    assert cost(bs("CHINAPOST_EPACKET", "10.00"), direct) == Money(Decimal("10.00"), "USD")


def test_window_boundaries_and_the_note_when_ended_or_not_started() -> None:
    opt = bs("CHINAPOST_EPACKET", "10.00")
    assert cost(opt, EPACKET_BS) == Money(Decimal("9.50"), "USD")  # last valid day, inclusive
    tomorrow = NOW + timedelta(days=1)
    assert cost(opt, EPACKET_BS, now=tomorrow) == Money(Decimal("10.00"), "USD")
    assert discount_notes(opt, (EPACKET_BS,), REQ, tomorrow) == [
        f"discount China Post ePacket 5% on Buy Shipping: ended on {TODAY.isoformat()}: not applied"]
    later = Discount("chinapost", "percent", Decimal(5), services=("CHINAPOST_EPACKET",),
                     channel="buy_shipping",
                     name="next month", valid_from=date(2026, 12, 1))
    assert cost(opt, later) == Money(Decimal("10.00"), "USD")
    assert discount_notes(opt, (later,), REQ, NOW) == [
        "discount next month: starts on 2026-12-01: not applied"]


def test_per_kg_is_computed_on_the_weight_charge_with_the_chargeable_weight() -> None:
    # 12.00 = 2.00 handling + 10.00 weight charge for 0.5 kg: 2 % of 10.00 = 0.20
    opt = bs("YUNEXPRESS_AYPZXR", "12.00", handling="2.00", kg=500)
    assert cost(opt, YUN_PER_KG_BS) == Money(Decimal("11.80"), "USD")
    assert discount_notes(opt, (YUN_PER_KG_BS,), REQ, NOW) == [
        "discount YunExpress 2% per kg on Buy Shipping: -0.20 USD (2% of the weight charge 10 USD "
        "for 0.5 kg chargeable)"]


def test_handling_percent_is_computed_on_the_handling_fee() -> None:
    opt = bs("YUNEXPRESS_AYPZXR", "12.00", handling="2.00", kg=500)
    assert cost(opt, HANDLING_BS) == Money(Decimal("11.70"), "USD")  # 15 % of 2.00 = 0.30
    both = cost(opt, HANDLING_BS, YUN_PER_KG_BS)
    assert both == Money(Decimal("11.50"), "USD")


def test_without_a_handling_fee_the_part_is_unknown_and_said() -> None:
    opt = bs("YUNEXPRESS_AYPZXR", "12.00")
    assert cost(opt, YUN_PER_KG_BS, HANDLING_BS) == Money(Decimal("12.00"), "USD")
    notes = discount_notes(opt, (YUN_PER_KG_BS, HANDLING_BS), REQ, NOW)
    assert len(notes) == 2 and all("does not break out its handling fee" in n for n in notes)


def test_buy_shipping_offer_needs_its_services() -> None:
    import pytest

    from connector.rules import RulesError
    with pytest.raises(RulesError, match="names the Buy Shipping services"):
        Discount("chinapost", "percent", Decimal(5), channel="buy_shipping")
    with pytest.raises(RulesError, match="channel must be one of direct, buy_shipping"):
        Discount("chinapost", "percent", Decimal(5), channel="online")


def test_direct_service_list() -> None:
    d = Discount("yunexpress", "percent", Decimal(10), services=("THPHR",))
    assert cost(option(YUN, "THPHR", "10.00"), d) == Money(Decimal("9.00"), "USD")
    assert cost(option(YUN, "AYPZXR", "10.00"), d) == Money(Decimal("10.00"), "USD")


def _sandbox_promotions() -> list[Discount]:
    import yaml

    from connector.rules import ChoicePolicy
    from tests.conftest import SANDBOX_YAML

    section = yaml.safe_load(SANDBOX_YAML.read_text(encoding="utf-8"))["selection"]
    return [d for d in ChoicePolicy.from_config(section).discounts if d.channel == "buy_shipping"]


DIRECT_OF = {"chinapost": (CHINAPOST, "EUB"), "yunexpress": (YUN, "AYPZXR")}


@pytest.mark.parametrize("promo", _sandbox_promotions(), ids=lambda d: d.name)
def test_each_seeded_promotion_on_and_off_its_channel_and_window(promo: Discount) -> None:
    service = promo.services[0]
    opt = QuoteOption(**{**bs(service, "12.00", handling="2.00", kg=500).__dict__, "service": service})
    assert promo.valid_until is not None
    until = promo.valid_until
    inside = NOW.replace(year=until.year, month=until.month, day=until.day)
    assert cost(opt, promo, now=inside).amount < Decimal("12.00")  # the last day: applied
    after = inside + timedelta(days=1)
    assert cost(opt, promo, now=after) == Money(Decimal("12.00"), "USD")
    assert discount_notes(opt, (promo,), REQ, after) == [
        f"discount {promo.name}: ended on {promo.valid_until.isoformat()}: not applied"]
    if promo.carrier in DIRECT_OF:  # the same carrier's direct label never gets the online offer
        direct_spec, direct_service = DIRECT_OF[promo.carrier]
        assert cost(option(direct_spec, direct_service, "12.00", handling="2.00"), promo, now=inside) == \
            Money(Decimal("12.00"), "USD")


def test_the_seeded_promotions_are_buy_shipping_offers_on_named_services() -> None:
    promos = {d.carrier: d for d in _sandbox_promotions()}
    assert set(promos) == {"chinapost", "yanwen", "yunexpress", "dhl_ecommerce"}
    assert promos["chinapost"].services == ("CHINAPOST_EPACKET",) and promos["chinapost"].kind == "percent"
    assert promos["yanwen"].kind == promos["yunexpress"].kind == "per_kg"
    assert promos["dhl_ecommerce"].kind == "handling_percent"
