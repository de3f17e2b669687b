"""Bulk shipment confirmation through the Feeds API, with the real daemon: thousands of orders
confirmed by feed, rows the processing report refuses handled as refusals, SIGKILLs between
createFeed and the report, and no package confirmed twice (Amazon's side, from the emulator)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from connector.ledger import ACTIVE_ORDER_STATES, OrderState, PackageState

from .helpers import feeds_config, ledger_of, run_once_until_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Three sandbox accounts of 1,240 seeded orders: a little over 2,000 of them can ship, and at
# least 2,000 must be confirmed by feed (~2 minutes on 2 cores; the rest are held by design: no
# service for them, no address, a cancel request...). FEEDS_TEST_ORDERS=120 is a quicker run
# while working.
DEFAULT_ORDERS = 1240
BY_FEED_AT_DEFAULT = 2000
ORDERS_PER_ACCOUNT = int(os.environ.get("FEEDS_TEST_ORDERS", str(DEFAULT_ORDERS)))
DEADLINE_S = float(os.environ.get("FEEDS_TEST_DEADLINE", "60"))


def _daemon(world, crash_at: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(world.sandbox.env)
    env.pop("MFN_CONNECTOR_CRASH_AT", None)
    if crash_at:
        env["MFN_CONNECTOR_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "--config", str(world.config_path), "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _until_killed(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # the crash point was never reached: do not leave it running
        proc.kill()
        _, err = proc.communicate(timeout=30)
        return 0, err
    return proc.returncode, err


def _active(world) -> int:
    ledger = ledger_of(world)
    try:
        return sum(n for state, n in ledger.counts().items() if OrderState(state) in ACTIVE_ORDER_STATES)
    finally:
        ledger.close()


def _counts(world) -> dict:
    ledger = ledger_of(world)
    try:
        return ledger.counts()
    finally:
        ledger.close()


def _feeds_in_ledger(world) -> list:
    ledger = ledger_of(world)
    try:
        return ledger.feeds()
    finally:
        ledger.close()


@pytest.mark.timeout(int(os.environ.get("FEEDS_TEST_TIMEOUT", "480")))
@pytest.mark.slow(weight=10)  # about two minutes: the longest test of the suite
def test_a_backlog_confirmed_by_feed_with_refusals_and_crashes(world):
    w = world(feeds_config(ORDERS_PER_ACCOUNT))
    spapi = w.sandbox.servers["spapi"].emulator
    details = w.state("spapi")["order_details"]
    shippable = sorted(
        oid
        for oid, d in details.items()
        if d["fulfilledBy"] == "MERCHANT" and d["fulfillmentStatus"] == "UNSHIPPED"
    )
    rejected = set(shippable[::150])  # the processing report refuses every line of these
    spapi.feeds.reject_orders = {
        oid: {"code": "18028", "message": "The data you submitted is incomplete."} for oid in rejected
    }
    started = time.monotonic()

    # 1. killed right after createFeed answered, before the feed id was stored: the feed is
    #    submitted again with the same lines; Amazon's side must still hold one shipment each
    code, err = _until_killed(_daemon(w, "after_create_feed_call:1"), 120)
    assert code == -signal.SIGKILL, err[-3000:]
    # 2. killed with the feed id stored and its report read, before the report was applied
    code, err = _until_killed(_daemon(w, "before_feed_settle:1"), 120)
    assert code == -signal.SIGKILL, err[-3000:]
    # 3. a clean daemon carries on from the stored feeds and their reports for a while, then
    #    `run --once` passes finish what is left
    proc = _daemon(w)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while _active(w) and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    if _active(w):
        run_once_until_quiet(w, max_runs=40)
    assert _active(w) == 0, (_counts(w), _feeds_in_ledger(w))
    elapsed = time.monotonic() - started

    state = w.state("spapi")
    assert state["schema_violations"] == []
    feeds = state["feeds"]
    assert len(feeds) >= 4 and all(f["processingStatus"] == "DONE" for f in feeds.values())
    shipments = state["feed_shipments"]
    ledger = ledger_of(w)
    try:
        records = {r.order_id: r for r in ledger.orders()}
        verified = [r for r in records.values() if r.state is OrderState.VERIFIED]
        by_feed = 0
        for record in verified:
            (package,) = [p for p in ledger.packages(record.order_id) if p.state is PackageState.VERIFIED]
            if not ledger.confirmed_by_feed(package.id):
                continue
            if package.tracking_number not in shipments.get(record.order_id, {}):
                # its line in doubt (refused in the feed submitted again) and not applied: read back,
                # not shown, and sent again by confirmShipment -- once on Amazon's side all the same
                assert record.order_id in state["confirmations"], record.order_id
                continue
            by_feed += 1
            # exactly once on Amazon's side: one package made for our tracking number, never a
            # confirmShipment besides it
            assert shipments[record.order_id][package.tracking_number]["created"] == 1, record.order_id
            assert record.order_id not in state["confirmations"], record.order_id
            order = spapi.store["orders"][record.order_id]["order"]
            ours = [p for p in order["packages"] if p["trackingNumber"] == package.tracking_number]
            assert len(ours) == 1, record.order_id  # (a seeded partial shipment may sit beside it)
        assert by_feed >= 0.95 * len(verified) and len(verified) >= ORDERS_PER_ACCOUNT, (
            by_feed, len(verified), elapsed)
        if ORDERS_PER_ACCOUNT >= DEFAULT_ORDERS:
            assert by_feed >= BY_FEED_AT_DEFAULT, (by_feed, len(verified))
        print(f"{by_feed} of {len(verified)} verified orders confirmed by feed, {len(feeds)} feeds, "
              f"{elapsed:.0f} s")
        # the refused rows: held with the report's error, never shipped on Amazon. An order picked
        # for refusal that no service can ship was held before any label, so was never in a feed.
        # One whose line was refused in the feed submitted again is in doubt (that refusal may be of
        # a line applied before): read back, not shown, it is sent again by confirmShipment, which
        # the emulator's injected refusals do not reach.
        seen = rejected & set(records)
        sent_again = {o for o in seen if records[o].state is OrderState.VERIFIED}
        assert all(o in state["confirmations"] and o not in shipments for o in sent_again), sent_again
        seen -= sent_again
        refused = {o for o in seen if records[o].hold_reason == "amazon_rejected"}
        assert refused and len(refused) >= min(5, len(seen)), {o: records[o].hold_reason for o in seen}
        for order_id in seen:
            record = records[order_id]
            assert record.state is OrderState.HELD, record
            if order_id in refused:
                assert "18028" in record.hold_message and "incomplete" in record.hold_message
            else:
                assert not any(p.tracking_number for p in ledger.packages(order_id)), record
            assert order_id not in shipments and order_id not in state["confirmations"]
        for order_id, by_tracking in shipments.items():
            assert all(entry["created"] == 1 for entry in by_tracking.values()), order_id
            assert len(by_tracking) == 1, order_id
        # the feed interrupted after createFeed was sent again: its lines were applied twice, as edits
        assert any(e["applied"] > e["created"] for t in shipments.values() for e in t.values())
    finally:
        ledger.close()
    stored = _feeds_in_ledger(w)
    assert all(f.state in ("DONE", "FAILED") for f in stored)
    assert any(f.attempts > 1 for f in stored)  # the resubmitted one
