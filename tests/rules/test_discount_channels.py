"""Promotions carry a channel, a service list and a window (docs/site-rules.md#discounts).

A ``buy_shipping`` offer applies to the named Buy Shipping services only, never to the same
carrier's direct labels; a ``direct`` one never to Buy Shipping. ``per_kg`` takes its percentage
off the weight charge (price minus the handling fee), ``handling_percent`` off the handling fee;
outside its window a discount does nothing and the quote says so.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

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
