"""An order of a Transparency item: its label is bought, its confirmation waits for the codes
scanned from its units (held transparency_codes_needed), and goes with them once they are given
(connector/transparency.py, docs/transparency.md)."""
from __future__ import annotations

import json

import pytest

from connector.engine import steer
from connector.engine.loop import drive
from connector.holds import HoldReason
from connector.ledger import OrderState, PackageState

from ..e2e.helpers import enrol_transparency_item, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

CODES = ["AZ1234567890ABCDEFGHIJKLMNOPQ", "AZ1234567890ABCDEFGHIJKLMNOPR", "AZ1234567890ABCDEFGHIJKLMNOPS"]


def _read_back(w, order_id: str) -> list[dict]:
    spapi = w.sandbox.servers["spapi"].emulator
    with spapi.lock:
        return [dict(p) for p in spapi.store["orders"][order_id]["order"].get("packages", [])]


def test_the_confirmation_waits_for_the_codes_and_carries_them(world):
    w = world({"sandbox": {"orders": 30}})
    order_id, item_id, units = enrol_transparency_item(w)
    rt = w.runtime()
    try:
        ingest_all(rt)
        assert "TRANSPARENCY" in rt.ledger.get_order(order_id).order.items[0].programs
        drive(rt, order_id, lambda: False)
        held = rt.ledger.get_order(order_id)
        assert held.state is OrderState.HELD, held.state
        assert held.hold_reason == HoldReason.TRANSPARENCY_CODES_NEEDED.value
        assert item_id in held.hold_message and f"{units} code(s), 0 given" in held.hold_message
        [package] = rt.ledger.packages(order_id)
        assert package.state is PackageState.LABELED  # the label is bought: the units can be packed
        assert order_id not in w.state("spapi")["confirmations"]

        with pytest.raises(steer.BadInput, match=f"{units + 1} code\\(s\\) given for {units} unit"):
            steer.give_transparency_codes(rt.ledger, order_id, {item_id: CODES[:units + 1]})
        with pytest.raises(steer.BadInput, match="not an item of this order"):
            steer.give_transparency_codes(rt.ledger, order_id, {"no-such-item": CODES[:units]})
        assert rt.ledger.get_order(order_id).state is OrderState.HELD

        done = steer.give_transparency_codes(rt.ledger, order_id, {item_id: CODES[:units]})
        assert done.state is OrderState.LABELED, done.done
        drive(rt, order_id, lambda: False)
        after = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert after.state in (OrderState.CONFIRMED, OrderState.VERIFIED), (after.state, after.hold_message)
    [shown] = _read_back(w, order_id)
    assert shown["packageItems"][0]["transparencyCodes"] == CODES[:units]


def test_codes_given_before_the_confirm_step_go_without_a_hold(world):
    w = world({"sandbox": {"orders": 30}})
    order_id, item_id, units = enrol_transparency_item(w)
    rt = w.runtime()
    try:
        ingest_all(rt)
        steer.give_transparency_codes(rt.ledger, order_id, {item_id: CODES[:units]})
        drive(rt, order_id, lambda: False)
        after = rt.ledger.get_order(order_id)
        with pytest.raises(steer.NotAllowed, match="confirmation sent"):  # Amazon has them now
            steer.give_transparency_codes(rt.ledger, order_id, {item_id: CODES[-units:]})
    finally:
        rt.close()
    assert after.state in (OrderState.CONFIRMED, OrderState.VERIFIED), (after.state, after.hold_message)
    assert [p["packageItems"][0]["transparencyCodes"] for p in _read_back(w, order_id)] == [CODES[:units]]


def test_optional_codes_confirm_without_them(world):
    w = world({"sandbox": {"orders": 30, "emulators": {"spapi": {"transparency_required": False}}},
               "amazon": {"transparency_codes": "optional"}})
    order_id, _item_id, _units = enrol_transparency_item(w)
    rt = w.runtime()
    try:
        ingest_all(rt)
        drive(rt, order_id, lambda: False)
        after = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert after.state in (OrderState.CONFIRMED, OrderState.VERIFIED), (after.state, after.hold_message)
    assert "transparencyCodes" not in _read_back(w, order_id)[0]["packageItems"][0]


def test_an_operator_gives_the_codes_on_the_command_line(world):
    from click.testing import CliRunner

    from connector.cli import cli

    w = world({"sandbox": {"orders": 30}})
    order_id, item_id, units = enrol_transparency_item(w)
    rt = w.runtime()
    try:
        ingest_all(rt)
        drive(rt, order_id, lambda: False)
        assert rt.ledger.get_order(order_id).hold_reason == HoldReason.TRANSPARENCY_CODES_NEEDED.value
    finally:
        rt.close()

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "transparency", *args])

    def shown() -> str:
        return CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "show", order_id]).output

    assert f"({item_id}): 0 code(s) given for {units} unit(s) to ship" in shown()
    extra = run(order_id, item_id, *CODES[:units + 1])
    assert extra.exit_code == 1, extra.output
    assert f"{units + 1} code(s) given for {units} unit(s)" in extra.output
    given = run(order_id, item_id, *CODES[:units])
    assert given.exit_code == 0, given.output
    assert given.output.strip() == (f"{order_id}: Transparency codes kept for order item(s) {item_id} "
                                    f"({units}); released to LABELED")
    assert run(order_id, item_id).exit_code == 2  # no codes: a usage error
    assert f"({item_id}): {units} code(s) given for {units} unit(s) to ship" in shown()
    as_json = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "show", "--json", order_id])
    assert json.loads(as_json.output)["transparency_codes"] == {item_id: CODES[:units]}


def test_an_account_confirming_by_feed_sends_a_transparency_package_singly(world):
    from ..e2e.helpers import feeds_config

    w = world(feeds_config(30))
    order_id, item_id, units = enrol_transparency_item(w)
    rt = w.runtime()
    try:
        ingest_all(rt)
        others = [r.order_id for r in rt.ledger.orders([OrderState.NEW]) if r.order_id != order_id][:8]
        steer.give_transparency_codes(rt.ledger, order_id, {item_id: CODES[:units]})
        drive(rt, order_id, lambda: False)
        for other in others:
            drive(rt, other, lambda: False)
        after = rt.ledger.get_order(order_id)
        parked = [o for o in others if rt.ledger.get_order(o).state is OrderState.LABELED]
    finally:
        rt.close()
    confirmed = w.state("spapi")["confirmations"]
    assert after.state in (OrderState.CONFIRMED, OrderState.VERIFIED), (after.state, after.hold_message)
    assert order_id in confirmed  # by confirmShipment: the feed's flat file has no column for the codes
    assert parked and not set(parked) & set(confirmed)  # the others' labels are left to a feed


def test_buy_shipping_is_not_bought_for_an_order_whose_codes_it_could_not_carry(world):
    # Buy Shipping made the cheapest: its label confirms the order by itself, without the codes
    free = {"carrier": "amazon_shipping", "kind": "percent", "value": 100}
    w = world({"sandbox": {"orders": 30}, "routing": {"default": ["amazon_shipping:*", "yunexpress:*"]},
               "selection": {"overrides": [], "discounts": [free]}})
    order_id, _item_id, _units = enrol_transparency_item(w)
    rt = w.runtime()
    try:
        ingest_all(rt)
        drive(rt, order_id, lambda: False)
        held = rt.ledger.get_order(order_id)
        packages = rt.ledger.packages(order_id)
    finally:
        rt.close()
    assert [p.carrier for p in packages] == ["yunexpress"], held.hold_message
    assert held.hold_reason == HoldReason.TRANSPARENCY_CODES_NEEDED.value
    assert not w.state("spapi")["confirmations"].get(order_id)


def test_codes_given_as_the_confirm_step_reads_none_do_not_leave_the_order_held(world, monkeypatch):
    # the ERP gives the codes as it packs: they land after the confirm step read none, before
    # its hold; the order must not stay held with every code given
    from connector.engine import confirm as confirm_step

    w = world({"sandbox": {"orders": 30}})
    order_id, item_id, units = enrol_transparency_item(w)
    rt = w.runtime()
    read = confirm_step.package_codes

    def read_then_given(rt_, order, package):
        coded = read(rt_, order, package)
        if coded.missing:
            steer.give_transparency_codes(rt_.ledger, order_id, {item_id: CODES[:units]})
        return coded

    try:
        ingest_all(rt)
        monkeypatch.setattr(confirm_step, "package_codes", read_then_given)
        drive(rt, order_id, lambda: False)
        monkeypatch.setattr(confirm_step, "package_codes", read)
        drive(rt, order_id, lambda: False)
        after = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert after.state in (OrderState.CONFIRMED, OrderState.VERIFIED), (after.state, after.hold_message)
    assert [p["packageItems"][0]["transparencyCodes"] for p in _read_back(w, order_id)] == [CODES[:units]]


def test_codes_replaced_as_the_confirm_step_claims_are_the_ones_sent(world, monkeypatch):
    # an operator corrects a mistyped code after the confirm step read the codes, before its
    # claim: Amazon must get the codes the ledger shows, not those read first
    from connector.engine import confirm as confirm_step

    w = world({"sandbox": {"orders": 30}})
    order_id, item_id, units = enrol_transparency_item(w)
    rt = w.runtime()
    read = confirm_step.package_codes
    replaced: list[bool] = []

    def read_then_replaced(rt_, order, package):
        coded = read(rt_, order, package)
        if not replaced:
            replaced.append(True)
            steer.give_transparency_codes(rt_.ledger, order_id, {item_id: CODES[-units:]})
        return coded

    try:
        ingest_all(rt)
        steer.give_transparency_codes(rt.ledger, order_id, {item_id: CODES[:units]})
        monkeypatch.setattr(confirm_step, "package_codes", read_then_replaced)
        drive(rt, order_id, lambda: False)
        after = rt.ledger.get_order(order_id)
        kept = rt.ledger.transparency_codes(order_id)
    finally:
        rt.close()
    assert after.state in (OrderState.CONFIRMED, OrderState.VERIFIED), (after.state, after.hold_message)
    assert kept == {item_id: tuple(CODES[-units:])}
    assert [p["packageItems"][0]["transparencyCodes"] for p in _read_back(w, order_id)] == [CODES[-units:]]
