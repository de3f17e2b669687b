"""One order is driven by one thread at a time in a process, and the lock map does not grow with
every order the daemon has ever seen; a closed runtime starts no more quote threads."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from connector.ledger.sqlite import KEY_LOCKS

pytestmark = pytest.mark.e2e


def test_one_thread_drives_an_order_and_finished_locks_are_forgotten(world):
    rt = world({"sandbox": {"orders": 1}}).runtime()
    got: list[bool] = []

    def second() -> None:
        with rt.driving("111-0000000-0000001") as mine:
            got.append(mine)

    try:
        with rt.driving("111-0000000-0000001") as first:
            other = threading.Thread(target=second)
            other.start()
            other.join()
        assert first and got == [False]  # the second thread was turned away, not let in
        with rt.driving("111-0000000-0000001", wait=1) as again:
            assert again  # free once the first let go
        assert rt._locks == {}
    finally:
        rt.close()


@pytest.mark.skipif(not KEY_LOCKS, reason="SQLite's key locks are Linux's (64-bit)")
def test_a_wait_for_an_order_another_process_drives_lasts_until_it_lets_go(world):
    """A command beside the daemon (``orders void``, its own process and runtime) is turned away
    while the daemon drives the order, and one that may wait gets it once the daemon lets go."""
    w = world({"sandbox": {"orders": 1}})
    daemon, command = w.runtime(), w.runtime()
    holding, let_go = threading.Event(), threading.Event()

    def daemon_step() -> None:
        with daemon.driving("111-0000000-0000001") as mine:
            assert mine
            holding.set()
            let_go.wait(10)
            time.sleep(0.3)

    step = threading.Thread(target=daemon_step)
    try:
        step.start()
        assert holding.wait(10)
        with command.driving("111-0000000-0000001", wait=0.2) as mine:
            assert not mine
        let_go.set()
        started = time.monotonic()
        with command.driving("111-0000000-0000001", wait=10) as mine:
            assert mine and time.monotonic() - started >= 0.2
    finally:
        let_go.set()
        step.join(10)
        daemon.close()
        command.close()


def test_a_closed_runtime_starts_no_quote_threads(world):
    rt = world({"sandbox": {"orders": 1}}).runtime()
    pool = rt.quote_pool("yunexpress")
    assert rt.quote_pool("yunexpress") is pool  # one pool per carrier, kept
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.quote_pool("yunexpress")  # an order thread still quoting at close() gets no new pool
    assert rt._quote_pools == {}


def test_a_step_holding_an_order_ended_meanwhile_ends_its_drive_quietly(world, monkeypatch, caplog):
    """An operator's void in another process ends the order while the daemon's step decides to hold
    it: the hold finds it finished, and the drive stops with nothing done -- no traceback logged as
    an internal error, no failure counted against the order."""
    from connector.engine import loop
    from connector.engine.outcome import Outcome, hold
    from connector.holds import HoldReason
    from connector.ledger import OrderState

    from ..e2e.helpers import ingest_all

    rt = world({"sandbox": {"orders": 3}}).runtime()
    try:
        ingest_all(rt)
        order_id = rt.ledger.orders([OrderState.NEW])[0].order_id

        def ended_meanwhile(rt, record):
            rt.ledger.set_order_state(record.order_id, [OrderState.NEW], OrderState.CANCELLED)  # the race
            return hold(rt, record.order_id, HoldReason.UNKNOWN_SKU, "SKU X is not in the catalog")

        monkeypatch.setattr(loop, "plan", ended_meanwhile)
        with caplog.at_level("INFO", logger="connector"):
            assert loop.drive(rt, order_id, lambda: False) is Outcome.REST
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.CANCELLED
        assert record.attempts == 0 and record.next_attempt_at is None  # no failure counted
        assert not [r for r in caplog.records if r.exc_info or "unexpected error" in r.getMessage()]
        assert any("not held (unknown_sku: SKU X is not in the catalog)" in r.getMessage()
                   for r in caplog.records)  # a line says what was not recorded, and why
    finally:
        rt.close()


def test_an_unexpected_error_quoting_the_address_is_logged_and_retried_without_it(world, monkeypatch, caplog):
    """A plugin's exception may quote the buyer's address: the traceback in the log and the
    retry's error keep the rest (the exception's type, where it came from) but not the address."""
    from connector.engine import loop
    from connector.ledger import OrderState

    from ..e2e.helpers import ingest_all

    rt = world({"sandbox": {"orders": 6}}).runtime()
    try:
        ingest_all(rt)
        record = next(r for r in rt.ledger.orders([OrderState.NEW])
                      if r.order.ship_to and r.order.ship_to.postal_code and r.order.ship_to.line1)
        address = record.order.ship_to

        def plugin_bug(rt, record):
            raise RuntimeError(f"cannot geocode {address.line1}, {address.postal_code}")

        monkeypatch.setattr(loop, "plan", plugin_bug)
        with caplog.at_level("INFO", logger="connector"):
            loop.drive(rt, record.order_id, lambda: False)
        error = rt.ledger.get_order(record.order_id)
        assert "unexpected error" in caplog.text and "RuntimeError: cannot geocode ***, ***" in caplog.text
        assert "in plugin_bug" in caplog.text  # the traceback is still there
        assert address.line1 not in caplog.text and address.postal_code not in caplog.text
        assert error.attempts == 1
        deferred = [r.getMessage() for r in caplog.records if "deferred" in r.getMessage()]
        assert deferred and all(address.postal_code not in m for m in deferred)
    finally:
        rt.close()


def test_a_lost_connection_to_the_ledgers_server_is_not_the_orders_fault(world, monkeypatch, caplog):
    """A step whose ledger connection the server dropped (a restart, a failover): no attempt is
    counted and no "unexpected error" logged; the drive ends with the error for the dispatcher,
    which logs the ledger's loss once and lets the order rest (engine/scheduler.py)."""
    from connector.engine import loop
    from connector.ledger import OrderState

    from ..e2e.helpers import ingest_all

    class ServerGone(Exception):
        pass

    rt = world({"sandbox": {"orders": 4}}).runtime()
    try:
        ingest_all(rt)
        order_id = rt.ledger.orders([OrderState.NEW])[0].order_id
        monkeypatch.setattr(rt.ledger, "lost_connection", lambda exc: isinstance(exc, ServerGone))

        def dropped(rt, record):
            raise ServerGone("terminating connection due to administrator command")

        monkeypatch.setattr(loop, "plan", dropped)
        with caplog.at_level("INFO", logger="connector"), pytest.raises(ServerGone):
            loop.drive(rt, order_id, lambda: False)
        after = rt.ledger.get_order(order_id)
        assert (after.state, after.attempts, after.next_attempt_at) == (OrderState.NEW, 0, None)
        assert "unexpected error" not in caplog.text
    finally:
        rt.close()


def test_a_drive_failing_outright_ends_neither_a_pass_nor_the_other_orders(world, monkeypatch, caplog):
    """``run --once``: one order's drive failing outright (its ledger connection dropped mid-step,
    raised for the dispatcher) came out of the pass, cancelled the orders not yet driven and ended
    the command with a traceback. The pass drives the others, logs that order by its id and says
    so in its result, and ``run --once`` exits 1."""
    from connector.engine import loop
    from connector.ledger import OrderState

    from ..e2e.helpers import ingest_all

    class ServerGone(Exception):
        pass

    rt = world({"sandbox": {"orders": 6}, "engine": {"workers": 1}}).runtime()
    try:
        ingest_all(rt)
        first, *others = [k.order_id for k in rt.ledger.schedule([OrderState.NEW])]
        monkeypatch.setattr(rt.ledger, "lost_connection", lambda exc: isinstance(exc, ServerGone))
        real_plan = loop.plan

        def plan(rt, record):
            if record.order_id == first:  # driven first: earliest ship-by
                raise ServerGone("terminating connection due to administrator command")
            return real_plan(rt, record)

        monkeypatch.setattr(loop, "plan", plan)
        result = loop.Engine(rt).run_pass(ingest=False)
        assert result.failed == 1
        assert rt.ledger.get_order(first).state is OrderState.NEW  # tried again at the next pass
        assert all(rt.ledger.get_order(o).state is not OrderState.NEW for o in others)  # all driven
        assert f"order {first}: its drive failed" in caplog.text
    finally:
        rt.close()


def test_run_once_exits_1_when_an_orders_drive_failed(world, monkeypatch):
    from click.testing import CliRunner

    from connector.cli.app import cli
    from connector.engine import loop

    w = world({"sandbox": {"orders": 2}})
    monkeypatch.setattr(loop.Engine, "run_pass", lambda self: loop.PassResult(
        driven=2, active_left=1, ingest_errors=0, failed=1))
    monkeypatch.setattr("signal.signal", lambda signum, handler: None)  # the test session's stay
    for name, value in w.sandbox.env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["--config", str(w.config_path), "run", "--once"])
    assert result.exit_code == 1, result.output
    assert "1 order drive(s) failed" in result.output


def test_an_order_sealed_with_a_key_no_longer_configured_is_held_and_the_others_go_on(world):
    """An operator removed an old PII key before re-encrypting: that order cannot be read. The
    drive holds it with what to do, instead of raising out of the dispatcher and stopping the
    daemon at every start; and the release of orders held for an unknown SKU, which needs no
    address, is not stopped by it."""
    from cryptography.fernet import Fernet

    from connector.engine import loop
    from connector.engine.items import release_known_skus
    from connector.ledger import OrderState
    from connector.ledger.crypto import PiiCipher

    from ..e2e.helpers import ingest_all

    rt = world({"sandbox": {"orders": 4}}).runtime()
    try:
        ingest_all(rt)
        unshipped = [r for r in rt.ledger.orders([OrderState.NEW])
                     if r.order.status.value != "CANCELLED" and r.order.ship_by is not None]
        old, readable = (r.order_id for r in unshipped[:2])
        rt.ledger.hold(readable, "unknown_sku", "SKU X is not in the item master")
        rt.ledger._cipher = PiiCipher([Fernet.generate_key()])  # the old key removed
        assert loop.drive(rt, old, lambda: False) is loop.Outcome.REST
        held = rt.ledger.order_detail(old)[0]
        assert (held.state, held.hold_reason) == (OrderState.HELD, "ledger_inconsistent")
        assert "mfn-connector pii rotate" in held.hold_message and "cannot be decrypted" in held.hold_message
        assert release_known_skus(rt) == [readable]  # the unreadable held order stopped nothing
        from connector.engine.watch import ship_by_guard

        ship_by = held.order.ship_by
        ship_by_guard(rt, ship_by - timedelta(hours=1))  # alerts read no address: it stops nothing
        assert any(a.subject == old and a.kind == "ship_by_near" for a in rt.ledger.alerts())
    finally:
        rt.close()


def test_periodic_jobs_keep_their_pace_when_the_wall_clock_steps_back(world, monkeypatch):
    """NTP corrects a clock that ran six hours ahead: on the wall clock the watch and the purge
    then looked done for six hours more. They go by the monotonic clock."""
    from datetime import timedelta

    from connector import clock
    from connector.engine import loop

    rt = world({"sandbox": {"orders": 1}}).runtime()
    try:
        engine = loop.Engine(rt)
        assert engine._due("watch", loop.WATCH_EVERY)
        stepped_back = loop.utcnow() - timedelta(hours=6)
        monkeypatch.setattr(loop, "utcnow", lambda: stepped_back)
        assert not engine._due("watch", loop.WATCH_EVERY)
        clock.advance(loop.WATCH_EVERY.total_seconds() + 1)  # (moves the monotonic clock too)
        monkeypatch.setattr(loop, "utcnow", lambda: stepped_back)
        assert engine._due("watch", loop.WATCH_EVERY)
    finally:
        rt.close()
        clock.reset()


def test_an_order_whose_package_row_cannot_be_read_is_held_ledger_inconsistent(world):
    """A package whose items are not JSON (a hand edit, a restore gone wrong): driving its order
    holds it ledger_inconsistent with the package named, as an order whose own row cannot be read
    is held. It was deferred as an internal error, its traceback logged at every retry."""
    from connector.engine import loop
    from connector.ledger import OrderState

    from ..e2e.helpers import ingest_all

    rt = world({"sandbox": {"orders": 4}}).runtime()
    try:
        ingest_all(rt)
        oid = next(r.order_id for r in rt.ledger.orders([OrderState.NEW]) if r.order.ship_by is not None)
        package = rt.ledger.plan_package(oid, "1", f"{oid}-1", "yunexpress", "S",
                                         [{"order_item_id": "item-1", "quantity": 1}])
        with rt.ledger._write() as conn:
            conn.execute("UPDATE packages SET items = '[{\"order_item_id\": ' WHERE id = ?", (package.id,))
        assert loop.drive(rt, oid, lambda: False) is loop.Outcome.REST
        held = rt.ledger.order_lines(states=[OrderState.HELD], limit=50)
        assert [line.hold_reason for line in held if line.order_id == oid] == ["ledger_inconsistent"]
        assert f"package {package.id} of order {oid}" in rt.ledger.order_detail(oid)[0].hold_message
    finally:
        rt.close()
