"""A feed applies line by line, so a feed-confirmed package is verified only when Amazon's package
with its tracking number holds every one of its items (when Amazon lists them)."""
from __future__ import annotations

from types import SimpleNamespace

from connector.engine.verify import shown_entry
from connector.ledger import Package, PackageState

PACKAGE = Package(id=7, order_id="111-0000001-0000001", package_ref="1", idempotency_key="MFN-1",
                  carrier="yunexpress", service="S1", state=PackageState.CONFIRMED, tracking_number="YT1",
                  items=[{"order_item_id": "A", "quantity": 3}, {"order_item_id": "B", "quantity": 1}])


def runtime(by_feed: bool) -> SimpleNamespace:
    return SimpleNamespace(carrier_specs={}, ledger=SimpleNamespace(confirmed_by_feed=lambda _id: by_feed))


def order(*package_items: tuple[str, int], tracking: str = "YT1") -> dict:
    listed = [{"orderItemId": i, "quantity": q} for i, q in package_items]
    return {"orderId": PACKAGE.order_id,
            "packages": [{"packageReferenceId": "9001", "trackingNumber": tracking, "packageItems": listed}]}


def test_a_feed_package_missing_an_item_on_amazon_is_not_shown() -> None:
    rt = runtime(by_feed=True)
    assert not shown_entry(rt, order(("A", 3)), PACKAGE)  # the line of item B was refused
    assert not shown_entry(rt, order(("A", 2), ("B", 1)), PACKAGE)  # short of item A
    assert shown_entry(rt, order(("A", 3), ("B", 1)), PACKAGE)
    assert shown_entry(rt, order(("A", 2), ("B", 1), ("A", 1)), PACKAGE)  # listed twice, added up
    assert not shown_entry(rt, order(("A", 3), ("B", 1), tracking="YT2"), PACKAGE)


def test_a_feed_package_amazon_lists_no_items_of_is_judged_by_its_tracking_number() -> None:
    rt = runtime(by_feed=True)
    assert shown_entry(rt, order(), PACKAGE)  # packageItems is optional in the model
    assert not shown_entry(rt, order(tracking="YT2"), PACKAGE)
