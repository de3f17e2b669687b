"""connector/transparency.py: which items need codes, the codes given checked, each package's share."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from connector.amazon.mapping import order_from_api
from connector.model import FulfillmentStatus, Order, OrderItem
from connector.transparency import check_codes, codes_for_package, enrolled_items

from .amazon.test_mapping import FULL_ORDER

AZ = [f"AZ{n:027d}" for n in range(1, 6)]  # 29 characters, as Amazon's own codes


def _order(*items: OrderItem) -> Order:
    return Order(order_id="113-1234567-7654321", account="acme-us", marketplace_id="ATVPDKIKX0DER", site="US",
                 status=FulfillmentStatus.UNSHIPPED, last_updated=datetime(2026, 3, 1, tzinfo=timezone.utc),
                 items=items)


ENROLLED = OrderItem("item-1", "SKU-T", 2, programs=("TRANSPARENCY",))
PLAIN = OrderItem("item-2", "SKU-P", 1)


def test_an_items_programs_are_read_from_the_orders_api():
    raw = copy.deepcopy(FULL_ORDER)
    raw["orderItems"][0]["programs"] = ["TRANSPARENCY", "", None, {"x": 1}]
    order = order_from_api(raw, account="acme-us")
    assert order.items[0].programs == ("TRANSPARENCY",)
    assert OrderItem.from_dict(order.items[0].to_dict()) == order.items[0]  # as the ledger keeps it
    assert enrolled_items(order) == {order.items[0].order_item_id: order.items[0].quantity}


def test_an_item_without_programs_is_stored_as_before():
    assert "programs" not in PLAIN.to_dict()
    assert OrderItem.from_dict(PLAIN.to_dict()) == PLAIN


def test_codes_are_one_per_unit_of_an_item_of_the_order():
    order = _order(ENROLLED, PLAIN)
    assert check_codes(order, {"item-1": [f" {AZ[0]} ", AZ[1]]}) == {"item-1": (AZ[0], AZ[1])}
    with pytest.raises(ValueError, match=r"item-1: 1 code\(s\) given for 2 unit\(s\) to ship \(SKU SKU-T\)"):
        check_codes(order, {"item-1": [AZ[0]]})
    with pytest.raises(ValueError, match="item-9: not an item of this order"):
        check_codes(order, {"item-9": AZ[:2]})
    with pytest.raises(ValueError, match="item-2: not a Transparency item as Amazon's order shows it"):
        check_codes(order, {"item-2": AZ[:1]})
    with pytest.raises(ValueError, match="given twice"):
        check_codes(order, {"item-1": [AZ[0], AZ[0]]})
    with pytest.raises(ValueError, match="no spaces or control characters"):
        check_codes(order, {"item-1": [AZ[0], "AZ 1"]})
    with pytest.raises(ValueError, match="non-empty string"):
        check_codes(order, {"item-1": [AZ[0], " "]})
    with pytest.raises(ValueError, match="must be a list"):
        check_codes(order, {"item-1": AZ[0]})
    with pytest.raises(ValueError, match="no spaces or control characters"):
        check_codes(order, {"item-1": [AZ[0], "AZ\x001"]})


def test_a_package_takes_its_share_of_a_split_items_codes():
    order = _order(OrderItem("item-1", "SKU-T", 3, programs=("TRANSPARENCY",)), PLAIN)
    kept = {"item-1": tuple(AZ[:3])}
    planned = {"item-1": 3, "item-2": 1}  # the units the order's two packages carry
    first = codes_for_package(order, [{"order_item_id": "item-1", "quantity": 2}], kept, {}, planned)
    rest = [{"order_item_id": "item-1", "quantity": 1}, {"order_item_id": "item-2", "quantity": 1}]
    second = codes_for_package(order, rest, kept, {"item-1": 2}, planned)
    assert (first.codes, first.missing) == ({"item-1": AZ[:2]}, {})
    assert (second.codes, second.missing) == ({"item-1": [AZ[2]]}, {})


def test_missing_codes_are_named_per_item():
    order = _order(ENROLLED, PLAIN)
    lines = [{"order_item_id": "item-1", "quantity": 2}, {"order_item_id": "item-2", "quantity": 1}]
    planned = {"item-1": 2, "item-2": 1}
    coded = codes_for_package(order, lines, {"item-1": (AZ[0],)}, {}, planned)
    assert (coded.codes, coded.missing) == ({}, {"item-1": (2, 1)})
    # kept for 3 units, the packages carry 2 (a unit shipped by hand): which code went is unknown
    stale = codes_for_package(order, lines, {"item-1": tuple(AZ[:3])}, {}, planned)
    assert (stale.codes, stale.missing) == ({}, {"item-1": (2, 3)})
    plain = codes_for_package(_order(PLAIN), [{"order_item_id": "item-2", "quantity": 1}], {}, {}, {})
    assert (plain.codes, plain.missing) == ({}, {})
