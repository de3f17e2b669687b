"""SIGKILL the daemon at its most dangerous lines, restart it, and audit the emulators.

``MFN_CONNECTOR_CRASH_AT=<point>:<n>`` kills the process with SIGKILL the n-th time it reaches
the point, so every order in flight at that moment is caught between two commits. Each carrier
gets its own world, forced onto it by routing, and is killed at every point in flow order.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
import requests

from connector.engine.crashpoints import ENV, FEED_POINTS, POINTS
from connector.ledger import OrderState, PackageState

from .helpers import (
    CARRIERS,
    SEEDED_HOLDS,
    assert_exactly_once,
    feeds_config,
    ledger_of,
    run_cli,
    run_once_until_quiet,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A carrier forced on every order cannot take some of them (weight, battery, tracking level):
# those are held with their reasons, which is correct, not a crash artefact.
FORCED_HOLDS = SEEDED_HOLDS | {"no_eligible_service"}


@pytest.mark.parametrize("carrier", CARRIERS)
def test_sigkill_at_every_point_then_restart(world, carrier):
    w = world({"sandbox": {"orders": 8}, "engine": {"workers": 3},
               "routing": {"default": [f"{carrier}:*"]}})
    kills = 0
    for point in POINTS:
        result = run_cli(w, "run", "--once", extra_env={"MFN_CONNECTOR_CRASH_AT": f"{point}:1"})
        assert result.returncode in (0, -signal.SIGKILL), result.stderr[-2000:]
        kills += result.returncode == -signal.SIGKILL
    assert kills >= 4, f"only {kills} of the kill points were reached"
    run_once_until_quiet(w)
    result = assert_exactly_once(w, allowed_holds=FORCED_HOLDS)
    assert result["orders"] == result["expected"] and result["verified"] >= 3
    assert result["carriers"] == 1


def test_sigkill_at_random_moments(world):
    w = world({"sandbox": {"orders": 8}, "engine": {"workers": 4}})
    rng = random.Random(1234)
    env = dict(os.environ)
    env.update(w.sandbox.env)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "--config", str(w.config_path),
                                 "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    run_once_until_quiet(w)
    assert_exactly_once(w)


def test_sigterm_finishes_the_step_in_flight_and_exits_zero(world):
    w = world({"sandbox": {"orders": 8}})
    env = dict(os.environ)
    env.update(w.sandbox.env)
    proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "--config", str(w.config_path), "run"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _until_a_label_is_bought(w, proc)  # started and working (start-up alone took 2.5 s under load)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "finishing the steps in flight" in err
    run_once_until_quiet(w)
    assert_exactly_once(w)


def _until_a_label_is_bought(w, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the daemon exited before it bought a label"
        spapi = w.state("spapi")  # Buy Shipping's labels are bought there, the others at their carrier
        if spapi.get("buy_shipping") or any(w.state(name).get("labels") for name in w.sandbox.servers
                                            if name != "spapi"):
            return
        time.sleep(0.05)
    raise AssertionError(f"no label bought within {timeout} s")


SLOW_START = """
import sys, time
import connector.configured as configured

load = configured.load_config_with_plugins


def slow(*args, **kwargs):  # the start-up taking long (a ledger's migrations, say)
    print("starting", file=sys.stderr, flush=True)
    # Work in short steps, as a start-up does: a signal that lands after the interpreter's last
    # check and before one long sleep begins would only be seen when that sleep ends (CPython runs
    # handlers between bytecodes), which made this test time out one run in many under load.
    for _ in range(300):
        time.sleep(0.1)
    return load(*args, **kwargs)


configured.load_config_with_plugins = slow
from connector.cli import main
main()
"""


SERVE = ["serve", "--port", "0"]


@pytest.mark.parametrize("command, stop, log_format",
                         [(["run"], signal.SIGTERM, "text"), (["run"], signal.SIGINT, "text"),
                          (["run"], signal.SIGHUP, "text"), (SERVE, signal.SIGTERM, "text"),
                          (["run"], signal.SIGTERM, "json"), (SERVE, signal.SIGTERM, "json")],
                         ids=["run-SIGTERM", "run-SIGINT", "run-SIGHUP", "serve-SIGTERM", "run-json",
                              "serve-json"])
def test_a_stop_while_starting_exits_zero_at_once(world, command, stop, log_format):
    """A service manager's stop during a slow start-up ends the daemon at once with 0, and nothing
    is done: before, the signal's default killed it (SIGTERM: -15) or a KeyboardInterrupt did. Under
    ``--log-format json`` (the shipped unit) its line is JSON like every other: it was plain text."""
    w = world({"sandbox": {"orders": 2}})
    env = dict(os.environ)
    env.update(w.sandbox.env)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_START, "--config", str(w.config_path),
                             "--log-format", log_format, *command],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and proc.stderr.readline() == "starting\n"
        started = time.monotonic()
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 5  # not after the 30 s start-up
    assert f"received {stop.name} while starting: exiting" in err and "Traceback" not in err
    if log_format == "json":
        lines = err.splitlines()  # (the test's own "starting" was read above)
        assert lines and all(json.loads(line)["level"] for line in lines), err[-2000:]
    assert not w.state("spapi").get("confirmations")  # nothing was done


# The stage an emulator's parcel has reached -> the package state the daemon must record.
_STATE_OF_STAGE = {"": "VERIFIED", "info_received": "VERIFIED", "out_for_delivery": "OUT_FOR_DELIVERY",
                   "delivered": "DELIVERED", "delivery_failed": "DELIVERY_FAILED", "returning": "RETURNING",
                   "returned": "RETURNED"}


@pytest.mark.parametrize("point", FEED_POINTS)
def test_sigkill_at_every_feed_point_then_restart(world, point):
    """Killed once at a step of bulk confirmation by feed (feeds of 10 lines, so others are in
    flight): afterwards each package is confirmed on Amazon once, by its feed or by confirmShipment,
    never both."""
    w = world(feeds_config(8, max_rows=10, batch_wait_seconds=1))
    for _ in range(10):  # a feed is processed seconds after it is sent: a later pass reaches its report
        result = run_cli(w, "run", "--once", extra_env={ENV: f"{point}:1"})
        assert result.returncode in (0, -signal.SIGKILL), result.stderr[-2000:]
        if result.returncode == -signal.SIGKILL:
            break
        time.sleep(1)
    else:
        pytest.fail(f"{point} was never reached")
    run_once_until_quiet(w, max_runs=40)

    state = w.state("spapi")
    assert state["schema_violations"] == []
    shipments = state["feed_shipments"]  # order id -> tracking number -> {"created": n, ...}
    assert shipments, "no package was confirmed by feed"
    for order_id, by_tracking in shipments.items():
        assert len(by_tracking) == 1 and all(e["created"] == 1 for e in by_tracking.values()), order_id
    ledger = ledger_of(w)
    try:
        assert all(f.state in ("DONE", "FAILED") for f in ledger.feeds())
        for record in ledger.orders([OrderState.VERIFIED]):
            (package,) = [p for p in ledger.packages(record.order_id) if p.state is PackageState.VERIFIED]
            if ledger.confirmed_by_feed(package.id):
                assert record.order_id not in state["confirmations"], record.order_id
                assert package.tracking_number in shipments[record.order_id], record.order_id
            else:
                assert record.order_id not in shipments, record.order_id
    finally:
        ledger.close()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_sigkill_while_voiding_and_tracking_then_restart(world, carrier):
    """Each void point kills one `orders void`; the next run finishes that void (a cancel asked again
    after the kill is answered "cancelled already"), recorded once. Then the parcels are scanned and
    each tracking point kills a run; after a clean run every package shows exactly what its carrier
    shows, each event stored once."""
    emulator = "spapi" if carrier == "amazon_shipping" else carrier
    w = world({"sandbox": {"orders": 8, "emulators": {emulator: {"parcel_outcomes": {}}}},
               "routing": {"default": [f"{carrier}:*"]}, "selection": {"overrides": []},
               "tracking": {"cadence": [{"until_days": 1000, "every_hours": 1e-9}]}})  # poll every run
    run_once_until_quiet(w)
    ledger = ledger_of(w)
    try:
        shipped = [p for r in ledger.orders([OrderState.VERIFIED]) for p in ledger.packages(r.order_id)]
    finally:
        ledger.close()
    void_points = [p for p in POINTS if "void" in p or "cancel" in p]
    assert len(shipped) >= len(void_points) + 2, len(shipped)
    for point, package in zip(void_points, shipped, strict=False):
        killed = run_cli(w, "orders", "void", package.order_id, extra_env={ENV: f"{point}:1"})
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        again = run_cli(w, "run", "--once")
        assert again.returncode == 0, again.stderr[-2000:]
        ledger = ledger_of(w)
        try:
            done = ledger.get_package(package.id)
            assert done.state is PackageState.VOIDED, (point, done.state, done.error)
            assert ledger.get_order(package.order_id).state is OrderState.VOIDED
            voids = [h for h in ledger.history(package.order_id) if h["to"] == "VOIDED" and h["package_id"]]
            assert len(voids) == 1, (point, voids)
        finally:
            ledger.close()
        assert w.state(emulator)["parcels"][package.tracking_number]["cancelled_at"], point

    for server in w.sandbox.servers.values():  # three days later: scanned, some parcels far along
        requests.post(server.url + "/_sandbox/clock", json={"advance_seconds": 3 * 86400}, timeout=10)
    for point in ("after_track_call", "after_track"):
        killed = run_cli(w, "run", "--once", extra_env={ENV: f"{point}:1"})
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
    assert run_cli(w, "run", "--once").returncode == 0
    parcels = w.state(emulator)["parcels"]
    ledger = ledger_of(w)
    try:
        followed = [ledger.get_package(p.id) for p in shipped[len(void_points):]]
        for package in followed:
            stage = parcels[package.tracking_number]["stage"]
            expected = _STATE_OF_STAGE.get(stage, "IN_TRANSIT")
            assert package.state.value == expected, (package.tracking_number, stage)
            events = ledger.tracking_events(package.id)
            keys = [(e.at, e.status, e.code, e.location, e.description) for e in events]
            assert len(keys) == len(set(keys)) and package.scans == sum(
                e.status not in ("pending", "unknown") for e in events)
        assert any(p.state is not PackageState.VERIFIED for p in followed)
    finally:
        ledger.close()


# Two decisions of the label step write two things: the package, and the order's hold. Killed
# between them, a restart must not take the order on as if nothing had been decided.
ONE_CARRIER = {"engine": {"workers": 1}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}}

REFUSING = """
import dataclasses
import connector.engine.buy as buy

build = buy.build_request


def refused(*args, **kwargs):  # a service YunExpress does not have: it refuses every shipment
    return dataclasses.replace(build(*args, **kwargs), service="NO-SUCH-SERVICE")


buy.build_request = refused
from connector.cli import main
main()
"""


def test_sigkill_as_a_first_refusal_is_recorded_keeps_the_order_held_for_it(world):
    """The carrier refuses the first create of a claim: the package FAILED and the order held
    ``carrier_rejected`` with its words, as one decision. Killed right there (``after_create_refused``),
    the restart finds the order held for the refusal: it is not planned and bought again (which
    would lose the carrier's reason and ask again what a person was to look at first)."""
    w = world({"sandbox": {"orders": 4}, **ONE_CARRIER})
    env = {**os.environ, **w.sandbox.env, ENV: "after_create_refused:1"}
    killed = subprocess.run([sys.executable, "-c", REFUSING, "--config", str(w.config_path), "run", "--once"],
                            env=env, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_once_until_quiet(w)  # the carrier takes shipments again: nothing else stops the others

    ledger = ledger_of(w)
    try:
        (failed,) = [p for r in ledger.orders() for p in ledger.packages(r.order_id)
                     if p.state is PackageState.FAILED]
        held = ledger.get_order(failed.order_id)
        packages = ledger.packages(failed.order_id)
    finally:
        ledger.close()
    assert held.state is OrderState.HELD, (held.state, [(p.package_ref, p.state) for p in packages])
    assert held.hold_reason == "carrier_rejected" and "NO-SUCH-SERVICE" in held.hold_message
    assert held.held_from is OrderState.NEW and packages == [failed] and "NO-SUCH-SERVICE" in failed.error
    attempts = w.state("yunexpress")["create_attempts"]
    assert {ref: n for ref, n in attempts.items() if ref.startswith(held.order_id)} == {
        failed.idempotency_key: 1}
    assert_exactly_once(w, allowed_holds=FORCED_HOLDS | {"carrier_rejected"})


def test_sigkill_as_a_claim_is_settled_for_an_order_shipped_elsewhere_keeps_it_held(world):
    """A create loses its answer (killed at ``after_create_call``: the label is bought), then the
    seller ships the order by hand on Amazon. The next run buys nothing: it finds the label by
    reference, records it and holds the order ``shipped_elsewhere``, as one decision. Killed right
    there (``after_claim_settled``), the restart finds it held for that: its label is neither
    fetched nor confirmed on Amazon beside the seller's shipment (which Amazon would answer with a
    misleading ``already_shipped``, or take as a second parcel)."""
    w = world({"sandbox": {"orders": 4, "emulators": {"spapi": {"search_lag_seconds": 0}}}, **ONE_CARRIER})
    killed = run_cli(w, "run", "--once", extra_env={ENV: "after_create_call:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    rt = w.runtime()
    try:
        (claimed,) = rt.ledger.orders([OrderState.LABEL_CLAIMED])
        order = claimed.order
        rt.amazon[order.account].confirm_shipment(  # the seller ships it by hand in Seller Central
            order.order_id, marketplace_id=order.marketplace_id, package_reference_id="7",
            carrier_code="China Post", tracking_number="LX123456785CN",
            ship_date=datetime.now(timezone.utc),
            items=[(i.order_item_id, i.quantity) for i in order.items if i.quantity])
    finally:
        rt.close()
    killed = run_cli(w, "run", "--once", extra_env={ENV: "after_claim_settled:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_once_until_quiet(w)

    ledger = ledger_of(w)
    try:
        held = ledger.get_order(order.order_id)
        (package,) = ledger.packages(order.order_id)
    finally:
        ledger.close()
    assert (held.state, held.hold_reason) == (OrderState.HELD, "shipped_elsewhere"), (held.state,
                                                                                      held.hold_message)
    assert held.held_from is OrderState.LABEL_CLAIMED and f"orders void {order.order_id}" in held.hold_message
    assert package.state is PackageState.LABEL_CREATED and package.carrier_shipment_id
    assert w.state("yunexpress")["labels"][package.idempotency_key]["created"] == 1
    assert set(w.state("spapi")["confirmations"][order.order_id]) == {"7"}  # the seller's alone
