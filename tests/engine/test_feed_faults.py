"""Feeds that go wrong between the claim and the report, against the emulator: a package that
must no longer be confirmed is never sent, and no feed's trouble leaves its packages (or the
account's other orders) waiting for ever."""
from __future__ import annotations

import pytest

from connector.amazon.errors import TransientError
from connector.amazon.feeds import FeedsClient
from connector.engine import feeds as feeds_mod
from connector.engine.loop import drive
from connector.engine.steer import hold_order, void_order
from connector.ledger import OrderState, PackageState

from ..e2e.helpers import advance, feeds_config, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def labeled_world(world, orders: int = 40, **feeds):
    """A world confirming by feed at once, its shippable orders LABELED."""
    config = feeds_config(orders)
    config["amazon"]["feeds"].update(batch_wait_seconds=0, **feeds)
    w = world(config)
    rt = w.runtime()
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        drive(rt, record.order_id, lambda: False)
    return w, rt


def next_report(w, rt) -> None:
    """The emulator's feeds done, and the next feeds pass polls them at once."""
    advance(w, 5)
    feeds_mod._state(rt).checked.clear()
    feeds_mod.run_feeds(rt)


def failing(monkeypatch, operation: str, error: Exception) -> list[bool]:
    """FeedsClient.<operation> raises ``error`` while the returned flag is set."""
    real = getattr(FeedsClient, operation)
    fail = [True]

    def call(self, *args, **kwargs):
        if fail[0]:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FeedsClient, operation, call)
    return fail


def test_a_package_voided_or_held_before_its_feed_is_submitted_is_left_out_of_it(world, monkeypatch):
    w, rt = labeled_world(world)
    try:
        fail = failing(monkeypatch, "create_feed_document",
                       TransientError("HTTP 503", status=503, operation="createFeedDocument"))
        feeds_mod.run_feeds(rt)
        feed = rt.ledger.feeds("demo-na")[0]
        assert feed.state == "CLAIMED"
        members = rt.ledger.feed_members(feed.id)
        voided = rt.ledger.get_package(members[0].package_id)
        held = rt.ledger.get_package(members[1].package_id)
        assert void_order(rt, voided.order_id).complete
        hold_order(rt.ledger, held.order_id, "manual", "fraud check: do not ship")
        fail[0] = False
        feeds_mod.run_feeds(rt)  # submitted again, without those two
        next_report(w, rt)

        feed = rt.ledger.get_feed_record(feed.id)
        assert feed.state == "DONE"
        assert feed.rows_total == sum(len(rt.ledger.get_package(m.package_id).items) for m in members[2:])
        shipments = w.state("spapi")["feed_shipments"]
        assert voided.order_id not in shipments and held.order_id not in shipments
        results = {m.package_id: m.result for m in rt.ledger.feed_members(feed.id)}
        assert results[voided.id] == "skipped" and results[held.id] == "retry"
        assert {results[m.package_id] for m in members[2:]} == {"accepted"}
        assert all(rt.ledger.get_package(m.package_id).order_id in shipments for m in members[2:])
        assert rt.ledger.get_package(voided.id).state is PackageState.VOIDED
        record = rt.ledger.get_order(held.order_id)
        assert (record.state, record.hold_reason, record.held_from) == (
            OrderState.HELD, "manual", OrderState.LABELED)
        assert rt.ledger.get_package(held.id).state is PackageState.LABELED
    finally:
        rt.close()


def test_a_worker_holding_a_package_a_feed_settles_meanwhile_does_not_send_it(world):
    """The feeds thread settles the feed (its line refused: the package LABELED, the order held)
    between an order worker's read of the CONFIRMING package and its in_open_feed() check."""
    w, rt = labeled_world(world)
    try:
        labeled = rt.ledger.orders([OrderState.LABELED])
        w.sandbox.servers["spapi"].emulator.feeds.reject_orders = {
            r.order_id: {"code": "18028", "message": "incomplete"} for r in labeled}
        feeds_mod.run_feeds(rt)
        feed = rt.ledger.feeds("demo-na")[0]
        assert feed.state == "SUBMITTED"
        target = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id).order_id
        advance(w, 5)
        feeds_mod._state(rt).checked.clear()
        in_open_feed = rt.ledger.in_open_feed

        def settled_first(package_id):
            rt.ledger.in_open_feed = in_open_feed
            feeds_mod.run_feeds(rt)  # the feeds thread, right now
            return in_open_feed(package_id)

        rt.ledger.in_open_feed = settled_first
        drive(rt, target, lambda: False, 1)  # one step of the order's worker
        assert rt.ledger.in_open_feed == in_open_feed, "the feed was never checked"
        record = rt.ledger.get_order(target)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "amazon_rejected")
        assert rt.ledger.open_package(target).state is PackageState.LABELED
        assert target not in w.state("spapi")["confirmations"]
    finally:
        rt.close()
