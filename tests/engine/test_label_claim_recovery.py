"""A carrier that refuses a label: the first create of a claim refused gives the claim up (nothing
can exist under its reference). A refusal after a call whose answer was lost keeps the claim and
holds the order ``label_uncertain``: the same request was refused, so that call was most likely
refused too, but a carrier may refuse a taken reference with a plain error while its lookup does
not show the label yet. A release asks the carrier again; only ``release --replan``, the word of
an operator who checked the carrier, plans the order again under a new reference."""
from __future__ import annotations

import dataclasses
import threading

import pytest
import requests
from click.testing import CliRunner

from connector.cli import cli
from connector.engine.loop import drive, step
from connector.engine.outcome import Outcome
from connector.engine.steer import NotAllowed, OrderNotFound, hold_order, replan_order
from connector.holds import CLAIM_GIVEN_UP_BY_RELEASE, HoldReason
from connector.kit.carrier import (
    CredentialsRefusedError,
    DuplicateReferenceError,
    NotSupported,
    PermanentCarrierError,
    TransientCarrierError,
)
from connector.ledger import OrderState, PackageState
from connector.ledger.sql import SqlLedger
from connector.ledger.sqlite import KEY_LOCKS
from connector.model import FulfillmentStatus

from ..e2e.helpers import advance, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def amazon_cancels(w, order_id: str) -> None:
    """The buyer cancels the order on Amazon; the clocks move on until a poll can see it."""
    answer = requests.post(f"{w.url('spapi')}/_sandbox/orders/{order_id}/cancel", json={}, timeout=10)
    assert answer.status_code == 200, answer.text
    advance(w, 600)


class Refusing:
    """Every create after the first ``lost`` ones is refused; those are bought and their answer
    lost (``lost=0``: the first create is refused); the lookup by reference lags: it shows
    nothing until ``lagging`` is set False."""

    def __init__(self, carrier, lost: int):
        self.carrier, self.lost, self.creates, self.lagging = carrier, lost, 0, True

    def create_shipment(self, request):
        self.creates += 1
        if self.creates <= self.lost:
            self.carrier.create_shipment(request)
            raise TransientCarrierError("read timed out")
        raise PermanentCarrierError("shipment refused: postcode not served")

    def find_by_reference(self, reference):
        return None if self.lagging else self.carrier.find_by_reference(reference)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def planned_with_yunexpress(world, monkeypatch, carrier_attempts: int):
    """A world whose orders are planned with YunExpress (no back-off between carrier calls), and
    one of them Amazon can still cancel and has no cancel request: the world, the runtime (open:
    the caller closes it) and that order's id."""
    monkeypatch.setattr("connector.engine.buy.backoff", lambda attempt: None)
    w = world({"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}, "engine": {"carrier_attempts": carrier_attempts}})
    rt = w.runtime()
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        step(rt, record)
    order_id = next(r.order_id for r in rt.ledger.orders([OrderState.PLANNED])
                    if r.order.status is FulfillmentStatus.UNSHIPPED and not r.order.buyer_cancel_requested)
    return w, rt, order_id


def refused_once_planned(world, monkeypatch, lost: int, cancelled: bool = False):
    """One order planned with YunExpress, then stepped once against a refusing carrier (``cancelled``:
    Amazon cancels the order after its claim, and the step that settles the claim runs next).
    Returns the world, the runtime (open: the caller closes it), the order and its package."""
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=2)
    refusing = rt.carriers["yunexpress"] = Refusing(rt.carriers["yunexpress"], lost)
    if cancelled:  # the first call loses its answer, then Amazon cancels the order
        refusing.lost = 99
        step(rt, rt.ledger.get_order(order_id))
        assert rt.ledger.get_order(order_id).state is OrderState.LABEL_CLAIMED
        amazon_cancels(w, order_id)
        ingest_all(rt)
        assert rt.ledger.get_order(order_id).order.status is FulfillmentStatus.CANCELLED
    step(rt, rt.ledger.get_order(order_id))
    return w, rt, rt.ledger.get_order(order_id), rt.ledger.packages(order_id)[-1]


def test_a_first_create_refused_gives_the_claim_up(world, monkeypatch):
    _w, rt, held, package = refused_once_planned(world, monkeypatch, lost=0)
    rt.close()
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.CARRIER_REJECTED.value
    assert "postcode not served" in held.hold_message and "--replan" not in held.hold_message
    assert package.state == PackageState.FAILED


def test_a_refusal_after_a_lost_answer_keeps_the_claim_for_a_person(world, monkeypatch):
    w, rt, held, package = refused_once_planned(world, monkeypatch, lost=1)
    rt.close()
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.LABEL_UNCERTAIN.value
    assert "postcode not served" in held.hold_message
    assert f"a label may exist under {package.idempotency_key}" in held.hold_message
    assert "--replan" in held.hold_message
    assert package.state == PackageState.LABEL_CLAIMED and held.held_from == OrderState.LABEL_CLAIMED
    assert len(w.state("yunexpress")["labels"]) == 1  # why: that lost call did buy one


def test_released_it_asks_the_carrier_again_and_keeps_the_label_found(world, monkeypatch):
    w, rt, held, package = refused_once_planned(world, monkeypatch, lost=1)
    try:
        rt.ledger.release(held.order_id)
        step(rt, rt.ledger.get_order(held.order_id))  # the lookup still lags: held again, claim kept
        again = rt.ledger.get_order(held.order_id)
        assert again.hold_reason == HoldReason.LABEL_UNCERTAIN.value
        assert rt.ledger.packages(held.order_id)[-1].state is PackageState.LABEL_CLAIMED
        rt.carriers["yunexpress"].lagging = False
        rt.ledger.release(held.order_id)
        step(rt, rt.ledger.get_order(held.order_id))
        found = rt.ledger.packages(held.order_id)
        assert [p.state for p in found] == [PackageState.LABEL_CREATED]
        assert found[0].idempotency_key == package.idempotency_key
    finally:
        rt.close()
    assert len(w.state("yunexpress")["labels"]) == 1  # the label the lost call bought, not a second


def test_replan_gives_the_claim_up_and_the_order_is_planned_under_a_new_reference(world, monkeypatch):
    w, rt, held, package = refused_once_planned(world, monkeypatch, lost=1)
    rt.close()
    done = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "release", held.order_id,
                                    "--replan"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == (f"{held.order_id}: label claim {package.idempotency_key} given up; "
                                   "released to NEW")
    rt = w.runtime()
    try:
        given_up = rt.ledger.get_package(package.id)
        assert given_up.state is PackageState.FAILED and "given up by an operator" in given_up.error
        assert rt.ledger.get_order(held.order_id).state is OrderState.NEW
        for _ in range(2):  # planned again, and bought (the carrier is real)
            step(rt, rt.ledger.get_order(held.order_id))
        packages = rt.ledger.packages(held.order_id)
        assert len(packages) == 2 and packages[-1].idempotency_key != package.idempotency_key
        assert packages[-1].state in (PackageState.LABEL_CREATED, PackageState.LABELED,
                                      PackageState.CONFIRMED, PackageState.VERIFIED), packages[-1]
    finally:
        rt.close()


def test_replan_needs_a_hold_set_after_a_call_and_a_claim(world, monkeypatch):
    _w, rt, held, _package = refused_once_planned(world, monkeypatch, lost=0)  # claim given up already
    try:
        with pytest.raises(NotAllowed, match="held carrier_rejected: only a hold the label step set"):
            replan_order(rt, held.order_id)
        with pytest.raises(OrderNotFound):
            replan_order(rt, "999-0000000-0000000")
        rt.ledger.hold(held.order_id, HoldReason.LABEL_UNCERTAIN.value, "checking")
        with pytest.raises(NotAllowed, match="no label claim to give up"):
            replan_order(rt, held.order_id)
        rt.ledger.release(held.order_id)
        with pytest.raises(NotAllowed, match="not HELD"):
            replan_order(rt, held.order_id)
    finally:
        rt.close()


class Slow:
    """A create call that stays in flight until ``go`` is set."""

    def __init__(self, carrier):
        self.carrier, self.entered, self.go = carrier, threading.Event(), threading.Event()

    def create_shipment(self, request):
        self.entered.set()
        assert self.go.wait(30)
        return self.carrier.create_shipment(request)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def test_a_manual_hold_on_a_step_in_flight_cannot_give_its_claim_up(world, monkeypatch):
    """An operator who holds an order whose create call is in flight, then replans it from the
    CLI (another process), must not free its reference while the call buys the label: the
    daemon's order lock turns the replan away, and where that lock does not reach (a store
    without locks across processes), the hold's own reason does."""
    w = world({"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]},
               "selection": {"overrides": []}})
    daemon, cli_process = w.runtime(), w.runtime()
    slow = None
    try:
        ingest_all(daemon)
        for record in daemon.ledger.orders([OrderState.NEW]):
            step(daemon, record)
        order_id = next(r.order_id for r in daemon.ledger.orders([OrderState.PLANNED])
                        if r.order.status is FulfillmentStatus.UNSHIPPED)
        slow = daemon.carriers["yunexpress"] = Slow(daemon.carriers["yunexpress"])
        driving = threading.Thread(target=drive, args=(daemon, order_id, lambda: False, 1))
        driving.start()
        assert slow.entered.wait(30)
        for reason in CLAIM_GIVEN_UP_BY_RELEASE:  # the reasons that allow a replan: the daemon's alone
            with pytest.raises(NotAllowed, match="an operator cannot hold an order for"):
                hold_order(cli_process.ledger, order_id, reason, "carrier down, move it")
        hold_order(cli_process.ledger, order_id, HoldReason.MANUAL.value, "looking at it")
        if KEY_LOCKS:  # the daemon's order lock reaches the other process, which waits for it
            with pytest.raises(NotAllowed, match="busy"):
                replan_order(cli_process, order_id, wait=0.3)
        monkeypatch.setattr(cli_process.ledger, "exclusive", SqlLedger.exclusive.__get__(cli_process.ledger))
        with pytest.raises(NotAllowed, match="held manual"):
            replan_order(cli_process, order_id)
        slow.go.set()
        driving.join(30)
        (package,) = daemon.ledger.packages(order_id)
        assert package.state is PackageState.LABEL_CREATED  # the label bought is on record
    finally:
        if slow is not None:
            slow.go.set()
        daemon.close()
        cli_process.close()
    assert len(w.state("yunexpress")["labels"]) == 1


def test_an_order_held_before_its_claim_and_cancelled_ends_without_asking_the_carrier(world, monkeypatch):
    """A label request that cannot be built holds the order before the claim: nothing can exist
    at the carrier, so Amazon's cancellation ends the order by itself."""
    w, rt, _held, _package = refused_once_planned(world, monkeypatch, lost=0)
    rt.close()
    rt = w.runtime()
    try:
        order_id = next(r.order_id for r in rt.ledger.orders([OrderState.PLANNED])
                        if r.order.status is FulfillmentStatus.UNSHIPPED)

        def sku_gone(*args):
            raise KeyError("SKU-GONE")

        monkeypatch.setattr("connector.engine.buy.build_request", sku_gone)
        step(rt, rt.ledger.get_order(order_id))
        held = rt.ledger.get_order(order_id)
        assert held.hold_reason == HoldReason.UNKNOWN_SKU.value and held.held_from is OrderState.PLANNED
        assert [p.state for p in rt.ledger.packages(order_id)] == [PackageState.PLANNED]
        amazon_cancels(w, order_id)
        ingest_all(rt)  # the cancellation releases it
        rt.carriers["yunexpress"] = None  # and nothing more is asked of the carrier
        step(rt, rt.ledger.get_order(order_id))
        assert rt.ledger.get_order(order_id).state is OrderState.CANCELLED
    finally:
        rt.close()


def test_cancelled_while_claimed_with_nothing_found_a_person_checks(world, monkeypatch):
    """The lookup shows nothing, but the lost call bought a label: the order is held, not ended
    as "nothing bought" with a paid label left unvoided; polls of the cancelled order do not
    release it again; a replan ends it cancelled."""
    w, rt, held, package = refused_once_planned(world, monkeypatch, lost=1, cancelled=True)
    try:
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.LABEL_UNCERTAIN.value
        assert "Amazon cancelled the order" in held.hold_message and "ends cancelled" in held.hold_message
        assert package.state is PackageState.LABEL_CLAIMED
        ingest_all(rt)
        assert rt.ledger.get_order(held.order_id).state is OrderState.HELD
        replan_order(rt, held.order_id)
        step(rt, rt.ledger.get_order(held.order_id))
        assert rt.ledger.get_order(held.order_id).state is OrderState.CANCELLED
        assert len(rt.ledger.packages(held.order_id)) == 1
    finally:
        rt.close()


def test_a_claim_whose_carrier_is_gone_is_not_released_by_each_poll_once_cancelled(world, monkeypatch):
    """Released, it would only be held again (its lookup needs the carrier), an order.released
    and an order.held for the ERP each time a poll returns the order."""
    w, rt, held, _package = refused_once_planned(world, monkeypatch, lost=99)  # a claim, deferred
    try:
        assert rt.ledger.get_order(held.order_id).state is OrderState.LABEL_CLAIMED
        del rt.carriers["yunexpress"]
        step(rt, rt.ledger.get_order(held.order_id))
        assert rt.ledger.get_order(held.order_id).hold_reason == HoldReason.CARRIER_UNAVAILABLE.value
        amazon_cancels(w, held.order_id)
        before = len(rt.ledger.events(order_id=held.order_id, limit=1000))
        ingest_all(rt)
        ingest_all(rt)
        assert rt.ledger.get_order(held.order_id).state is OrderState.HELD
        assert len(rt.ledger.events(order_id=held.order_id, limit=1000)) == before
    finally:
        rt.close()


class NotSentOnce:
    """The first create never reaches the carrier (connection refused); later ones go through.
    ``bought_silently``: that first create does buy the label, and its answer is lost."""

    def __init__(self, carrier, bought_silently: bool = False):
        self.carrier, self.bought_silently, self.creates = carrier, bought_silently, 0

    def create_shipment(self, request):
        self.creates += 1
        if self.creates == 1:
            if self.bought_silently:
                self.carrier.create_shipment(request)
            raise TransientCarrierError("connection refused")
        return self.carrier.create_shipment(request)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def claimed_then(world, monkeypatch, change, bought_silently: bool = False, wrapping=None):
    """One order planned with YunExpress, its first create lost (a claim, deferred), then Amazon's
    data for it changed by ``change`` (runtime, Order -> Order), as a poll would store it, and the order
    stepped again (``wrapping``: the carrier wrapper's class, NotSentOnce by default). Returns the
    world, the runtime (the caller closes it), the order id, the carrier wrapper."""
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=1)
    wrapper = (wrapping or NotSentOnce)(rt.carriers["yunexpress"], bought_silently)
    rt.carriers["yunexpress"] = wrapper
    step(rt, rt.ledger.get_order(order_id))
    assert rt.ledger.get_order(order_id).state is OrderState.LABEL_CLAIMED
    rt.ledger.upsert_order(change(rt, rt.ledger.get_order(order_id).order))
    step(rt, rt.ledger.get_order(order_id))
    return w, rt, order_id, wrapper


def shipped(_rt, order):
    return dataclasses.replace(order, status=FulfillmentStatus.SHIPPED)


def cancel_requested(_rt, order):
    return dataclasses.replace(order, buyer_cancel_requested=True)


def test_shipped_elsewhere_while_claimed_buys_nothing_and_a_person_checks(world, monkeypatch):
    w, rt, order_id, wrapper = claimed_then(world, monkeypatch, shipped)
    try:
        held = rt.ledger.get_order(order_id)
        assert wrapper.creates == 1 and len(w.state("yunexpress")["labels"]) == 0
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.LABEL_UNCERTAIN.value
        assert "shipped outside this daemon" in held.hold_message and "--replan" in held.hold_message
        assert rt.ledger.open_package(order_id).state is PackageState.LABEL_CLAIMED
    finally:
        rt.close()


def test_shipped_elsewhere_while_claimed_keeps_a_label_found_for_a_person_to_void(world, monkeypatch):
    w, rt, order_id, wrapper = claimed_then(world, monkeypatch, shipped, bought_silently=True)
    try:
        held = rt.ledger.get_order(order_id)
        assert wrapper.creates == 1 and len(w.state("yunexpress")["labels"]) == 1
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.SHIPPED_ELSEWHERE.value
        assert f"orders void {order_id}" in held.hold_message
        package = rt.ledger.open_package(order_id)
        assert package.state is PackageState.LABEL_CREATED and package.carrier_shipment_id
    finally:
        rt.close()


def test_a_cancel_request_while_claimed_buys_nothing_until_released(world, monkeypatch):
    w, rt, order_id, wrapper = claimed_then(world, monkeypatch, cancel_requested)
    try:
        held = rt.ledger.get_order(order_id)
        assert wrapper.creates == 1 and len(w.state("yunexpress")["labels"]) == 0
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.BUYER_CANCEL_REQUESTED.value
        assert "while the label was being bought" in held.hold_message
        rt.ledger.release(order_id)  # ship anyway
        drive(rt, order_id, lambda: False)
        assert wrapper.creates == 2 and len(w.state("yunexpress")["labels"]) == 1
        assert rt.ledger.get_order(order_id).state in (OrderState.CONFIRMED, OrderState.VERIFIED)
    finally:
        rt.close()


def test_a_label_that_confirms_itself_may_show_the_order_shipped_while_claimed(world, monkeypatch):
    """Such a label marks the order shipped when it is bought: that is no reason to stop."""
    def self_confirming_and_shipped(rt, order):
        rt.carrier_specs["yunexpress"] = dataclasses.replace(rt.carrier_specs["yunexpress"],
                                                             confirms_shipment=True)
        return shipped(rt, order)

    w, rt, order_id, wrapper = claimed_then(world, monkeypatch, self_confirming_and_shipped)
    try:
        assert wrapper.creates == 2 and len(w.state("yunexpress")["labels"]) == 1
        assert rt.ledger.open_package(order_id).state is not PackageState.LABEL_CLAIMED
    finally:
        rt.close()


def test_a_label_found_cancelled_at_the_carrier_is_not_taken_for_the_one_bought(world, monkeypatch):
    """The first call bought a label and lost its answer; someone cancelled that label at the
    carrier before the retry looked it up: it must not be recorded and confirmed on Amazon."""
    def unchanged(_rt, order):
        return order

    class CancelledThere(NotSentOnce):
        def find_by_reference(self, reference):
            found = self.carrier.find_by_reference(reference)
            return dataclasses.replace(found, status="cancelled") if found else None

    w, rt, order_id, wrapper = claimed_then(world, monkeypatch, unchanged, bought_silently=True,
                                            wrapping=CancelledThere)
    try:
        held = rt.ledger.get_order(order_id)
        assert held.state is OrderState.HELD and held.hold_reason == HoldReason.LABEL_UNCERTAIN.value
        assert "as cancelled" in held.hold_message and "--replan" in held.hold_message
        assert rt.ledger.open_package(order_id).state is PackageState.LABEL_CLAIMED
        assert wrapper.creates == 1
    finally:
        rt.close()


class LookupFails:
    """The first create buys the label and loses its answer; every lookup by reference then raises
    ``error``: a refusal of the lookup itself (a wrong path, an unknown user) or a transient fault."""

    def __init__(self, carrier, error: Exception):
        self.carrier, self.error, self.creates, self.lookups = carrier, error, 0, 0

    def create_shipment(self, request):
        self.creates += 1
        self.carrier.create_shipment(request)
        raise TransientCarrierError("read timed out")

    def find_by_reference(self, reference):
        self.lookups += 1
        raise self.error

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def refused_lookup(world, monkeypatch, wrapper, refusal: str | Exception):
    """One step of a planned YunExpress order whose carrier, wrapped in ``wrapper``, refuses the
    lookup with ``refusal`` (a carrier's words, or what the plugin raises; its first argument gets
    the order's street appended, as a plugin may quote it): the world, the order after it and its
    newest package."""
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=3)
    error = PermanentCarrierError(refusal) if isinstance(refusal, str) else refusal
    if not isinstance(refusal, str):
        error.args = (f"{error.args[0]} near {rt.ledger.get_order(order_id).order.ship_to.line1}",)
    failing = rt.carriers["yunexpress"] = wrapper(rt.carriers["yunexpress"], error)
    try:
        step(rt, rt.ledger.get_order(order_id))
        held, package = rt.ledger.get_order(order_id), rt.ledger.packages(order_id)[-1]
    finally:
        rt.close()
    assert (failing.creates, failing.lookups) == (1, 1)
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.LABEL_UNCERTAIN.value
    assert package.state == PackageState.LABEL_CLAIMED
    return w, held, package


def test_a_refused_lookup_after_a_lost_answer_buys_nothing_and_holds(world, monkeypatch):
    """A lookup that did not look is no "no label": buying again would buy a second one."""
    w, held, package = refused_lookup(world, monkeypatch, LookupFails,
                                      "YunExpress GetOrder refused: 接口不存在 (Code 1004)")
    assert f"refused the lookup of label reference {package.idempotency_key}" in held.hold_message
    assert "接口不存在" in held.hold_message and "--replan" in held.hold_message
    assert len(w.state("yunexpress")["labels"]) == 1  # the lost call's label, and no second one


@pytest.mark.parametrize("error", [NotSupported("4px: find_by_reference"), KeyError("Item")],
                         ids=["no-lookup", "plugin-bug"])
def test_a_lookup_the_plugin_lacks_or_breaks_on_buys_nothing_and_holds_at_once(world, monkeypatch, error,
                                                                               caplog):
    """A third-party plugin without find_by_reference (or one that raises a bug of its own): before,
    each look counted an "internal error" until the retries ran out, and ``retries_exhausted`` may
    be released with --replan, which bought a second label. Now the claim is held for a person at
    once, with the reference to check."""
    w, held, package = refused_lookup(world, monkeypatch, LookupFails, error)
    street = held.order.ship_to.line1  # refused_lookup made the plugin quote it
    assert street in str(error) and street not in caplog.text and street not in held.hold_message
    assert "find_by_reference failed" in caplog.text and "Traceback" in caplog.text
    assert (f"the yunexpress plugin could not look up label reference {package.idempotency_key} "
            f"({type(error).__name__}: ") in held.hold_message
    assert "a label may exist under" in held.hold_message and "--replan" in held.hold_message
    assert len(w.state("yunexpress")["labels"]) == 1


def test_retries_run_out_on_a_claim_says_a_label_may_exist(world, monkeypatch):
    """Whatever made a claimed order's retries run out, its hold says a label may have been bought,
    before anyone releases it with --replan."""
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=1)
    rt.carriers["yunexpress"] = LookupFails(rt.carriers["yunexpress"], TransientCarrierError("HTTP 503"))
    try:
        for _ in range(rt.engine.max_attempts):
            record = rt.ledger.get_order(order_id)
            if record.state is OrderState.HELD:
                break
            step(rt, record)
        held = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    assert held.hold_reason == HoldReason.RETRIES_EXHAUSTED.value
    assert "a label may have been bought under its claim" in held.hold_message


class TakenThenLookupFails(LookupFails):
    """The carrier says the reference is taken (a duplicate), then refuses to look it up."""

    def create_shipment(self, request):
        self.creates += 1
        raise DuplicateReferenceError("reference exists")


def test_a_refused_lookup_of_a_taken_reference_holds_naming_the_lookup(world, monkeypatch):
    """Before, the refusal escaped the step and was retried as an "internal error" until the
    retries ran out; it buys nothing either way, but a person must hear what to check."""
    w, held, package = refused_lookup(world, monkeypatch, TakenThenLookupFails,
                                      "YunExpress GetOrder refused: 用户不存在")
    assert (f"refused the lookup of label reference {package.idempotency_key} (YunExpress GetOrder refused: "
            "用户不存在) after it said the reference was taken") in held.hold_message
    assert w.state("yunexpress")["labels"] == {}


def test_a_failing_lookup_after_a_lost_answer_buys_nothing_and_asks_again_later(world, monkeypatch):
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=3)
    failing = rt.carriers["yunexpress"] = LookupFails(rt.carriers["yunexpress"],
                                                      TransientCarrierError("HTTP 503"))
    try:
        for _ in range(2):
            step(rt, rt.ledger.get_order(order_id))
        record, package = rt.ledger.get_order(order_id), rt.ledger.packages(order_id)[-1]
    finally:
        rt.close()
    assert failing.creates == 1 and failing.lookups == 5  # 2 tries in the first step, 3 in the next
    assert record.state == OrderState.LABEL_CLAIMED and package.state == PackageState.LABEL_CLAIMED
    assert record.attempts == 2 and record.next_attempt_at is not None  # deferred: asked again later
    assert len(w.state("yunexpress")["labels"]) == 1


class AnswerLost:
    """Every create fails before the carrier buys anything (the answer lost all the same); the
    lookup by reference is the carrier's own. ``trusted``: the carrier's ``trusts_empty_lookup``."""

    def __init__(self, carrier, trusted: bool):
        self.carrier, self.trusts_empty_lookup, self.creates = carrier, trusted, 0

    def create_shipment(self, request):
        self.creates += 1
        if self.creates == 1:
            raise TransientCarrierError("read timed out")
        return self.carrier.create_shipment(request)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


@pytest.mark.parametrize("trusted", [True, False])
def test_an_empty_lookup_after_a_lost_answer_buys_again_only_where_the_lookup_is_trusted(
        world, monkeypatch, trusted):
    """``empty_lookup: hold`` (``trusts_empty_lookup`` False): a carrier whose lookup may not show a
    label just bought. Its empty lookup holds the order for a person instead of buying again."""
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=3)
    carrier = rt.carriers["yunexpress"] = AnswerLost(rt.carriers["yunexpress"], trusted)
    try:
        step(rt, rt.ledger.get_order(order_id))
        record, package = rt.ledger.get_order(order_id), rt.ledger.packages(order_id)[-1]
        if not trusted:
            rt.ledger.release(order_id)  # a release looks again, and holds again on nothing found
            step(rt, rt.ledger.get_order(order_id))
            again = rt.ledger.get_order(order_id)
    finally:
        rt.close()
    if trusted:
        assert carrier.creates == 2 and package.state is PackageState.LABEL_CREATED
        assert len(w.state("yunexpress")["labels"]) == 1
    else:
        assert carrier.creates == 1 and package.state is PackageState.LABEL_CLAIMED
        assert record.state is OrderState.HELD and record.hold_reason == HoldReason.LABEL_UNCERTAIN.value
        assert "carriers.yunexpress.empty_lookup is 'hold'" in record.hold_message
        assert "--replan" in record.hold_message and package.idempotency_key in record.hold_message
        assert again.hold_reason == HoldReason.LABEL_UNCERTAIN.value and carrier.creates == 1
        assert len(w.state("yunexpress")["labels"]) == 0


class LostThenLocked:
    """The first create buys its label and loses the answer; then the carrier refuses the
    credentials (HTTP 401) to every lookup until ``locked`` is set False."""

    def __init__(self, carrier):
        self.carrier, self.locked, self.creates = carrier, True, 0

    def create_shipment(self, request):
        self.creates += 1
        self.carrier.create_shipment(request)
        raise TransientCarrierError("read timed out")

    def find_by_reference(self, reference):
        if self.locked:
            raise CredentialsRefusedError("YunExpress rejected the credentials: HTTP 401 on GetOrder")
        return self.carrier.find_by_reference(reference)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def test_credentials_refused_after_a_lost_answer_keep_the_claim_and_wait_to_look_it_up(world, monkeypatch):
    """The lost call may have bought the label: the claim is never given back, and the order waits
    for the credentials (one alert, no hold) to look the reference up before anything is bought."""
    w, rt, order_id = planned_with_yunexpress(world, monkeypatch, carrier_attempts=2)
    locked = rt.carriers["yunexpress"] = LostThenLocked(rt.carriers["yunexpress"])
    try:
        for _ in range(3):
            assert step(rt, rt.ledger.get_order(order_id)) is Outcome.DEFER
        waiting, (package,) = rt.ledger.get_order(order_id), rt.ledger.packages(order_id)
        assert waiting.state is OrderState.LABEL_CLAIMED and waiting.attempts == 0
        assert package.state is PackageState.LABEL_CLAIMED and locked.creates == 1
        assert "label claim kept, to be looked up first" in rt.ledger.last_error(order_id)
        assert [a.subject for a in rt.ledger.alerts() if a.kind == "carrier_credentials_refused"] == \
            ["yunexpress"]
        locked.locked = False  # fixed: the lookup finds the label the lost call bought
        assert step(rt, rt.ledger.get_order(order_id)) is Outcome.PROGRESS
        assert rt.ledger.packages(order_id)[0].state is PackageState.LABEL_CREATED and locked.creates == 1
        assert [a for a in rt.ledger.alerts() if a.kind == "carrier_credentials_refused"] == []
    finally:
        rt.close()
    assert len(w.state("yunexpress")["labels"]) == 1
