"""An overdue feed (``amazon.feeds.max_processing_seconds`` after its createFeed) that Amazon has
not started yet is cancelled before it is given up: once getFeed shows it CANCELLED its packages
go back to LABELED and confirmShipment confirms them, once, and the feed is never processed. A
feed Amazon has started (IN_PROGRESS, or started between getFeed and cancelFeed) keeps the
read-back. Against the emulator, whose Amazon-side audit shows what was confirmed and how."""
from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest

from connector.amazon.feeds import FeedsClient
from connector.engine import feeds as feeds_mod
from connector.engine.crashpoints import ENV, FEED_CANCEL_POINT
from connector.engine.loop import drive
from connector.ledger import ACTIVE_ORDER_STATES, OrderState, PackageState

from ..e2e.helpers import advance, feeds_config, ingest_all, ledger_of, run_cli, run_once_until_quiet

pytestmark = [pytest.mark.e2e]

EIGHT_HOURS = 8 * 3600  # amazon.feeds.max_processing_seconds by default


def _config(in_queue_seconds: float, processing_seconds: float = 2, **feeds) -> dict:
    config = feeds_config(40)
    config["sandbox"]["emulators"]["spapi"]["feeds"].update(
        in_queue_seconds=in_queue_seconds, processing_seconds=processing_seconds)
    config["amazon"]["feeds"].update(batch_wait_seconds=0, **feeds)
    return config


def _submitted(w, rt) -> tuple[list, dict[int, set[str]]]:
    """The world's orders LABELED and one feed per account created: the feeds, and their orders."""
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        drive(rt, record.order_id, lambda: False)
    feeds_mod.run_feeds(rt)
    feeds = rt.ledger.feeds()
    assert feeds and {f.state for f in feeds} == {"SUBMITTED"}
    members = {f.id: {rt.ledger.get_package(m.package_id).order_id for m in rt.ledger.feed_members(f.id)}
               for f in feeds}
    return feeds, members


def _overdue(w, rt) -> tuple[list, dict[int, set[str]]]:
    """:func:`_submitted`, then ``max_processing_seconds`` pass and the next pass polls the feeds
    (which gives each up, or cancels it first): the feeds, and their orders."""
    feeds, members = _submitted(w, rt)
    advance(w, EIGHT_HOURS)
    _next_poll(rt)
    return feeds, members


def _next_poll(rt) -> None:
    feeds_mod._state(rt).checked.clear()
    feeds_mod.run_feeds(rt)


def _drive_until_settled(rt, order_ids) -> None:
    for _ in range(4):
        for order_id in order_ids:
            drive(rt, order_id, lambda: False)


def _package(rt, order_id: str):
    (package,) = [p for p in rt.ledger.packages(order_id) if p.tracking_number]
    return package


@pytest.mark.usefixtures("daemon_clock")
def test_an_overdue_feed_in_queue_is_cancelled_and_its_orders_confirmed_once_by_confirm_shipment(world):
    w = world(_config(in_queue_seconds=10 ** 8))  # Amazon never starts it
    rt = w.runtime()
    try:
        feeds, members = _overdue(w, rt)
        ours = set().union(*members.values())
        on_amazon = w.state("spapi")["feeds"]
        assert {on_amazon[f.feed_id]["processingStatus"] for f in feeds} == {"CANCELLED"}
        # settled by the getFeed that shows it CANCELLED, not by the cancel's answer
        assert {rt.ledger.get_feed_record(f.id).state for f in feeds} == {"SUBMITTED"}
        assert all(_package(rt, o).state is PackageState.CONFIRMING for o in ours)

        feeds_mod.run_feeds(rt)  # the next pass: getFeed at once, CANCELLED, the packages given back
        for feed in feeds:
            record = rt.ledger.get_feed_record(feed.id)
            assert (record.state, record.processing_status) == ("FAILED", "CANCELLED")
            assert {m.result for m in rt.ledger.feed_members(feed.id)} == {"retry"}
        assert all(_package(rt, o).state is PackageState.LABELED for o in ours)

        _drive_until_settled(rt, ours)
        advance(w, 10 ** 9)  # the cancelled feeds are never processed, however long one waits
        _next_poll(rt)
        state = w.state("spapi")
        assert {state["feeds"][f.feed_id]["processingStatus"] for f in feeds} == {"CANCELLED"}
        assert not ours & set(state["feed_shipments"]), "a line of a cancelled feed was applied"
        for order_id in ours:
            assert rt.ledger.get_order(order_id).state is OrderState.VERIFIED, order_id
            (confirmation,) = state["confirmations"][order_id].values()
            assert confirmation["accepted"] == 1, order_id
            assert not rt.ledger.confirmed_by_feed(_package(rt, order_id).id)
        assert state["operation_calls"]["cancelFeed"] == {"total": len(feeds), "throttled": 0}
        assert state["schema_violations"] == []
    finally:
        rt.close()


@pytest.mark.usefixtures("daemon_clock")
def test_an_overdue_feed_in_progress_is_not_cancelled_and_its_orders_are_read_back(world):
    w = world(_config(in_queue_seconds=1, processing_seconds=10 ** 8))  # started, never finished
    rt = w.runtime()
    try:
        feeds, members = _overdue(w, rt)
        for feed in feeds:
            record = rt.ledger.get_feed_record(feed.id)
            assert record.state == "FAILED" and record.processing_status == "IN_PROGRESS"  # as last seen
            assert {m.result for m in rt.ledger.feed_members(feed.id)} == {"unknown"}
        assert all(_package(rt, o).state is PackageState.CONFIRMED for o in set().union(*members.values()))
        assert "cancelFeed" not in w.state("spapi")["operation_calls"]
    finally:
        rt.close()


@pytest.mark.usefixtures("daemon_clock")
def test_a_feed_started_between_get_feed_and_cancel_feed_keeps_the_read_back(world, monkeypatch):
    """Amazon refuses the cancel (400: no longer IN_QUEUE) and then processes the feed: its
    packages, read back from the orders, are found there, and none is confirmed again."""
    w = world(_config(in_queue_seconds=EIGHT_HOURS + 60, processing_seconds=600))
    real = FeedsClient.cancel_feed

    def cancel_too_late(self, feed_id):
        advance(w, 120)  # Amazon starts it meanwhile
        return real(self, feed_id)

    monkeypatch.setattr(FeedsClient, "cancel_feed", cancel_too_late)
    rt = w.runtime()
    try:
        feeds, members = _overdue(w, rt)
        ours = set().union(*members.values())
        for feed in feeds:
            assert rt.ledger.get_feed_record(feed.id).state == "FAILED"
            assert {m.result for m in rt.ledger.feed_members(feed.id)} == {"unknown"}
        # the first account's feed, refused; the others' started meanwhile: not even asked
        assert w.state("spapi")["operation_calls"]["cancelFeed"]["total"] == 1
        advance(w, 700)  # the feeds are processed after all (the emulator does it when looked at)
        assert {w.state("spapi")["feeds"][f.feed_id]["processingStatus"] for f in feeds} == {"DONE"}
        _drive_until_settled(rt, ours)
        state = w.state("spapi")
        for order_id in ours:
            assert rt.ledger.get_order(order_id).state is OrderState.VERIFIED, order_id
            assert order_id not in state["confirmations"], order_id  # no confirmShipment besides the feed
            (entry,) = state["feed_shipments"][order_id].values()
            assert entry["created"] == 1, order_id
        assert state["schema_violations"] == []
    finally:
        rt.close()


@pytest.mark.slow
def test_killed_between_the_cancel_and_the_settle_then_restarted(world):
    """The cancel accepted, the daemon killed before any getFeed showed the feed CANCELLED: the
    ledger still has the feed SUBMITTED. The restarted daemon polls it, sees CANCELLED and settles
    it as any cancelled feed, and each of its packages is confirmed once by confirmShipment."""
    w = world(_config(in_queue_seconds=10 ** 8, max_processing_seconds=2))  # (a subprocess: real time)
    rt = w.runtime()
    try:
        feeds, members = _submitted(w, rt)
    finally:
        rt.close()
    time.sleep(2.5)  # overdue
    result = run_cli(w, "run", "--once", extra_env={ENV: f"{FEED_CANCEL_POINT}:1"})
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    spapi = w.sandbox.servers["spapi"].emulator
    cancelled = [f for f in feeds if w.state("spapi")["feeds"][f.feed_id]["processingStatus"] == "CANCELLED"]
    assert len(cancelled) == 1
    (feed,) = cancelled
    ledger = ledger_of(w)
    try:
        assert ledger.get_feed_record(feed.id).state == "SUBMITTED"
    finally:
        ledger.close()

    spapi.feeds.in_queue = spapi.feeds.processing = timedelta(0)  # Amazon processes feeds again
    run_once_until_quiet(w, max_runs=40)

    state = w.state("spapi")
    assert state["feeds"][feed.feed_id]["processingStatus"] == "CANCELLED"
    assert state["schema_violations"] == []
    shipments = state["feed_shipments"]
    assert not any(feed.feed_id in e["feeds"] for by in shipments.values() for e in by.values())
    ledger = ledger_of(w)
    try:
        record = ledger.get_feed_record(feed.id)
        assert (record.state, record.processing_status) == ("FAILED", "CANCELLED")
        assert {m.result for m in ledger.feed_members(feed.id)} == {"retry"}
        assert all(f.state in ("DONE", "FAILED") for f in ledger.feeds())
        for order_id in members[feed.id]:
            assert ledger.get_order(order_id).state not in ACTIVE_ORDER_STATES, order_id
            # the restarted daemon, too, confirms them by confirmShipment (not a new feed), once
            assert order_id not in shipments, order_id
            (confirmation,) = state["confirmations"][order_id].values()
            assert confirmation["accepted"] == 1, order_id
    finally:
        ledger.close()


@pytest.mark.usefixtures("daemon_clock")
def test_a_cancelled_feed_submitted_again_after_a_lost_create_feed_answer_is_read_back(world, monkeypatch):
    """createFeed went through but its answer was lost, so the feed was submitted again: two feeds
    on Amazon carry its lines, and the ledger follows only the second. That one is cancelled (given
    up IN_QUEUE) while the first is processed after all: the CANCELLED status says nothing of the
    first, so its packages are read back (shown: verified), not sent again by confirmShipment."""
    from connector.amazon.errors import TransientError

    w = world(_config(in_queue_seconds=10 ** 8))  # Amazon starts neither feed for now
    real = FeedsClient.create_feed
    lost: list[str] = []

    def answer_lost(self, *args, **kwargs):
        feed_id = real(self, *args, **kwargs)
        if not lost:  # the first createFeed of the test: created on Amazon, its answer lost
            lost.append(feed_id)
            raise TransientError("no answer: ReadTimeout", operation="createFeed", ambiguous=True)
        return feed_id

    monkeypatch.setattr(FeedsClient, "create_feed", answer_lost)
    rt = w.runtime()
    try:
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            drive(rt, record.order_id, lambda: False)
        feeds_mod.run_feeds(rt)
        (twice,) = [f for f in rt.ledger.feeds() if f.state == "UPLOADED"]
        feeds_mod._state(rt).checked.clear()  # poll_seconds later
        feeds_mod.run_feeds(rt)  # submitted again: a second feed on Amazon with the same lines
        twice = rt.ledger.get_feed_record(twice.id)
        assert twice.state == "SUBMITTED" and twice.attempts == 2 and twice.feed_id != lost[0]
        ours = {rt.ledger.get_package(m.package_id).order_id for m in rt.ledger.feed_members(twice.id)}

        advance(w, EIGHT_HOURS)
        _next_poll(rt)  # overdue while IN_QUEUE: the followed feed is cancelled
        assert w.state("spapi")["feeds"][twice.feed_id]["processingStatus"] == "CANCELLED"
        spapi = w.sandbox.servers["spapi"].emulator
        spapi.feeds.in_queue = spapi.feeds.processing = timedelta(0)  # the first one is processed after all
        assert w.state("spapi")["feeds"][lost[0]]["processingStatus"] == "DONE"

        feeds_mod.run_feeds(rt)  # getFeed shows the followed one CANCELLED
        assert rt.ledger.get_feed_record(twice.id).processing_status == "CANCELLED"
        assert {m.result for m in rt.ledger.feed_members(twice.id)} == {"unknown"}
        _drive_until_settled(rt, ours)
        state = w.state("spapi")
        for order_id in ours:
            record = rt.ledger.get_order(order_id)
            assert record.state is OrderState.VERIFIED, (order_id, record.state, record.hold_message)
            assert order_id not in state["confirmations"], order_id  # not sent again
            (entry,) = state["feed_shipments"][order_id].values()
            assert entry["created"] == 1 and entry["feeds"] == [lost[0]], order_id
    finally:
        rt.close()


@pytest.mark.usefixtures("daemon_clock")
def test_a_feed_still_in_queue_after_cancels_amazon_accepted_is_given_up_not_cancelled_for_ever(
        world, monkeypatch):
    """cancelFeed is answered 200 every time, yet getFeed keeps showing the feed IN_QUEUE: after
    ``max_read_attempts`` such cancels the feed is given up, its packages read back from the orders
    (the cancel may never have taken: the feed may still be processed)."""
    w = world(_config(in_queue_seconds=10 ** 8, max_read_attempts=3))
    cancels: list[str] = []
    monkeypatch.setattr(FeedsClient, "cancel_feed", lambda self, feed_id: cancels.append(feed_id))
    rt = w.runtime()
    try:
        feeds, members = _overdue(w, rt)  # the first cancel
        for _ in range(8):  # the passes go on
            _next_poll(rt)
        for feed in feeds:
            record = rt.ledger.get_feed_record(feed.id)
            assert (record.state, record.processing_status) == ("FAILED", "IN_QUEUE")
            assert {m.result for m in rt.ledger.feed_members(feed.id)} == {"unknown"}
            assert cancels.count(feed.feed_id) == 3
        ours = set().union(*members.values())
        assert all(_package(rt, o).state is PackageState.CONFIRMED for o in ours)
    finally:
        rt.close()
