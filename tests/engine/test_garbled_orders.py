"""An order Amazon sends garbled, in the order poll: it is kept and held with the field named, the
orders after it and the other accounts go on, and an order the ledger already has keeps what it
had (a cancellation read before must not be lost to a garbled copy)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from connector.engine.ingest import ingest_account
from connector.engine.loop import Engine, step
from connector.holds import HoldReason
from connector.ledger import OrderState
from connector.model import FulfillmentStatus
from tests.e2e.helpers import ingest_all

pytestmark = pytest.mark.e2e


def garble(rt: Any, account: str, change: Callable[[dict[str, Any]], None],
           which: Callable[[dict[str, Any]], bool] = lambda raw: True, *, once: bool = True) -> list[str]:
    """Let the account's searchOrders pages pass through ``change``, for the orders ``which``
    picks (the first one only, with ``once``); returns the ids of the orders changed so far."""
    client = rt.amazon[account]
    real = client.search_orders_pages
    changed: list[str] = []

    def pages(**kwargs: Any):
        for page in real(**kwargs):
            for raw in page["orders"]:
                if which(raw) and not (once and changed):
                    change(raw)
                    changed.append(raw["orderId"])
            yield page

    client.search_orders_pages = pages
    return changed


def first_account(rt: Any) -> str:
    return rt.config.accounts[0].name


def assert_the_poll_went_on(rt: Any, account: str) -> None:
    """The orders after a garbled one were stored, and the account's watermark moved."""
    assert len([r for r in rt.ledger.orders() if r.order.account == account]) > 1, \
        "the orders after the garbled one were not stored"
    assert rt.ledger.get_watermark(account) is not None, "the watermark did not move"


def assert_held_malformed(rt: Any, order_id: str, words: str) -> None:
    record = rt.ledger.get_order(order_id)
    assert record.state is OrderState.HELD and record.hold_reason == HoldReason.MALFORMED_ORDER.value
    assert words in record.hold_message, record.hold_message


def test_a_new_order_with_text_utf8_cannot_hold_is_held_and_the_poll_goes_on(world):
    rt = world({"sandbox": {"orders": 6}}).runtime()
    try:
        account = first_account(rt)
        bad = garble(rt, account, lambda raw: raw["recipient"]["deliveryAddress"].update(name="Jos\ud83d"),
                     lambda raw: bool((raw.get("recipient") or {}).get("deliveryAddress")))
        ingest_account(rt, rt.config.account(account))
        assert bad, "the account has no order with an address to garble"
        record = rt.ledger.get_order(bad[0])
        assert record.state is OrderState.HELD and record.hold_reason == HoldReason.MALFORMED_ORDER.value
        assert "recipient.deliveryAddress.name: text that is not valid Unicode" in record.hold_message
        site = rt.sites.for_marketplace(record.order.marketplace_id).code  # it lists under its site
        assert record.order.site == site != ""
        assert record.hold_message.startswith(f"order {bad[0]}: ")
        stored = [r for r in rt.ledger.orders() if r.order.account == account]
        assert len(stored) > 1, "the orders after the garbled one were not stored"
        assert rt.ledger.get_watermark(account) is not None, "the watermark did not move"
    finally:
        rt.close()


def _ship_by_far_away(raw: dict[str, Any]) -> None:
    raw["fulfillment"]["shipByWindow"]["latestDateTime"] = "9999-12-31T23:59:59-05:00"


def test_a_date_beyond_any_order_is_held_and_the_accounts_poll_goes_on(world):
    """A well-formed date the ledger cannot store in UTC (9999-12-31T23:59:59-05:00) used to fail
    the account's whole poll, at every poll: not one of its orders reached the ledger."""
    rt = world({"sandbox": {"orders": 6}}).runtime()
    try:
        account = first_account(rt)
        bad = garble(rt, account, _ship_by_far_away,
                     lambda raw: bool((raw.get("fulfillment") or {}).get("shipByWindow")))
        assert Engine(rt).poll_accounts() == 0
        assert bad, "the account has no order with a ship-by window to garble"
        assert_held_malformed(rt, bad[0], "fulfillment.shipByWindow.latestDateTime is out of range")
        assert_the_poll_went_on(rt, account)
    finally:
        rt.close()


def test_a_field_of_the_wrong_shape_is_held_and_the_other_accounts_are_polled(world):
    rt = world({"sandbox": {"orders": 6}}).runtime()
    try:
        account = first_account(rt)
        bad = garble(rt, account, lambda raw: raw.update(salesChannel="Amazon.com"))
        assert Engine(rt).poll_accounts() == 0
        record = rt.ledger.get_order(bad[0])
        assert record.state is OrderState.HELD and record.hold_reason == HoldReason.MALFORMED_ORDER.value
        assert "salesChannel" in record.hold_message
        assert (record.order.site, record.order.marketplace_id) == ("", "")  # nothing to tell it by
        for other in rt.config.accounts:
            assert rt.ledger.get_watermark(other.name) is not None, f"{other.name} was not polled"
    finally:
        rt.close()


def test_an_unexpected_failure_of_one_accounts_poll_leaves_the_others(world, monkeypatch, caplog):
    rt = world({"sandbox": {"orders": 3}}).runtime()
    try:
        broken = first_account(rt)
        real = ingest_account

        def failing(rt_: Any, account: Any, progress: Any = None) -> int:
            if account.name == broken:
                raise RuntimeError("a bug")
            return real(rt_, account, progress)

        monkeypatch.setattr("connector.engine.loop.ingest_account", failing)
        assert Engine(rt).poll_accounts() == 1
        assert rt.ledger.get_watermark(broken) is None
        others = [a.name for a in rt.config.accounts if a.name != broken]
        assert others and all(rt.ledger.get_watermark(name) is not None for name in others)
        assert f"account {broken}: order poll failed unexpectedly" in caplog.text
    finally:
        rt.close()


def test_a_garbled_copy_of_a_known_order_does_not_replace_it(world):
    rt = world({"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]},
                "selection": {"overrides": []}}).runtime()
    try:
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            step(rt, record)
        before = next(r for r in rt.ledger.orders([OrderState.PLANNED])
                      if r.order.status is FulfillmentStatus.UNSHIPPED)
        order_id, account = before.order_id, before.order.account

        garble(rt, account, lambda raw: raw.update(orderItems=[]), lambda raw: raw.get("orderId") == order_id,
               once=False)
        ingest_account(rt, rt.config.account(account))
        after = rt.ledger.get_order(order_id)
        assert (after.order.status, after.order.site, after.order.items) == \
            (before.order.status, before.order.site, before.order.items)
        assert after.state is OrderState.HELD and after.hold_reason == HoldReason.MALFORMED_ORDER.value
        assert after.held_from is OrderState.PLANNED
        assert "orderItems" in after.hold_message and "the data read before is kept" in after.hold_message

        # Amazon's next answer is whole: the hold ends and the order goes on from where it was
        rt.amazon[account].search_orders_pages = type(rt.amazon[account]).search_orders_pages.__get__(
            rt.amazon[account])
        ingest_account(rt, rt.config.account(account))
        assert rt.ledger.get_order(order_id).state is OrderState.PLANNED
    finally:
        rt.close()


def test_a_sku_with_an_invisible_character_is_held_with_the_character_shown(world):
    """"SKU YOGA-MAT-6MM is not in the catalog" for a SKU that is in it: the message must show the
    zero-width space Amazon's copy holds."""
    rt = world({"sandbox": {"orders": 12}}).runtime()
    try:
        account = first_account(rt)
        skus: list[str] = []

        def hide_a_space(raw: dict[str, Any]) -> None:
            product = raw["orderItems"][0]["product"]
            skus.append(product["sellerSku"])
            product["sellerSku"] += "\u200b"

        bad = garble(rt, account, hide_a_space,
                     lambda raw: rt.catalog.get(raw["orderItems"][0]["product"]["sellerSku"]) is not None
                     and (raw.get("fulfillment") or {}).get("fulfillmentStatus") == "UNSHIPPED"
                     and not any(item.get("cancellation") for item in raw["orderItems"]))
        Engine(rt).run_pass()
        record = rt.ledger.get_order(bad[0])
    finally:
        rt.close()
    assert record.state is OrderState.HELD and record.hold_reason == HoldReason.UNKNOWN_SKU.value
    assert f"SKU '{skus[0]}\\u200b' (it holds invisible characters) is not in the" in record.hold_message


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00",
                                   "2026-02-30T10:00:00Z"])
def test_a_new_order_with_a_last_update_beyond_any_order_is_held_and_the_poll_goes_on(world, value):
    """The placeholder of a new order whose lastUpdatedTime is out of range took that time as it was:
    storing it overflowed (UTC of 9999-12-31T23:59:59-05:00), out of the poll, at every poll."""
    rt = world({"sandbox": {"orders": 6}}).runtime()
    try:
        account = first_account(rt)
        bad = garble(rt, account, lambda raw: raw.update(lastUpdatedTime=value))
        assert Engine(rt).poll_accounts() == 0
        assert_held_malformed(rt, bad[0], "lastUpdatedTime")
        assert_the_poll_went_on(rt, account)

        # Amazon's next answer is whole: it replaces the placeholder (whose time was unreadable:
        # the epoch, not the time of reading, or this copy would read as the older one)
        client = rt.amazon[account]
        client.search_orders_pages = type(client).search_orders_pages.__get__(client)
        rt.ledger.set_watermark(account, datetime(2000, 1, 1, tzinfo=timezone.utc))  # read it all again
        ingest_account(rt, rt.config.account(account))
        record = rt.ledger.get_order(bad[0])
        assert record.state is OrderState.NEW and record.order.items
    finally:
        rt.close()


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("where", ["orderId", "orderId-shipped", "marketplaceId"])
def test_a_nul_in_an_orders_id_or_marketplace_holds_or_skips_it_and_the_poll_goes_on(world, ledger_backend,
                                                                                      where):
    """JSON allows a NUL (``\\u0000``), PostgreSQL's text refuses it: an order id or marketplace id
    holding one failed the account's whole poll there, poll after poll. An order id no ledger
    should hold is skipped (logged, as one without a readable orderId), a shipped one too (its id
    was looked up in the ledger first); a marketplace id with one is no known marketplace, and the
    order is held with its id."""
    rt = world({"sandbox": {"orders": 6}}).runtime()
    try:
        account = first_account(rt)
        if where == "orderId":
            bad = garble(rt, account, lambda raw: raw.update(orderId=raw["orderId"] + "\x00"))
        elif where == "orderId-shipped":
            bad = garble(rt, account, lambda raw: (raw.update(orderId=raw["orderId"] + "\x00"),
                                                   raw["fulfillment"].update(fulfillmentStatus="SHIPPED")))
        else:
            bad = garble(rt, account,
                         lambda raw: raw["salesChannel"].update(marketplaceId="ATVPDKIKX0DER\x00"))
        assert Engine(rt).poll_accounts() == 0
        assert_the_poll_went_on(rt, account)
        if where == "marketplaceId":
            assert_held_malformed(rt, bad[0], "marketplaceId")
            assert rt.ledger.get_order(bad[0]).order.marketplace_id == ""
        else:
            assert all("\x00" not in r.order_id for r in rt.ledger.orders())
    finally:
        rt.close()
