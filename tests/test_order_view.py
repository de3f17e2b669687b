"""`orders show` as text: what it says of an order's items."""
from __future__ import annotations

import pytest

from connector.cli.order_view import as_text


def _shown(*items: tuple[int, int], status: str) -> dict:
    order = {"order_id": "111-0000000-0000001", "account": "demo-na", "site": "US", "status": status,
             "items": [{"order_item_id": f"i{n}", "sku": f"SKU-{n}", "quantity": to_ship,
                        "quantity_shipped": shipped} for n, (to_ship, shipped) in enumerate(items)]}
    return {"order": order, "state": "DONE", "pii_purged": False, "address_on_file": False, "hold": None,
            "next_attempt_at": None, "attempts": 0, "last_error": None, "transparency_codes": {},
            "packages": [], "history": []}


def _items_line(shown: dict) -> str:
    return next(line.strip() for line in as_text(shown).splitlines() if line.strip().startswith("items:"))


@pytest.mark.parametrize(("items", "status", "line"), [
    ([(2, 0)], "Unshipped", "items: 2 x SKU-0"),
    ([(0, 2)], "Shipped", "items: 2 x SKU-0 (shipped)"),
    ([(1, 2)], "PartiallyShipped", "items: 3 x SKU-0 (2 shipped, 1 to ship)"),
    ([(0, 0)], "Canceled", "items: SKU-0 (none to ship)"),
])
def test_the_items_line_never_reads_as_zero_ordered(items, status, line):
    """``quantity`` is what is still to ship: an order shipped or cancelled on Amazon has 0 of it,
    which read "0 x SKU" as if nothing had been ordered."""
    assert _items_line(_shown(*items, status=status)) == line
