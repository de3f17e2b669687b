"""FBM Ship+ orders take only a Buy Shipping label (docs/site-rules.md#fbm-ship).

Amazon refuses ``confirmShipment`` for a Ship+ order (HTTP 400: Amazon confirms it itself), so a
label bought from a carrier directly could never be confirmed: it would be paid for and the order
held afterwards. Only Amazon's own labels, which confirm themselves, are eligible.
"""
from __future__ import annotations

from dataclasses import replace

from connector.rules import requirements, select

from .helpers import AMAZON, FX, NOW, RULES, SHIP_WITHOUT_IOSS, YUN, option, order, parcel


def req(site: str = "US", total: str = "30.00", programs: tuple[str, ...] = ("FBM_SHIP_PLUS",)):
    o = replace(order(site, total), programs=programs)
    return requirements(o, None, RULES, FX, parcel=parcel(), ioss=SHIP_WITHOUT_IOSS)


def choose(r, *options):
    return select(r, list(options), rules=RULES[r.site], fx=FX, now=NOW, ship_from_city="Shenzhen")


def test_a_ship_plus_order_takes_the_buy_shipping_label_over_a_cheaper_direct_one() -> None:
    s = choose(req(), option(YUN, "AYPZXR", "3.00"), option(AMAZON, "YUNEXPRESS_AYPZXR", "6.00"))
    assert s.chosen is not None and s.chosen.option.carrier == "amazon_shipping"
    (rejected,) = s.rejections
    assert rejected.carrier == "yunexpress" and "Ship+" in str(rejected)


def test_a_ship_plus_order_without_buy_shipping_is_held_with_the_reason() -> None:
    r = req("SE")  # no Buy Shipping on the site
    s = choose(r, option(YUN, "AYPZXR", "3.00"))
    assert s.chosen is None
    assert "confirmShipment" in s.held_message() and "Ship+" in s.held_message()
    assert any("Ship+" in n for n in r.notes)


def test_other_programs_leave_direct_labels_eligible() -> None:
    s = choose(req(programs=("PRIME",)), option(YUN, "AYPZXR", "3.00"),
               option(AMAZON, "YUNEXPRESS_AYPZXR", "6.00"))
    assert s.chosen is not None and s.chosen.option.carrier == "yunexpress"
