"""After the confirmation, for every carrier, against its emulator on a simulated clock: a parcel
followed through its scans to DELIVERED, a silent one declared LOST with an alert, a label voided
after the buyer cancels, and a void the carrier refuses because it has scanned the parcel."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from click.testing import CliRunner

from connector import clock, hookimpl
from connector.amazon.errors import TransientError
from connector.cli import cli
from connector.engine import steer
from connector.engine.carrier_calls import shipment_of
from connector.engine.loop import Engine
from connector.engine.track import track_due
from connector.kit.carrier import PermanentCarrierError, TransientCarrierError
from connector.ledger import OrderState, Package, PackageState
from connector.model import utcnow

from .helpers import CARRIERS, advance, ingest_all, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

DAY = 86400.0


def emulator_of(carrier: str) -> str:
    return "spapi" if carrier == "amazon_shipping" else carrier  # Buy Shipping lives on the SP-API emulator


def forced_onto(carrier: str, orders: int = 8) -> dict:
    """Every order routed to ``carrier``, every parcel delivered on time unless a test forces it."""
    return {"sandbox": {"orders": orders, "emulators": {emulator_of(carrier): {"parcel_outcomes": {}}}},
            "routing": {"default": [f"{carrier}:*"]}, "selection": {"overrides": []}}


def force(w, carrier: str, tracking_number: str, outcome: str) -> None:
    answer = requests.post(w.url(emulator_of(carrier)) + "/_sandbox/parcels",
                           json={"tracking_number": tracking_number, "outcome": outcome}, timeout=10)
    assert answer.status_code == 200, answer.text


def parcel(w, carrier: str, tracking_number: str) -> dict:
    return w.state(emulator_of(carrier))["parcels"][tracking_number]


def verified_packages(rt) -> list:
    return [p for r in rt.ledger.orders([OrderState.VERIFIED]) for p in rt.ledger.packages(r.order_id)
            if p.state is PackageState.VERIFIED]


class Alerts:
    """A plugin that records the mfn_alert hook."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, dict]] = []

    @hookimpl
    def mfn_alert(self, kind, subject, message, details):
        self.seen.append((kind, subject, message, details))


class BuyerCancels:
    """A plugin that has the buyer cancel chosen orders on Amazon right after their label is bought."""

    def __init__(self, spapi_url: str, order_ids: set[str]) -> None:
        self.url, self.order_ids, self.answers = spapi_url, order_ids, {}

    @hookimpl
    def mfn_package_labeled(self, order_id, package):
        if order_id in self.order_ids:
            answer = requests.post(f"{self.url}/_sandbox/orders/{order_id}/cancel", json={}, timeout=10)
            self.answers[order_id] = answer.status_code


@pytest.mark.parametrize("carrier", CARRIERS)
def test_parcels_followed_to_delivered_and_a_silent_one_to_lost(world, carrier):
    w = world(forced_onto(carrier))
    alerts = Alerts()
    rt = w.runtime()
    rt.host.register(alerts, name="alerts")
    try:
        engine = Engine(rt)
        engine.run_until_quiet()
        shipped = verified_packages(rt)
        assert len(shipped) >= 2, rt.ledger.counts()
        delivered, silent = shipped[0], shipped[1]
        force(w, carrier, delivered.tracking_number, "delivered")
        force(w, carrier, silent.tracking_number, "no_first_scan")
        for _ in range(40):  # forty simulated days, a pass a day
            advance(w, DAY)
            engine.run_pass(ingest=False)

        done = rt.ledger.get_package(delivered.id)
        assert done.state is PackageState.DELIVERED and done.next_track_at is None
        assert rt.ledger.get_order(done.order_id).state is OrderState.DELIVERED
        events = rt.ledger.tracking_events(done.id)
        scans = [e for e in events if e.status not in ("pending", "unknown")]
        assert done.scans == len(scans) >= 2 and done.first_scan_at <= done.last_scan_at
        assert events[-1].status == "delivered" and done.delivered_at == events[-1].at
        assert all(e.at.tzinfo is not None and e.description and e.description_en for e in events)
        truth = parcel(w, carrier, done.tracking_number)
        assert truth["stage"] == "delivered"
        assert abs((done.delivered_at - _parse(truth["delivered_at"])).total_seconds()) < 60
        shown = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "show", "--json",
                                         done.order_id])
        assert shown.exit_code == 0, shown.output
        listed = json.loads(shown.output)["packages"][-1]["events"]
        assert len(listed) == len(events) and listed[-1]["status"] == "delivered"

        lost = rt.ledger.get_package(silent.id)
        assert lost.state is PackageState.LOST and lost.scans == 0
        assert rt.ledger.get_order(lost.order_id).state is OrderState.LOST
        open_alerts = {(a.kind, a.subject) for a in rt.ledger.alerts()}
        assert ("parcel_lost", lost.order_id) in open_alerts
        assert [a[:2] for a in alerts.seen].count(("parcel_lost", lost.order_id)) == 1  # raised once
    finally:
        rt.close()


def test_hook_mfn_alert(world):
    """Alerts reach plugins once, without buyer PII, and close when their cause is gone."""
    w = world(forced_onto("yunexpress"))
    alerts = Alerts()
    rt = w.runtime()
    rt.host.register(alerts, name="alerts")
    try:
        engine = Engine(rt)
        engine.run_until_quiet()
        package = verified_packages(rt)[0]
        force(w, "yunexpress", package.tracking_number, "no_first_scan")
        for _ in range(10):
            advance(w, DAY)
            engine.run_pass(ingest=False)
        lost = [a for a in alerts.seen if a[0] == "parcel_lost"]
        assert [a[1] for a in lost] == [package.order_id]
        kind, subject, message, details = lost[0]
        assert package.tracking_number in message and details["carrier"] == "yunexpress"
        buyer = rt.ledger.get_order(package.order_id).order.ship_to
        assert buyer.name not in message and buyer.line1 not in message
    finally:
        rt.close()
    result = run_cli(w, "report", "alerts", "--json")
    assert result.returncode == 0, result.stderr
    assert package.order_id in result.stdout and "parcel_lost" in result.stdout


@pytest.mark.parametrize("carrier", [c for c in CARRIERS if c != "amazon_shipping"])
def test_label_voided_after_the_buyer_cancels(world, carrier):
    w = world(forced_onto(carrier))
    rt = w.runtime()
    try:
        engine, cancelled = _labels_bought_then_some_cancelled(rt, w)
        order_id = cancelled[0]
        held = rt.ledger.get_order(order_id)
        assert held.state is OrderState.HELD and held.hold_reason == "amazon_rejected"  # confirm refused
        advance(w, 600)  # searchOrders shows changes a few minutes old; the poll then sees the cancel
        engine.run_pass(ingest=True)  # and the label is voided

        record = rt.ledger.get_order(order_id)
        package = rt.ledger.packages(order_id)[-1]
        assert record.state is OrderState.VOIDED and package.state is PackageState.VOIDED
        assert float(package.refund["amount"]) > 0 and package.voided_at is not None
        assert parcel(w, carrier, package.tracking_number)["cancelled_at"] is not None
        assert rt.counters.labels_voided == len(cancelled)
        # a second pass voids nothing again
        engine.run_pass(ingest=True)
        assert rt.counters.labels_voided == len(cancelled)
    finally:
        rt.close()


class LaggingLookup:
    """A carrier whose lookup by reference does not show any label yet."""

    def __init__(self, carrier):
        self.carrier = carrier

    def find_by_reference(self, reference):
        return None

    def __getattr__(self, name):
        return getattr(self.carrier, name)


@pytest.mark.parametrize("carrier", [c for c in CARRIERS if c != "amazon_shipping"])
def test_a_label_just_bought_is_cancelled_even_when_the_lookup_does_not_show_it_yet(world, carrier):
    """Amazon cancels right after the label: the void's lookup lags, and the label the ledger
    holds is cancelled all the same, not taken for one cancelled already and left paid for."""
    w = world(forced_onto(carrier))
    rt = w.runtime()
    try:
        engine, (order_id, *_) = _labels_bought_then_some_cancelled(rt, w)
        rt.carriers[carrier] = LaggingLookup(rt.carriers[carrier])
        advance(w, 600)
        engine.run_pass(ingest=True)
        package = rt.ledger.packages(order_id)[-1]
        assert package.state is PackageState.VOIDED, (package.state, package.error)
        assert parcel(w, carrier, package.tracking_number)["cancelled_at"] is not None
    finally:
        rt.close()


def _hide_at_the_carrier(w, carrier, package) -> list:
    """The carrier's back end does not know the label yet (a replica behind the write): every record
    of the emulator that names it is taken out, to be put back by :func:`_restore_at_the_carrier`."""
    emulator = w.sandbox.servers[emulator_of(carrier)].emulator
    names = {package.carrier_shipment_id, package.tracking_number, package.idempotency_key}
    hidden = []
    with emulator.lock:
        for table_name, table in emulator.store.items():
            if isinstance(table, dict):
                for key, record in list(table.items()):
                    text = json.dumps(record, default=str)
                    if key in names or any(name in text for name in names):
                        hidden.append((table_name, key, table.pop(key)))
    assert hidden
    return hidden


def _restore_at_the_carrier(w, carrier, hidden) -> None:
    emulator = w.sandbox.servers[emulator_of(carrier)].emulator
    with emulator.lock:
        for table_name, key, record in hidden:
            emulator.store[table_name][key] = record


@pytest.mark.parametrize("carrier", [c for c in CARRIERS if c != "amazon_shipping"])
def test_a_label_the_carrier_does_not_know_yet_is_held_not_taken_for_voided(world, carrier):
    """Amazon cancels right after the label, and the carrier's back end lags for the cancel too: its
    "does not exist" is not taken for "cancelled". The order is held for a person, the label live
    and followed, and a void once the carrier knows the label cancels it."""
    w = world(forced_onto(carrier))
    rt = w.runtime()
    try:
        engine, (order_id, *_) = _labels_bought_then_some_cancelled(rt, w)
        package = rt.ledger.packages(order_id)[-1]
        hidden = _hide_at_the_carrier(w, carrier, package)
        advance(w, 600)
        engine.run_pass(ingest=True)
        _restore_at_the_carrier(w, carrier, hidden)
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.HELD and record.hold_reason == "void_refused", record.state
        assert "may not be known there yet" in record.hold_message, record.hold_message
        assert rt.ledger.get_package(package.id).state is package.state  # back where the void started
        assert parcel(w, carrier, package.tracking_number)["cancelled_at"] is None  # live, paid for
    finally:
        rt.close()
    result = run_cli(w, "orders", "void", order_id)  # the person, a few minutes later
    assert result.returncode == 0, result.stderr
    assert parcel(w, carrier, package.tracking_number)["cancelled_at"] is not None


class RefusedLookup(LaggingLookup):
    """A carrier whose lookup refuses (e.g. its credentials) and whose cancel must not be asked."""

    def find_by_reference(self, reference):
        raise PermanentCarrierError("lookup refused: credentials", code="auth", carrier="test")

    def cancel(self, shipment):
        raise AssertionError("cancel asked after the lookup was refused")


def test_a_refused_lookup_holds_the_void_saying_so(world):
    w = world(forced_onto("chinapost", orders=4))
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = verified_packages(rt)[0]
        rt.carriers["chinapost"] = RefusedLookup(rt.carriers["chinapost"])
        with pytest.raises(steer.NotAllowed, match="refused the lookup of label") as refused:
            steer.void_order(rt, package.order_id)
        assert "void it again once that is fixed" in str(refused.value)
        assert "--cancelled-elsewhere" not in str(refused.value)
        record = rt.ledger.get_order(package.order_id)
        assert record.state is OrderState.HELD and record.hold_reason == "void_refused"
        assert rt.ledger.get_package(package.id).state is PackageState.VERIFIED
        # Confirmed on Amazon and followed: a person's word does not end it (nor stop its tracking).
        with pytest.raises(steer.NotAllowed, match="package is VERIFIED; the parcel is confirmed on Amazon"):
            steer.record_cancelled_elsewhere(rt, package.order_id)
        assert rt.ledger.get_package(package.id).state is PackageState.VERIFIED
        assert parcel(w, "chinapost", package.tracking_number)["cancelled_at"] is None
    finally:
        rt.close()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_label_cancelled_in_the_carriers_portal_is_voided_not_refused(world, carrier):
    """Someone cancelled the label at the carrier first; the void asks again (the lookup of most
    carriers hides cancelled labels) and the carrier's "cancelled already" ends it VOIDED."""
    w = world(forced_onto(carrier, orders=4))
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = verified_packages(rt)[0]
        assert rt.carriers[carrier].cancel(shipment_of(package)) is True  # the person, in the portal
    finally:
        rt.close()
    result = run_cli(w, "orders", "void", package.order_id)
    assert result.returncode == 0, result.stderr
    assert f"{package.order_id}: label" in result.stdout and "voided" in result.stdout
    rt = w.runtime()
    try:
        assert rt.ledger.get_package(package.id).state is PackageState.VOIDED
        assert rt.ledger.get_order(package.order_id).state is OrderState.VOIDED
    finally:
        rt.close()


# Tracking/GetTrackInfo as YunExpress answered it in a captured answer (the plugin's
# tests/fixtures/get_track_info.json): the order submitted (PackageState 1), so no scan yet, and one
# event in words no rule of the plugin knows.
SUBMITTED = {"Code": "0000", "Message": "提交成功", "Item": {
    "CountryCode": "AU", "WaybillNumber": "YT2222222222222222", "TrackingNumber": "", "PackageState": 1,
    "TrackingStatus": 10, "IntervalDays": -1.0, "OrderTrackingDetails": [
        {"ProcessContent": "xxxxxxx xxxxxxx xxxxxxx", "ProcessLocation": None,
         "ProcessDate": "2021-12-28T23:38:38", "TrackingStatus": 10}]}}


class SubmittedOnly:
    """YunExpress answering every tracking number with :data:`SUBMITTED`."""

    def __init__(self, carrier):
        self.carrier = carrier

    def track(self, numbers):
        from mfn_carrier_yunexpress import mapping

        return [mapping.parse_track_info(SUBMITTED, number) for number in numbers]

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def test_an_event_yunexpress_has_not_scanned_is_no_scan_and_the_label_can_be_voided(world):
    """An event counted as a scan makes ``orders void`` refuse and the void of a label for an order
    Amazon cancels never happen: a label paid and never refunded. YunExpress says "submitted, not
    scanned" (PackageState 1), so its event is no scan, whatever it says."""
    w = world(forced_onto("yunexpress"))
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = verified_packages(rt)[0]
        rt.carriers["yunexpress"] = SubmittedOnly(rt.carriers["yunexpress"])
        track_due(rt, now=utcnow() + timedelta(days=1))
        tracked = rt.ledger.get_package(package.id)
        kept = [e.status for e in rt.ledger.tracking_events(package.id) if e.description.startswith("xxx")]
        assert kept == ["unknown"]  # stored with its words, but no scan
        assert tracked.scans == 0 and tracked.first_scan_at is None
        assert tracked.state is PackageState.VERIFIED
    finally:
        rt.close()
    result = run_cli(w, "orders", "void", package.order_id)
    assert result.returncode == 0, result.stderr
    assert f"{package.order_id}: label" in result.stdout and "voided" in result.stdout
    assert parcel(w, "yunexpress", package.tracking_number)["cancelled_at"] is not None


@pytest.mark.parametrize("carrier", CARRIERS)
def test_void_on_request_and_refused_after_the_first_scan(world, carrier):
    w = world(forced_onto(carrier))
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        early, late = verified_packages(rt)[:2]
    finally:
        rt.close()
    result = run_cli(w, "orders", "void", early.order_id)
    assert result.returncode == 0, result.stderr
    assert f"{early.order_id}: label" in result.stdout and "voided" in result.stdout

    advance(w, 2 * DAY)  # the carrier scans the other parcel; the daemon has not tracked it yet
    assert parcel(w, carrier, late.tracking_number)["stage"] not in ("", "info_received")
    result = run_cli(w, "orders", "void", late.order_id)
    assert result.returncode == 1 and "void_refused" in result.stderr, result.stderr

    rt = w.runtime()
    try:
        assert rt.ledger.get_package(early.id).state is PackageState.VOIDED
        record = rt.ledger.get_order(late.order_id)
        assert record.state is OrderState.HELD and record.hold_reason == "void_refused"
        kept = rt.ledger.get_package(late.id)
        assert kept.state is PackageState.VERIFIED
        assert parcel(w, carrier, late.tracking_number)["cancelled_at"] is None
        Engine(rt).run_pass(ingest=False)  # the refused parcel is still followed while its order is held
        assert rt.ledger.get_package(late.id).state is PackageState.IN_TRANSIT
        assert rt.ledger.get_order(late.order_id).held_from is OrderState.IN_TRANSIT
    finally:
        rt.close()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_void_of_a_held_order_is_carried_out_and_ends_the_hold(world, carrier):
    w = world(forced_onto(carrier, orders=4))
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = verified_packages(rt)[0]
    finally:
        rt.close()
    assert run_cli(w, "orders", "hold", package.order_id).returncode == 0
    w.set_faults({"error_5xx": 1.0})  # the carrier cannot be reached: claimed, not finished
    result = run_cli(w, "orders", "void", package.order_id)
    assert result.returncode == 1 and "package is VOIDING (manual" in result.stderr, result.stderr
    assert "void it again to finish" in result.stderr
    w.set_faults({})
    result = run_cli(w, "orders", "void", package.order_id)
    assert result.returncode == 0, result.stderr  # not left half-way, VOIDING, until a release
    assert f"{package.order_id}: label" in result.stdout and "voided" in result.stdout
    assert parcel(w, carrier, package.tracking_number)["cancelled_at"] is not None

    rt = w.runtime()
    try:
        assert rt.ledger.get_package(package.id).state is PackageState.VOIDED
        record = rt.ledger.get_order(package.order_id)
        assert record.state is OrderState.VOIDED and record.hold_reason == "" and record.held_from is None
        assert [(h["from"], h["to"]) for h in rt.ledger.history(package.order_id)
                if h["package_id"] is None][-1] == ("HELD", "VOIDED")
        Engine(rt).run_pass(ingest=False)  # nothing is left to do for it
        assert rt.ledger.get_order(package.order_id).state is OrderState.VOIDED
    finally:
        rt.close()
    again = run_cli(w, "orders", "void", package.order_id)  # a retry: the same answer, no second cancel
    assert again.returncode == 0 and again.stdout == result.stdout, again.stderr
    assert parcel(w, carrier, package.tracking_number)["cancelled_at"] is not None
    quoted = json.loads(run_cli(w, "quote", package.order_id, "--json").stdout)
    assert quoted["error"] == "not shopped: the order is VOIDED; nothing is to ship"


@pytest.mark.parametrize("held_at", [PackageState.LABELED, PackageState.CONFIRMING, PackageState.CONFIRMED])
def test_a_scanned_parcel_amazon_cancelled_is_ended_once_stopped_at_the_carrier(world, held_at):
    """Amazon cancels the order, the carrier has scanned the parcel and refuses the void: the order is
    held, and its address goes at the purge (nothing of it can ship any more). The person stops the
    parcel at the carrier, then says so; the order ends VOIDED with no carrier call and no refund
    (before, it stayed held for good). Also when the label's confirmation was in doubt (CONFIRMING),
    or accepted and never shown (CONFIRMED): Amazon confirms no shipment of a cancelled order (nor
    cancels one it shows shipped), so nothing is followed there."""

    w = world(forced_onto("yanwen"))
    rt = w.runtime()
    try:
        engine, (order_id, *_) = _labels_bought_then_some_cancelled(rt, w)
        package = rt.ledger.packages(order_id)[-1]
        not_yet = r"is HELD \(amazon_rejected\): only an order held void_refused"
        with pytest.raises(steer.NotAllowed, match=not_yet):
            steer.record_cancelled_elsewhere(rt, order_id)  # nothing was refused yet: the daemon voids it
        told_before = {e.id for e in rt.ledger.events(order_id=order_id, limit=1000)}
        advance(w, 2 * DAY)  # the carrier scans the parcel before the daemon hears of the cancel
        engine.run_pass(ingest=True)
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.HELD and record.hold_reason == "void_refused", record.hold_message
        assert f"orders void {order_id} --cancelled-elsewhere" in record.hold_message
        assert rt.ledger.get_package(package.id).state is PackageState.LABELED
        if held_at is not PackageState.LABELED:  # as if the refused void had started from there
            rt.ledger.advance(rt.ledger.get_package(package.id), PackageState.LABELED, held_at)
        alerted = [e.type for e in rt.ledger.events(order_id=order_id, limit=1000)
                   if e.id not in told_before and e.type.startswith("alert.")]
        assert alerted == [], alerted  # Amazon cancelled it: no ship-by to warn about, even held
        assert record.pii_purged  # nor an address to keep: the pass's purge took it
    finally:
        rt.close()
    due = json.loads(run_cli(w, "orders", "list", "--due-within", "30d", "--json").stdout)
    assert order_id not in {row["order_id"] for row in due}  # nor is it listed as due to ship
    w.set_faults({"error_5xx": 1.0})  # the person voids it again, and Yanwen cannot be reached
    assert "package is VOIDING" in run_cli(w, "orders", "void", order_id).stderr
    under_way = run_cli(w, "orders", "void", order_id, "--cancelled-elsewhere")
    assert under_way.returncode == 1 and "a void of its label is under way" in under_way.stderr
    w.set_faults({})
    refused = run_cli(w, "orders", "void", order_id).stderr  # scanned: refused again, back at held_at
    assert f"package is {held_at.value} (void_refused" in refused, refused
    assert f"once it is stopped, end the order: orders void {order_id} --cancelled-elsewhere" in refused
    result = run_cli(w, "orders", "void", order_id, "--cancelled-elsewhere")  # once stopped at Yanwen
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{order_id}: label {package.tracking_number} {steer.CANCELLED_ELSEWHERE}"
    # (no carrier call: the API test of an ERP label records the calls; here Yanwen would refuse anyway)
    assert parcel(w, "yanwen", package.tracking_number)["cancelled_at"] is None
    rt = w.runtime()
    try:
        done = rt.ledger.get_package(package.id)
        assert done.state is PackageState.VOIDED and done.refund == {} and done.voided_at is not None
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.VOIDED and record.hold_reason == ""
        told = [e.type for e in rt.ledger.events(order_id=order_id, limit=1000)]
        assert told[-2:] == ["package.voided", "order.released"], told  # as a held order's void tells it
        assert rt.ledger.get_order(order_id).pii_purged
    finally:
        rt.close()
    again = run_cli(w, "orders", "void", order_id, "--cancelled-elsewhere")  # a retry: the same answer
    assert again.returncode == 0 and again.stdout == result.stdout, again.stderr
    plain = run_cli(w, "orders", "void", order_id)  # and a plain void does not claim a refund for it
    assert plain.returncode == 0 and plain.stdout == result.stdout, plain.stderr


def _labels_bought_then_some_cancelled(rt, w) -> tuple[Engine, list[str]]:
    """Every label bought, the buyer cancelling some of the first five orders on Amazon right after
    theirs (the daemon has not seen it yet); the engine and the orders Amazon cancelled."""
    first = sorted(r.order_id for r in _new_orders(rt, w))
    cancels = BuyerCancels(w.url("spapi"), set(first[:5]))
    rt.host.register(cancels, name="buyer-cancels")
    engine = Engine(rt)
    engine.run_until_quiet()
    cancelled = [oid for oid, status in cancels.answers.items() if status == 200]
    assert cancelled, cancels.answers
    return engine, cancelled


def _new_orders(rt, w):
    """Ingest only, so the test knows the order ids before any label is bought."""
    from connector.model import FulfillmentStatus

    ingest_all(rt)
    return [r for r in rt.ledger.orders([OrderState.NEW])
            if r.order.ship_to is not None and r.order.status is FulfillmentStatus.UNSHIPPED]


def _shown(w, order_id: str) -> dict:
    """``mfn-connector orders show``'s answer for one order."""
    shown = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "show", "--json", order_id])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_pii_purged_30_days_after_delivery_and_at_the_fallback_for_a_lost_parcel(world):
    w = world(forced_onto("yunexpress"))
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_until_quiet()
        delivered, lost = verified_packages(rt)[:2]
        force(w, "yunexpress", delivered.tracking_number, "delivered")
        force(w, "yunexpress", lost.tracking_number, "no_first_scan")
        while rt.ledger.get_package(delivered.id).state is not PackageState.DELIVERED:
            advance(w, DAY / 2)
            engine.run_pass(ingest=False)
        at = rt.ledger.get_package(delivered.id).delivered_at
        retention = timedelta(days=rt.config.ledger.pii_retention_days)
        assert retention == timedelta(days=30)

        def pii(order_id: str) -> bool:
            return rt.ledger.get_order(order_id).order.ship_to is not None

        _advance_to(w, at + retention - timedelta(hours=2))
        engine.run_pass(ingest=False)
        assert pii(delivered.order_id), "purged before delivery + 30 days"
        assert _shown(w, delivered.order_id)["address_on_file"] is True
        _advance_to(w, at + retention + timedelta(hours=1))
        engine.run_pass(ingest=False)
        assert not pii(delivered.order_id), "kept after delivery + 30 days"
        shown = _shown(w, delivered.order_id)
        assert shown["address_on_file"] is False and shown["pii_purged"] is True

        # the lost parcel never reached an end: its ship date + max_transit_days + 30 days
        gone = rt.ledger.get_package(lost.id)
        assert gone.state is PackageState.LOST and pii(lost.order_id)
        fallback = gone.shipped_at + timedelta(days=rt.config.ledger.max_transit_days) + retention
        _advance_to(w, fallback - timedelta(hours=2))
        engine.run_pass(ingest=False)
        assert pii(lost.order_id)
        _advance_to(w, fallback + timedelta(hours=1))
        engine.run_pass(ingest=False)
        assert not pii(lost.order_id)
        record = rt.ledger.get_order(lost.order_id)  # ids, tracking and totals stay
        assert record.order.order_id == lost.order_id and rt.ledger.get_package(lost.id).tracking_number
    finally:
        rt.close()


def test_ship_by_alert_and_orders_due_within(world, monkeypatch):
    w = world({"sandbox": {"orders": 12}})
    alerts = Alerts()
    rt = w.runtime()
    rt.host.register(alerts, name="alerts")
    try:
        engine = Engine(rt)
        engine.run_until_quiet()
        held = sorted((r for r in rt.ledger.orders([OrderState.HELD]) if r.order.ship_by),
                      key=lambda r: r.order.ship_by)
        soonest = held[0]
        _advance_to(w, soonest.order.ship_by - timedelta(hours=5))
        engine.run_pass(ingest=False)
        near = {a[1]: a for a in alerts.seen if a[0] == "ship_by_near"}
        assert soonest.order_id in near
        _, _, message, details = near[soonest.order_id]
        assert 4.5 <= details["hours_left"] <= 5.0 and "before ship-by" in message
        assert soonest.hold_reason in message
        shipped = {r.order_id for r in rt.ledger.orders([OrderState.VERIFIED])}
        assert not shipped & set(near)  # confirmed orders never raise it

        # The watch decrypts no buyer address at all (an order whose key was removed cannot stop
        # every order's alert), and still alerts for the soonest.
        from connector.engine.watch import ship_by_guard
        from connector.ledger import sql

        opened, open_address = [], sql.open_address
        monkeypatch.setattr(sql, "open_address", lambda cipher, order_id, blob: (
            opened.append(order_id), open_address(cipher, order_id, blob))[1])
        rt.ledger.resolve_alert("ship_by_near", soonest.order_id)
        ship_by_guard(rt, clock.now())
        assert opened == []
        assert any(a.kind == "ship_by_near" and a.subject == soonest.order_id for a in rt.ledger.alerts())

        result = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "list",
                                          "--due-within", "6h", "--json"])
        assert result.exit_code == 0, result.output
        due = json.loads(result.output)
        assert soonest.order_id in {row["order_id"] for row in due}
        assert all(row["hours_to_ship_by"] <= 6 for row in due)
        assert not shipped & {row["order_id"] for row in due}
        assert [row["hours_to_ship_by"] for row in due] == sorted(row["hours_to_ship_by"] for row in due)
    finally:
        rt.close()


def _advance_to(w, when) -> None:
    seconds = (when - clock.now()).total_seconds()
    assert seconds > 0, "the clock only moves forward"
    advance(w, seconds)


def one_parcel_tracked_as(rt, detail: dict) -> tuple[list[Package], Package]:
    """The shipped YunExpress parcels, once verified; from now on the first one's tracking answer
    holds ``detail`` as its only event (the others' answers are the emulator's)."""
    Engine(rt).run_until_quiet()
    shipped = verified_packages(rt)
    assert len(shipped) >= 3, rt.ledger.counts()
    bad = shipped[0]
    carrier = rt.carriers["yunexpress"]
    real = carrier._track_info

    def garbled(number, **kw):
        if number != bad.tracking_number:
            return real(number, **kw)
        return {"Code": "0000", "Message": "", "Item": {"PackageState": 1, "OrderTrackingDetails": [detail]}}

    carrier._track_info = garbled
    return shipped, bad


def test_one_garbled_tracking_answer_fails_only_its_parcel(world, caplog):
    """A parcel whose event carries .NET's "no date" (0001-01-01, out of range in UTC) fails alone,
    named with the field: every other parcel of its batch is stored, pass after pass."""
    rt = world(forced_onto("yunexpress", orders=12)).runtime()
    try:
        shipped, bad = one_parcel_tracked_as(rt, {"ProcessDate": "0001-01-01T00:00:00",
                                                  "ProcessContent": "Shipment information received"})
        for day in (2, 4):
            with caplog.at_level("INFO", logger="connector.engine"):
                result = track_due(rt, now=utcnow() + timedelta(days=day))
            assert (result.polled, result.failed) == (len(shipped) - 1, 1)
        others = [rt.ledger.get_package(p.id) for p in shipped[1:]]
        assert all(p.track_failures == 0 and rt.ledger.tracking_events(p.id) for p in others)
        assert rt.ledger.get_package(bad.id).track_failures == 2
        failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert failed and all(bad.tracking_number in m and bad.order_id in m and "ProcessDate" in m
                              for m in failed), failed
        buyer = rt.ledger.get_order(bad.order_id).order.ship_to
        assert not any(buyer.name in m or buyer.line1 in m for m in failed)
    finally:
        rt.close()


@pytest.mark.parametrize("odd", ["\ud800", "\x00"], ids=["lone-surrogate", "nul"])
def test_a_tracking_text_the_ledger_cannot_hold_is_stored_without_that_character(world, odd):
    """JSON allows a lone surrogate (``\\ud800``), which no UTF-8 column holds, and a NUL, which
    PostgreSQL's text refuses. The ledger refused the write, which ended the pass at that parcel,
    pass after pass: no parcel after it was followed, and the leader's jobs after tracking never
    ran. The parcel's events are stored with the character replaced (or left out), and every
    other parcel of the pass too."""
    rt = world(forced_onto("yunexpress", orders=12)).runtime()
    try:
        shipped, bad = one_parcel_tracked_as(rt, {"ProcessDate": "2026-01-01T08:00:00",
                                                  "ProcessContent": f"Accepted {odd}here",
                                                  "ProcessLocation": "Shenzhen"})
        result = track_due(rt, now=utcnow() + timedelta(days=2))
        assert (result.polled, result.failed) == (len(shipped), 0)
        others = [rt.ledger.get_package(p.id) for p in shipped[1:]]
        assert all(p.track_failures == 0 and rt.ledger.tracking_events(p.id) for p in others)
        package = rt.ledger.get_package(bad.id)
        assert package.track_failures == 0
        (event,) = [e for e in rt.ledger.tracking_events(bad.id) if "here" in e.description]
        assert event.description == ("Accepted \ufffdhere" if odd == "\ud800" else "Accepted here")
    finally:
        rt.close()


def test_a_poll_that_finds_nothing_new_writes_no_history(world):
    """Polling a parcel whose carrier has nothing new moves only its next poll: no ``X -> X`` row
    in the order's history, and no note claims a field (delivered_at, say) that did not change."""
    rt = world(forced_onto("yunexpress", orders=6)).runtime()
    try:
        Engine(rt).run_until_quiet()
        shipped = verified_packages(rt)
        assert len(shipped) >= 2, rt.ledger.counts()
        day = utcnow() + timedelta(days=1)
        assert track_due(rt, now=day).polled == len(shipped)  # the first scans: real changes
        before = {p.order_id: rt.ledger.history(p.order_id) for p in shipped}
        for hours in (7, 14):  # due again, the carrier (its clock unmoved) says the same
            assert track_due(rt, now=day + timedelta(hours=hours)).polled == len(shipped)
        for p in shipped:
            package = rt.ledger.get_package(p.id)
            assert package.next_track_at > day + timedelta(hours=14)
            assert rt.ledger.history(p.order_id) == before[p.order_id], p.order_id
            for row in before[p.order_id]:
                assert "delivered_at" not in row["note"] or package.delivered_at is not None, row
    finally:
        rt.close()


def _slow_tracking(rt, seconds: float) -> list[tuple[float, list[str]]]:
    """Every carrier's track() answering ``seconds`` late (within its timeout); the calls' start
    times and numbers."""
    import time

    calls: list[tuple[float, list[str]]] = []
    for carrier in rt.carriers.values():
        def slow(numbers, real=carrier.track):
            calls.append((time.monotonic(), list(numbers)))
            time.sleep(seconds)
            return real(numbers)
        carrier.track = slow
    return calls


def test_a_stop_ends_a_tracking_pass_between_batches(world):
    """A stop request (SIGTERM) while the leader tracks parcels one per call against a slow
    carrier: the call in flight finishes, no other starts, the daemon stops within seconds."""
    import threading
    import time

    w = world({"sandbox": {"orders": 10}, "tracking": {"batch_size": 1}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        assert len(verified_packages(rt)) > 5, rt.ledger.counts()
        advance(w, 3 * DAY)  # parcels due for tracking
        calls = _slow_tracking(rt, 0.5)
        engine = Engine(rt, daemon=True)
        thread = threading.Thread(target=engine.run_forever, kwargs={"tick_seconds": 0.2})
        thread.start()
        deadline = time.monotonic() + 60
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert calls, "no tracking call started"
        stop_at = time.monotonic()
        engine.stop()  # what SIGTERM does
        thread.join(60)
        took = time.monotonic() - stop_at
        after = sum(1 for at, _ in calls if at > stop_at)
        assert not thread.is_alive() and took < 3, f"stop took {took:.1f}s; {after} calls after it"
        assert after <= 1, f"{after} tracking calls started after the stop request"
    finally:
        rt.close()


def test_a_tracking_pass_is_bounded_and_the_parcels_left_go_first_next_time(world):
    """tracking.pass_seconds bounds a pass (alerts, purge, hooks and webhooks run after it on the
    same thread): the parcels it did not reach stay due, and the next pass takes them first."""
    import time

    rt = world({**forced_onto("chinapost", orders=10), "tracking": {"pass_seconds": 1}}).runtime()
    try:
        Engine(rt).run_until_quiet()
        shipped = verified_packages(rt)
        assert len(shipped) >= 6, rt.ledger.counts()
        calls = _slow_tracking(rt, 0.4)  # one number per call (China Post)
        day = utcnow() + timedelta(days=1)
        started = time.monotonic()
        first = track_due(rt, now=day)
        took = time.monotonic() - started
        assert took < 2.5, f"the pass took {took:.1f}s"
        assert 1 <= first.polled < len(shipped) and first.left == len(shipped) - first.polled
        reached = {n for _, numbers in calls for n in numbers}
        missed = [p for p in shipped if p.tracking_number not in reached]
        assert len(missed) == first.left
        assert all(rt.ledger.get_package(p.id).next_track_at == p.next_track_at for p in missed)
        calls.clear()
        later = day + timedelta(hours=7)  # every parcel due again: those left behind first
        second = track_due(rt, now=later)
        order = [n for _, numbers in calls for n in numbers]
        wanted = {p.tracking_number for p in missed}
        assert order and set(order[:len(wanted)]) <= wanted, (order, wanted)
        assert 1 <= second.polled and second.left == len(shipped) - second.polled
    finally:
        rt.close()


def test_a_late_parcel_whose_label_is_voided_does_not_stay_late(world):
    """A confirmed parcel the carrier never scanned is past its deliver-by: parcel_late. The seller
    voids its label (``orders void``: it never left); tracking no longer follows a voided label, so
    nothing there clears the alert: the watch must, or it stays open for good."""
    from connector.engine.watch import watch

    # a promise shorter than the wait for a first scan: late before it can be taken for lost
    w = world({**forced_onto("yunexpress"), "tracking": {"first_scan_days": 30}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = next(p for p in verified_packages(rt) if rt.ledger.get_order(p.order_id).order.deliver_by)
        deliver_by = rt.ledger.get_order(package.order_id).order.deliver_by
        rt.carriers["yunexpress"] = SubmittedOnly(rt.carriers["yunexpress"])
        track_due(rt, now=deliver_by + timedelta(hours=1))
        late = [a.subject for a in rt.ledger.alerts() if a.kind == "parcel_late"]
        assert package.order_id in late
        voided = steer.void_order(rt, package.order_id)
        assert rt.ledger.get_package(package.id).state is PackageState.VOIDED, voided
        watch(rt, now=deliver_by + timedelta(hours=2))
        still = [a.subject for a in rt.ledger.alerts() if a.kind == "parcel_late"]
    finally:
        rt.close()
    assert package.order_id not in still



def _one_request_fails(monkeypatch, rt, carrier: str, number: str) -> None:
    """``carrier``'s tracking request for ``number`` times out from now on (the others are answered)."""
    if carrier == "yunexpress":
        plugin = rt.carriers[carrier]
        real = plugin._track_info

        def times_out(asked, **kw):
            if asked == number:
                raise TransientCarrierError("YunExpress GetTrackInfo: read timed out", code="timeout",
                                            carrier=carrier)
            return real(asked, **kw)

        plugin._track_info = times_out
        return
    from mfn_carrier_amazon_shipping import client as buy_shipping

    real_get = buy_shipping.api.get_tracking

    def get_tracking(client, asked, *args, **kw):
        if asked == number:
            raise TransientError("read timed out", operation="getTracking")
        return real_get(client, asked, *args, **kw)

    monkeypatch.setattr(buy_shipping.api, "get_tracking", get_tracking)


@pytest.mark.parametrize("carrier", ["yunexpress", "amazon_shipping"])
def test_one_tracking_request_that_fails_costs_only_its_parcel(world, monkeypatch, carrier):
    """YunExpress and Buy Shipping answer one number per request. A request that times out, among
    a pass's parcels, fails that parcel alone: the answers already read for the others are
    stored, not thrown away with a whole batch of them (and failed with it, pass after pass, on a
    carrier whose requests fail now and then)."""
    rt = world(forced_onto(carrier, orders=12)).runtime()
    try:
        Engine(rt).run_until_quiet()
        shipped = verified_packages(rt)
        assert len(shipped) >= 3, rt.ledger.counts()
        bad = shipped[-1]
        _one_request_fails(monkeypatch, rt, carrier, bad.tracking_number)
        result = track_due(rt, now=utcnow() + timedelta(days=2))
        assert (result.polled, result.failed) == (len(shipped) - 1, 1)
        others = [rt.ledger.get_package(p.id) for p in shipped[:-1]]
        assert all(p.track_failures == 0 and rt.ledger.tracking_events(p.id) for p in others)
        assert rt.ledger.get_package(bad.id).track_failures == 1
    finally:
        rt.close()


_BATCH_SETTING = {"yanwen": "track_batch_size", "dhl_ecommerce": "tracking_batch_size"}


def _request_of_fails(monkeypatch, carrier: str, number: str) -> None:
    """``carrier``'s tracking request that asks for ``number`` times out from now on."""
    if carrier == "yanwen":
        from mfn_carrier_yanwen import mapping
        real, name = mapping.tracking_query, "tracking_query"
    else:
        from mfn_carrier_dhl_ecommerce import mapping
        real, name = mapping.track_bd, "track_bd"

    def times_out(numbers, *args, **kw):
        if number in numbers:
            raise TransientCarrierError("read timed out", code="timeout", carrier=carrier)
        return real(numbers, *args, **kw)

    monkeypatch.setattr(mapping, name, times_out)


@pytest.mark.parametrize("carrier", sorted(_BATCH_SETTING))
def test_a_tracking_batch_set_below_the_declared_one_fails_only_the_request_that_failed(
        world, monkeypatch, carrier):
    """Yanwen and DHL eCommerce declare the most numbers their tracking call takes (30, 100); a
    smaller batch setting (track_batch_size, tracking_batch_size) splits the engine's batch into
    several requests. One of them that fails must cost its own parcels only: the answers read for
    the others are stored, not thrown away with the whole batch."""
    config = forced_onto(carrier, orders=12)
    config["carriers"] = {carrier: {_BATCH_SETTING[carrier]: 1}}
    rt = world(config).runtime()
    try:
        Engine(rt).run_until_quiet()
        shipped = verified_packages(rt)
        assert len(shipped) >= 3, rt.ledger.counts()
        bad = shipped[-1]
        _request_of_fails(monkeypatch, carrier, bad.tracking_number)
        result = track_due(rt, now=utcnow() + timedelta(days=2))
        assert (result.polled, result.failed) == (len(shipped) - 1, 1)
        others = [rt.ledger.get_package(p.id) for p in shipped[:-1]]
        assert all(p.track_failures == 0 for p in others)
        assert rt.ledger.get_package(bad.id).track_failures == 1
    finally:
        rt.close()
