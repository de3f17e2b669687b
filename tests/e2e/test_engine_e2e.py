"""The real daemon against the sandbox over loopback HTTP: orders to verified shipments."""
from __future__ import annotations

from collections import Counter

import pytest

from connector import hookimpl
from connector.engine.loop import Engine
from connector.ledger import OrderState

from .helpers import assert_every_confirmation_told, assert_exactly_once, run_cli

pytestmark = pytest.mark.e2e


class Recorder:
    """A plugin that records every event hook call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def mfn_order_received(self, order):
        assert order.ship_to is None  # plugins never get buyer PII
        self.events.append(("received", order.order_id))

    @hookimpl
    def mfn_order_held(self, order_id, reason, message):
        self.events.append(("held", order_id))

    @hookimpl
    def mfn_package_labeled(self, order_id, package):
        assert package.label_path and package.tracking_number
        self.events.append(("labeled", order_id))

    @hookimpl
    def mfn_package_confirmed(self, order_id, package):
        self.events.append(("confirmed", order_id))


@pytest.fixture
def run_engine(world):
    def run(w, plugin=None):
        rt = w.runtime()
        if plugin is not None:
            rt.host.pm.register(plugin, name="recorder")
        try:
            Engine(rt).run_until_quiet()
            return rt.counters, rt.ledger.counts()
        finally:
            rt.close()

    return run


def test_orders_flow_to_verified_shipments_exactly_once(world, run_engine):
    w = world({"sandbox": {"orders": 12}})
    recorder = Recorder()
    counters, counts = run_engine(w, recorder)
    result = assert_exactly_once(w)
    assert result["orders"] == result["expected"] >= 28 and result["verified"] >= 15
    assert counters.labels_bought == result["verified"]
    assert set(counts) <= {"VERIFIED", "HELD", "CANCELLED"}
    events = Counter(kind for kind, _ in recorder.events)
    assert events["received"] == result["orders"]
    assert events["labeled"] == events["confirmed"] == result["verified"]
    assert events["held"] == result["held"]
    # a second run against the same world buys and confirms nothing
    counters, _ = run_engine(w)
    assert (counters.labels_bought, counters.confirmations_sent, counters.ingested_new) == (0, 0, 0)
    assert_exactly_once(w)


def test_each_orders_story_is_in_the_log_by_its_id(world, run_engine, caplog):
    """At INFO an operator greps an order id and reads its life: the plan, the label with its
    tracking number, the confirmation, the verification, and the SP-API calls about it; a carrier
    call that went well is only DEBUG detail."""
    import logging

    w = world({"sandbox": {"orders": 4}})
    with caplog.at_level(logging.INFO, logger="connector"):
        run_engine(w)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    rt = w.runtime()
    try:
        verified = rt.ledger.orders([OrderState.VERIFIED])
        packages = {r.order_id: rt.ledger.packages(r.order_id)[-1] for r in verified}
    finally:
        rt.close()
    assert verified
    for order_id, package in packages.items():
        story = [m for m in lines if order_id in m]
        assert any(m.startswith(f"order {order_id}: label {package.package_ref} bought at {package.carrier}")
                   and m.endswith(f"tracking {package.tracking_number}") for m in story), story
        assert any(m.startswith(f"order {order_id}: Amazon shows package {package.package_ref}")
                   for m in story), story
        assert any(f"order={order_id} operation=getOrder" in m for m in story), story
    assert any(": shipment confirmed on Amazon (package " in m for m in lines)
    assert not [m for m in lines if m.startswith("carrier call") and " ok in " in m]


def test_held_orders_carry_reasons_and_release_works(world, run_engine):
    w = world({"sandbox": {"orders": 30}})
    run_engine(w)
    rt = w.runtime()
    try:
        held = rt.ledger.orders([OrderState.HELD])
        reasons = Counter(r.hold_reason for r in held)
        assert {"unknown_sku", "address_incomplete", "buyer_cancel_requested"} <= set(reasons)
        for record in held:
            assert record.order_id in record.hold_message
            address = record.order.ship_to  # messages never carry the buyer's name or street
            for pii in (address.name, address.line1, address.phone) if address else ():
                assert not pii or pii not in record.hold_message
        sku_hold = next(r for r in held if r.hold_reason == "unknown_sku")
        assert rt.ledger.release(sku_hold.order_id) == OrderState.NEW
        Engine(rt).run_pass(ingest=False)
        again = rt.ledger.get_order(sku_hold.order_id)
        assert again.state == OrderState.HELD and again.hold_reason == "unknown_sku"
    finally:
        rt.close()


def _ledger_ids(w) -> set[str]:
    rt = w.runtime()
    try:
        return {r.order_id for r in rt.ledger.orders()}
    finally:
        rt.close()


def test_hook_mfn_order_received(world, run_engine):
    w = world({"sandbox": {"orders": 4}})
    recorder = Recorder()
    run_engine(w, recorder)
    received = {oid for kind, oid in recorder.events if kind == "received"}
    assert received and received == set(assert_exactly_once(w) and _ledger_ids(w))


def test_hook_mfn_order_held(world, run_engine):
    recorder = Recorder()
    w = world({"sandbox": {"orders": 30}})
    run_engine(w, recorder)
    held = {oid for kind, oid in recorder.events if kind == "held"}
    rt = w.runtime()
    try:
        assert held == {r.order_id for r in rt.ledger.orders([OrderState.HELD])} and held
    finally:
        rt.close()


def test_hook_mfn_package_labeled(world, run_engine):
    recorder = Recorder()
    run_engine(world({"sandbox": {"orders": 4}}), recorder)
    labeled = [oid for kind, oid in recorder.events if kind == "labeled"]
    assert labeled and len(labeled) == len(set(labeled))


def test_hook_mfn_package_confirmed(world, run_engine):
    recorder = Recorder()
    run_engine(world({"sandbox": {"orders": 4}}), recorder)
    kinds = [kind for kind, _ in recorder.events]
    confirmed = [oid for kind, oid in recorder.events if kind == "confirmed"]
    assert confirmed and all(kinds.index("labeled") < kinds.index("confirmed") for _ in confirmed)


def test_hook_mfn_choose_quote(world, run_engine):
    """A plugin that always takes the most expensive eligible label overrides the default."""
    seen = []

    class MostExpensive:
        @hookimpl
        def mfn_choose_quote(self, order, requirements, candidates):
            assert order.ship_to is None and requirements.site == order.site
            assert candidates == sorted(candidates, key=lambda c: c.comparable.amount)
            seen.append((order.order_id, candidates[-1].option.key))
            return candidates[-1]

    w = world({"sandbox": {"orders": 4}})
    run_engine(w, MostExpensive())
    rt = w.runtime()
    try:
        planned = {r.order_id: (p.carrier, p.service) for r in rt.ledger.orders([OrderState.VERIFIED])
                   for p in rt.ledger.packages(r.order_id)}
    finally:
        rt.close()
    assert planned and all(planned[oid] == key for oid, key in seen if oid in planned)
    assert_exactly_once(w)


def test_once_cli_prints_summary_and_json_logs(world):
    w = world({"sandbox": {"orders": 4}})
    result = run_cli(w, "--log-format", "json", "run", "--once")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Orders by state:" in result.stdout and "VERIFIED" in result.stdout
    import json

    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("x-amzn-RequestId" in line["message"] or "request_id" in line["message"]
               or "RequestId" in line["message"] for line in lines)
    assert all("Atzr|" not in line["message"] and "Atza|" not in line["message"] for line in lines)
    listed = run_cli(w, "orders", "list", "--json")
    assert listed.returncode == 0 and '"state": "VERIFIED"' in listed.stdout


def test_once_exits_1_when_an_accounts_poll_failed_after_driving_the_rest(world, write_config):
    """A scheduler running `run --once` must hear that an account was not read (its refresh token
    was revoked, say): the pass still drives the other accounts' orders and prints the summary."""
    from pathlib import Path

    import yaml

    w = world({"sandbox": {"orders": 4}})  # the emulators know the sandbox's refresh tokens
    accounts = yaml.safe_load((Path(__file__).parents[2] / "config" / "sandbox.yaml").read_text())["accounts"]
    revoked = [{**a, "refresh_token": "Atzr|revoked"} if a["name"] == "demo-fe" else a for a in accounts]
    w.config_path = write_config({"sandbox": {"orders": 4}, "accounts": revoked})  # the same ledger
    result = run_cli(w, "run", "--once")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "1 account order poll(s) failed" in result.stderr
    assert "account demo-fe: order poll failed" in result.stderr
    assert "Orders by state:" in result.stdout and "VERIFIED" in result.stdout  # the others went on


def test_the_order_poll_verifies_confirmations_in_bulk(world):
    """With a long grace the per-order getOrder read-back cannot run: every VERIFIED here comes
    from the searchOrders page that also polls for new orders (100 orders per call)."""
    import requests

    w = world({"sandbox": {"orders": 10}, "engine": {"verify_grace_seconds": 3600}})
    rt = w.runtime()
    try:
        Engine(rt).run_pass()
        for _ in range(5):  # late tracking numbers (YunExpress TrackType 2) arrive after polls
            Engine(rt).run_pass(ingest=False)
        counts = rt.ledger.counts()
        assert set(counts) == {"CONFIRMED", "HELD", "CANCELLED"} and counts["CONFIRMED"] >= 8
        # Amazon's search only shows changes older than two minutes
        requests.post(w.url("spapi") + "/_sandbox/clock", json={"advance_seconds": 180}, timeout=10)
        Engine(rt).run_pass()
        after = rt.ledger.counts()
        assert after.get("VERIFIED") == counts["CONFIRMED"] and "CONFIRMED" not in after
    finally:
        rt.close()
    assert_exactly_once(w)


def test_the_summary_counts_a_confirmation_whose_answer_was_lost(world):
    """Amazon took the confirmation but its answer never came (a timeout): the next step finds
    it landed and verifies it. The run's count of confirmations sent includes it, so the summary
    agrees with what Amazon accepted (it used to count only the answered ones)."""
    w = world({"sandbox": {"orders": 6, "timeout_seconds": 1.5}, "amazon": {"read_timeout_seconds": 0.5},
               "routing": {"default": ["yunexpress:*"]}})
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_pass()  # labels bought, nothing confirmed yet
        w.set_faults({"timeout": 0.5})  # every other answer lost after the call took effect
        for _ in range(30):
            engine.run_pass(ingest=False)
            w.set_faults(0)  # the resumed steps read the orders back without faults
            if not rt.ledger.orders([OrderState.LABELED, OrderState.CONFIRMING]):
                break
        accepted = sum(len(p) for p in w.state("spapi")["confirmations"].values())
        assert accepted and rt.counters.confirmations_sent == accepted
        moves = [(h["from"], h["to"]) for r in rt.ledger.orders([OrderState.VERIFIED])
                 for h in rt.ledger.history(r.order_id)]
        found = ("CONFIRMING", "VERIFIED") in moves
        assert found, "no answer was lost: the test would prove nothing"
    finally:
        rt.close()
    assert_every_confirmation_told(w)  # package.confirmed for those too
