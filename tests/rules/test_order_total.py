"""The value rules compare the order total, items + shipping (docs/site-rules.md#order-value).

When Amazon sends no total, the item prices are only a lower bound: a rule that needs the value
below a threshold takes its strict side, a rule the items alone already break is decided on them,
and the note says which.
"""
from __future__ import annotations

from decimal import Decimal

from connector.model import Money
from connector.rules import requirements

from .helpers import FX, RULES, SHIP_WITHOUT_IOSS, order, parcel


def req(site: str, total: str | None, items: tuple = (("SKU-1", 1, "4.00"),)):
    return requirements(order(site, total, items=items), None, RULES, FX, parcel=parcel(),
                        ioss=SHIP_WITHOUT_IOSS)


def test_shipping_counts_towards_the_tracking_threshold() -> None:
    # items 4.00 + shipping 1.00: the order is worth 5.00, not below 5 USD
    r = req("US", "5.00", items=(("SKU-1", 1, "4.00"),))
    assert r.goods_value == Money(Decimal("4.00"), "USD") and r.tracking_level == "fully_tracked"
    assert req("US", "4.99", items=(("SKU-1", 1, "4.00"),)).tracking_level == "tracked"


def test_no_total_items_below_the_threshold_is_fully_tracked_and_says_why() -> None:
    r = req("US", None, items=(("SKU-1", 1, "4.00"),))
    assert r.order_value is None and r.tracking_level == "fully_tracked"
    assert any("Amazon sent no order total" in n and "4 USD" in n for n in r.notes)
    assert any("no order total to show it is below 5 USD" in n for n in r.notes)


def test_no_total_buy_shipping_cap() -> None:
    over = req("US", None, items=(("SKU-1", 1, "800.01"),))
    assert not over.buy_shipping_allowed
    assert "item prices 800.01 USD alone are above" in over.buy_shipping_reason
    under = req("US", None, items=(("SKU-1", 1, "10.00"),))
    assert not under.buy_shipping_allowed and "no order total" in under.buy_shipping_reason


def test_no_total_no_small_order_exclusion_or_returnless_refund() -> None:
    assert not req("DE", None, items=(("SKU-1", 1, "5.00"),)).vtr_excluded_if_exact
    assert not req("US", None, items=(("SKU-1", 1, "5.00"),)).returnless_refund
