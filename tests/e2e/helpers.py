"""Helpers shared by the end-to-end tests: run the real CLI, audit exactly-once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from connector.ledger import ACTIVE_ORDER_STATES, OrderState, Package, PackageState, open_ledger


def run_cli(world: Any, *args: str, extra_env: dict[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(world.sandbox.env)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "connector.cli", "--config", str(world.config_path),
                           *args], env=env, capture_output=True, text=True, timeout=timeout)


def start_daemon(world: Any, log: Path) -> subprocess.Popen:
    """``mfn-connector run`` on ``world`` in the background, its log appended to ``log`` (a file:
    under injected faults a daemon logs more than a pipe nobody reads would hold)."""
    env = dict(os.environ)
    env.update(world.sandbox.env)
    with log.open("a", encoding="utf-8") as sink:
        return subprocess.Popen([sys.executable, "-m", "connector.cli", "--config", str(world.config_path),
                                 "run"], env=env, stdout=subprocess.DEVNULL, stderr=sink)


def wait_until_it_catches_sigterm(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Until the daemon has installed its stop handler (Linux: SIGTERM in /proc/PID/status SigCgt).
    A SIGTERM sent earlier, while the interpreter still starts, ends it by the signal's default
    (-15) instead of a clean exit: a test that stops a daemon right after starting it (nothing
    left to do) waits here first. Where /proc is not there, it returns at once."""
    caught = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text(encoding="utf-8")
        except OSError:
            return
        mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), None)
        if mask is None or int(mask, 16) & caught:
            return
        time.sleep(0.05)


def feeds_config(orders: int, *, max_rows: int = 900, batch_wait_seconds: float = 20) -> dict:
    """A world confirming by feed only, with the emulator's feeds queued 1 s and processed in 2 s."""
    return {
        "sandbox": {
            "orders": orders,
            "emulators": {"spapi": {"feeds": {"in_queue_seconds": 1, "processing_seconds": 2}}},
        },
        "engine": {"workers": 8, "verify_grace_seconds": 0, "poll_interval_seconds": 3600},
        "routing": {"default": ["yunexpress:*"]},  # one fast carrier: the labels are not what is tested
        "amazon": {
            "feeds": {"mode": "always", "poll_seconds": 0.5, "max_rows": max_rows, "max_open_feeds": 3,
                      "batch_wait_seconds": batch_wait_seconds},
            # the read-back and the order poll are not what is tested here: quotas that let getOrder
            # keep up and let each `run --once` read thousands of orders (a page is 100)
            "quotas": {"getOrder": {"rate": 200, "burst": 200}, "searchOrders": {"rate": 10, "burst": 100}},
        },
        "tracking": {"cadence": [{"until_days": 1000, "every_hours": 1000}]},
    }


def run_once_until_quiet(world: Any, *, max_runs: int = 15) -> int:
    """`mfn-connector run --once` again and again until no order is left mid-flight."""
    for runs in range(1, max_runs + 1):
        result = run_cli(world, "run", "--once")
        assert result.returncode == 0, result.stderr[-3000:]
        if not active_orders(world):
            return runs
    raise AssertionError(f"still active after {max_runs} runs: {active_orders(world)}")


def advance(world: Any, seconds: float) -> None:
    """Move the emulators' clocks and the daemon's together (with the ``daemon_clock`` fixture)."""
    import requests

    from connector import clock

    for server in world.sandbox.servers.values():
        answer = requests.post(server.url + "/_sandbox/clock", json={"advance_seconds": seconds}, timeout=10)
        answer.raise_for_status()
    clock.advance(seconds)


def a_verified_parcel(rt: Any) -> Package:
    """The first VERIFIED package of a VERIFIED order (a parcel handed over and tracked), for the
    tracking tests that feed it carrier answers of their own."""
    return next(p for r in rt.ledger.orders([OrderState.VERIFIED])
                for p in rt.ledger.packages(r.order_id) if p.state is PackageState.VERIFIED)


def ingest_all(rt: Any) -> None:
    """Poll every account of the runtime once, as a pass does: orders in the ledger, nothing
    planned yet."""
    from connector.engine.loop import Engine

    assert Engine(rt).poll_accounts() == 0, "an account's order poll failed (see the log)"


def enrol_transparency_item(world: Any) -> tuple[str, str, int]:
    """Mark the first item of an unshipped US order as a Transparency item, in the SP-API
    emulator's store before the order is first read (its control endpoint would make it a change
    of now, which searchOrders shows only after its lag); returns (order id, item id, its units)."""
    spapi = world.sandbox.servers["spapi"].emulator
    with spapi.lock:
        order = next(r["order"] for r in spapi.store["orders"].values()
                     if r["order"]["salesChannel"]["marketplaceId"] == "ATVPDKIKX0DER"
                     and r["order"]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
                     and not r["order"].get("programs")
                     and not any(i.get("cancellation") for i in r["order"]["orderItems"]))
        item = order["orderItems"][0]
        item["programs"] = ["TRANSPARENCY"]
        return order["orderId"], item["orderItemId"], int(item["quantityOrdered"])


def ledger_of(world: Any):
    config = world.config()
    return open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=False)


def active_orders(world: Any) -> list[str]:
    ledger = ledger_of(world)
    try:
        return [r.order_id for r in ledger.orders(ACTIVE_ORDER_STATES)]
    finally:
        ledger.close()


def wait_while_active(world: Any, seconds: float) -> None:
    """Let the daemons running on ``world`` settle its orders, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while active_orders(world) and time.monotonic() < deadline:
        time.sleep(1)


# The five built-in carriers; the crash and fault tests run against each.
CARRIERS = ("yunexpress", "chinapost", "yanwen", "dhl_ecommerce", "amazon_shipping")

# What the seed deliberately contains; any other hold after a crash or a fault is a bug.
SEEDED_HOLDS = {"unknown_sku", "address_incomplete", "buyer_cancel_requested"}


def assert_exactly_once(world: Any, *, allowed_holds: set[str] = SEEDED_HOLDS) -> dict[str, int]:
    """The emulators' own records, for every carrier: one label per package, one accepted
    confirmation per package -- by confirmShipment, or by one feed line and then no
    confirmShipment (none at all for Buy Shipping, whose labels confirm themselves) -- every
    order the daemon should see in the ledger and at rest, every label a readable PDF.

    The ledger is read before the emulators: what it records has happened there by then, so a
    caller may poll this while a daemon runs (it fails with AssertionError until all is done)."""
    ledger = ledger_of(world)
    specs = world.host.carriers()
    try:
        records = {r.order_id: r for r in ledger.orders()}
        states = {name: world.state(name) for name in world.sandbox.servers}
        spapi = states["spapi"]
        bought_on_amazon = {b["orderId"] for b in spapi.get("buy_shipping", {}).values()}
        by_us = set(spapi["confirmations"]) | set(spapi.get("feed_shipments", {})) | bought_on_amazon
        expected = {oid for oid, d in spapi["order_details"].items()  # (the seed ships some elsewhere)
                    if d["fulfilledBy"] == "MERCHANT"
                    and not (d["fulfillmentStatus"] == "SHIPPED" and oid not in by_us)}
        assert expected - set(records) == set(), "orders missing from the ledger"
        for record in records.values():
            assert record.state in (OrderState.VERIFIED, OrderState.HELD, OrderState.CANCELLED), \
                (record.order_id, record.state)
            if record.state == OrderState.HELD:
                assert record.hold_reason in allowed_holds, (record.order_id, record.hold_message)
        verified = [r for r in records.values() if r.state == OrderState.VERIFIED]
        carriers_used = set()
        by_feed = 0
        for record in verified:
            (package,) = [p for p in ledger.packages(record.order_id) if p.state.value == "VERIFIED"]
            carriers_used.add(package.carrier)
            mounted = world.host.emulators()[package.carrier].mount_on  # an extension of another emulator
            emulator = states[mounted or package.carrier]
            label = emulator["labels"][package.idempotency_key]
            assert label["created"] == 1, (package.idempotency_key, label)
            assert package.tracking_number in (label.get("tracking_number"), label.get("waybill"))
            feed_line = spapi.get("feed_shipments", {}).get(record.order_id, {}).get(package.tracking_number)
            if specs[package.carrier].confirms_shipment:
                assert record.order_id not in spapi["confirmations"], record.order_id
                assert feed_line is None, record.order_id
            elif feed_line is not None:  # Amazon's record, not the ledger's: a feed line made it
                by_feed += 1
                assert feed_line["created"] == 1, (record.order_id, feed_line)
                assert record.order_id not in spapi["confirmations"], record.order_id  # never both
            else:
                confirmation = spapi["confirmations"][record.order_id][package.package_ref]
                assert confirmation["accepted"] == 1, (record.order_id, confirmation)
                assert confirmation["trackingNumber"] == package.tracking_number
            assert len(PdfReader(package.label_path).pages) >= 1
        labels = 0
        for name, state in states.items():
            for ref, label in state.get("labels", {}).items():
                labels += 1
                assert label["created"] == 1, (name, ref, label)
        for order_id, packages in spapi["confirmations"].items():
            for ref, confirmation in packages.items():
                assert confirmation["accepted"] == 1, (order_id, ref, confirmation)
        for order_id, by_tracking in spapi.get("feed_shipments", {}).items():
            assert all(line["created"] == 1 for line in by_tracking.values()), order_id
        assert labels == len(verified), "a label was bought for an order that did not ship"
        assert spapi.get("schema_violations", []) == []
        return {"verified": len(verified), "held": sum(r.state == OrderState.HELD for r in records.values()),
                "orders": len(records), "expected": len(expected), "carriers": len(carriers_used),
                "by_feed": by_feed}
    finally:
        ledger.close()


def assert_every_confirmation_told(w) -> None:
    """Each package confirmed through confirmShipment has its package.confirmed event, also when
    the answer was lost and the read-back found it (CONFIRMING -> VERIFIED), as an ERP waits for."""
    ledger = ledger_of(w)
    try:
        for record in ledger.orders([OrderState.VERIFIED]):
            history = ledger.history(record.order_id)
            told = {e.data.get("package_ref") for e in ledger.events(order_id=record.order_id, limit=1000)
                    if e.type == "package.confirmed"}
            for package in ledger.packages(record.order_id):
                if any(h["package_id"] == package.id and h["to"] == "CONFIRMING" for h in history):
                    assert package.package_ref in told, (record.order_id, history)
    finally:
        ledger.close()
