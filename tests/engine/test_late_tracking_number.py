"""A carrier that assigns the tracking number after the label (YunExpress's TrackType 2): the order
waits for it without spending its failure budget, is asked again less often as time goes by, and
is held (``tracking_number_late``) only once ``engine.tracking_number_wait_hours`` have passed."""
from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from connector.engine import outcome
from connector.engine.loop import Engine, step
from connector.engine.outcome import Outcome, wait
from connector.ledger import OrderState, PackageState

from ..e2e.helpers import SEEDED_HOLDS, assert_exactly_once, ingest_all, run_cli

WAITING = "yunexpress has not assigned a tracking number yet"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


class Ledger:
    def __init__(self) -> None:
        self.snoozed: list[tuple[datetime, str | None]] = []

    def snooze(self, order_id, until, *, note=None):
        self.snoozed.append((until, note))


def fake_rt(ledger: Ledger):
    engine = SimpleNamespace(retry_delay_seconds=30, retry_delay_max_seconds=900, max_attempts=2)
    return SimpleNamespace(engine=engine, ledger=ledger)


@pytest.mark.parametrize("waited_s, low, high", [(0, 15, 30), (90, 60, 120), (3000, 450, 900)])
def test_the_looks_thin_out_with_the_time_waited_and_count_no_failure(monkeypatch, waited_s, low, high):
    now = T0 + timedelta(seconds=waited_s)
    monkeypatch.setattr(outcome, "utcnow", lambda: now)
    ledger = Ledger()
    record = SimpleNamespace(order_id="o1", attempts=7)  # far past max_attempts: it does not apply
    result = wait(fake_rt(ledger), record, "no number yet", since=T0, patience=timedelta(hours=1))
    assert result is Outcome.DEFER
    [(until, note)] = ledger.snoozed
    assert low <= (until - now).total_seconds() <= high  # retry delay + time waited, jittered, capped
    assert note == "no number yet"


def test_past_its_patience_the_caller_is_told_to_hold(monkeypatch):
    monkeypatch.setattr(outcome, "utcnow", lambda: T0 + timedelta(hours=1))
    ledger = Ledger()
    record = SimpleNamespace(order_id="o1", attempts=0)
    assert wait(fake_rt(ledger), record, "no number yet", since=T0, patience=timedelta(hours=1)) is None
    assert ledger.snoozed == []


def never_numbered(world, *, wait_hours: float = 24, polls: int = 10**6, settings: dict | None = None):
    """Every YunExpress label gets its number only after ``polls`` looks (``settings``: more of
    ``carriers.yunexpress``)."""
    return world({"sandbox": {"orders": 6, "emulators": {"yunexpress": {"track_type2_rate": 1.0,
                                                                      "tracking_polls": polls}}},
                  "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []},
                  "engine": {"max_attempts": 3, "tracking_number_wait_hours": wait_hours},
                  "carriers": {"yunexpress": settings or {}}})


def waiting_for_number(rt) -> list:
    return [r for r in rt.ledger.orders([OrderState.LABEL_CLAIMED])
            if (p := rt.ledger.open_package(r.order_id)) is not None and p.state is PackageState.LABEL_CREATED
            and not p.tracking_number]


@pytest.mark.e2e
def test_an_order_waits_for_its_number_past_max_attempts_without_being_held(world):
    w = never_numbered(world)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_pass()
        waiting = waiting_for_number(rt)
        assert waiting, rt.ledger.counts()
        for _ in range(6):  # twice engine.max_attempts looks, each answered "generating"
            engine.run_pass(ingest=False)
        still = {r.order_id: r for r in waiting_for_number(rt)}
        assert set(still) == {r.order_id for r in waiting}  # none held, none lost
        for record in still.values():
            assert record.attempts == 0  # waiting is not failing
            assert rt.ledger.last_error(record.order_id) == WAITING
            assert record.next_attempt_at is not None
        assert not [r for r in rt.ledger.orders([OrderState.HELD])
                    if r.hold_reason in ("retries_exhausted", "tracking_number_late")]
    finally:
        rt.close()
    shown = json.loads(run_cli(w, "orders", "show", "--json", waiting[0].order_id).stdout)
    assert shown["state"] == "LABEL_CLAIMED" and shown["attempts"] == 0
    assert shown["last_error"] == WAITING


@pytest.mark.e2e
def test_held_once_its_patience_is_over_and_released_it_ships_when_the_number_comes(world):
    w = never_numbered(world, wait_hours=1 / 3600, polls=8)  # one second's patience
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_pass()
        waiting = [r.order_id for r in waiting_for_number(rt)]
        assert waiting
        time.sleep(1.1)
        engine.run_pass(ingest=False)
        for order_id in waiting:
            record = rt.ledger.get_order(order_id)
            package = rt.ledger.open_package(order_id)
            assert record.state is OrderState.HELD and record.hold_reason == "tracking_number_late"
            assert package.idempotency_key in record.hold_message and "yunexpress" in record.hold_message
            assert record.order.ship_to.name not in record.hold_message  # no buyer data in messages
        for _ in range(10):  # released, each is asked once more, until the number comes
            for order_id in waiting:
                if rt.ledger.get_order(order_id).state is OrderState.HELD:
                    rt.ledger.release(order_id)
            engine.run_pass(ingest=False)
            if not set(waiting) & {r.order_id for r in rt.ledger.orders([OrderState.HELD])}:
                break
        for order_id in waiting:
            assert rt.ledger.get_order(order_id).state in (OrderState.CONFIRMED, OrderState.VERIFIED)
    finally:
        rt.close()
    assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})  # YunExpress alone


@pytest.mark.e2e
def test_a_void_refused_before_the_number_came_holds_the_order_and_keeps_its_label(world):
    """A label still waiting for its number is scanned, then voided: the carrier refuses, and the
    package goes back to LABEL_CREATED (its order to LABEL_CLAIMED, the order state of a label
    bought and its number due), the order held ``void_refused`` -- not stuck in VOIDING."""
    import requests

    w = never_numbered(world)
    rt = w.runtime()
    try:
        Engine(rt).run_pass()
        record = waiting_for_number(rt)[0]
    finally:
        rt.close()
    server = w.sandbox.servers["yunexpress"]
    scanned = requests.post(server.url + "/_sandbox/clock", json={"advance_seconds": 2 * 86400}, timeout=10)
    scanned.raise_for_status()
    result = run_cli(w, "orders", "void", record.order_id)
    assert result.returncode == 1 and "void_refused" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    rt = w.runtime()
    try:
        held = rt.ledger.get_order(record.order_id)
        assert held.state is OrderState.HELD and held.hold_reason == "void_refused"
        assert held.held_from is OrderState.LABEL_CLAIMED
        assert rt.ledger.open_package(record.order_id).state is PackageState.LABEL_CREATED
        types = [e.type for e in rt.ledger.events(order_id=record.order_id)]
        assert types.count("order.held") == 1 and "package.voided" not in types
    finally:
        rt.close()


@pytest.mark.e2e
def test_a_label_that_cannot_be_written_waits_for_the_disk_without_spending_retries(world, monkeypatch):
    """A full disk is the machine's problem, not each order's: the orders wait (no attempt counted,
    orders show says why) past max_attempts, then go on once the file can be written -- each
    label bought once."""
    from connector.engine import buy

    w = world({"sandbox": {"orders": 6}, "engine": {"max_attempts": 2}})
    real_write = buy.write_atomically

    def disk_full(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(buy, "write_atomically", disk_full)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        for _ in range(4):  # twice max_attempts
            engine.run_pass()
            time.sleep(0.3)  # the sandbox's retry delay
        stuck = rt.ledger.orders([OrderState.LABEL_CLAIMED])
        held = [r.hold_reason for r in rt.ledger.orders([OrderState.HELD])
                if r.hold_reason not in SEEDED_HOLDS | {"no_eligible_service"}]
        assert stuck and held == [] and all(r.attempts == 0 for r in stuck)
        assert "No space left on device" in rt.ledger.last_error(stuck[0].order_id)
        monkeypatch.setattr(buy, "write_atomically", real_write)  # space freed
        deadline = time.monotonic() + 30
        while rt.ledger.orders([OrderState.LABEL_CLAIMED]) and time.monotonic() < deadline:
            engine.run_pass()
            time.sleep(0.3)
        assert not rt.ledger.orders([OrderState.LABEL_CLAIMED])
    finally:
        rt.close()
    assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})


class LastMileNumber:
    """YunExpress assigning a late label the last-mile carrier's number, as its TrackingNumber (the
    captured GetOrder answer has "D1234567"), not a "YT" waybill."""

    def __init__(self, carrier):
        self.carrier = carrier

    def find_by_reference(self, reference):
        found = self.carrier.find_by_reference(reference)
        return None if found is None else dataclasses.replace(found, tracking_number="D1234567")

    def __getattr__(self, name):
        return getattr(self.carrier, name)


@pytest.mark.e2e
@pytest.mark.parametrize(("settings", "held"), [
    ({}, False),  # tracking_number_source TrackingNumber: a last-mile number is what it gives
    ({"tracking_number_pattern": r"^YT\d{16}$"}, True),  # an operator who knows Amazon wants YT
])
def test_a_last_mile_tracking_number_is_checked_by_the_accounts_own_pattern(world, settings, held):
    """The label is paid: a number of the kind the configured source gives must not hold it
    ``invalid_tracking_number``; one the account's pattern refuses is held before Amazon refuses it."""
    w = never_numbered(world, settings=settings)
    rt = w.runtime()
    try:
        rt.carriers["yunexpress"] = LastMileNumber(rt.carriers["yunexpress"])
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            step(rt, record)  # planned
        order_ids = [r.order_id for r in rt.ledger.orders([OrderState.PLANNED])]
        assert order_ids, rt.ledger.counts()
        for order_id in order_ids:  # buy (no number yet), then fetch the number and the label
            for _ in range(2):
                step(rt, rt.ledger.get_order(order_id))
        records = [rt.ledger.get_order(order_id) for order_id in order_ids]
        packages = [rt.ledger.open_package(order_id) for order_id in order_ids]
    finally:
        rt.close()
    assert all(p.tracking_number == "D1234567" for p in packages)
    if held:
        assert {r.hold_reason for r in records} == {"invalid_tracking_number"}
        assert all("D1234567" in r.hold_message for r in records)
    else:
        assert not [r.hold_reason for r in records if r.state is OrderState.HELD]
        assert all(p.state is PackageState.LABELED and p.label_path for p in packages)
