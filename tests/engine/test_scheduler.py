"""The daemon's scheduler: due orders dispatched as workers free up, a slow order or a poll waiting
for quota holds nothing else, a fair share per account, and a stop that stops."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from connector.engine.scheduler import Scheduler, fair_pick
from connector.ledger import Ledger
from connector.ledger.queries import OrderKey


def due(*specs: tuple[str, str]) -> list[OrderKey]:
    return [OrderKey(order_id, account, None) for order_id, account in specs]


def test_fair_pick_takes_the_earliest_not_in_flight() -> None:
    orders = due(("o1", "a"), ("o2", "a"), ("o3", "a"))
    assert [d.order_id for d in fair_pick(orders, {"o1"}, Counter({"a": 1}), 2, 4)] == ["o2", "o3"]


def test_fair_pick_keeps_one_account_from_taking_every_worker() -> None:
    # account a's orders come first by ship-by, but b must get its share of the 4 workers
    orders = due(("a1", "a"), ("a2", "a"), ("a3", "a"), ("a4", "a"), ("b1", "b"))
    picked = [d.order_id for d in fair_pick(orders, set(), Counter(), 4, 4)]
    assert picked == ["a1", "a2", "b1"]  # share = 4 workers / 2 accounts


class FakeLedger:
    def __init__(self, order_ids: list[str]) -> None:
        self.pending = list(order_ids)
        self.lock = threading.Lock()

    def schedule(self, states, *, due_before, accounts=None, except_accounts=(), limit=None):
        if "NEW" not in {getattr(s, "value", s) for s in states}:
            return []  # every order here is NEW
        with self.lock:
            return due(*[(o, "acct") for o in self.pending])[:limit]

    def done(self, order_id: str) -> None:
        with self.lock:
            self.pending.remove(order_id)

    sharing_connections = Ledger.sharing_connections  # (no connections here)
    release_connection = Ledger.release_connection


def make_engine(ledger: FakeLedger, *, poll=lambda accounts: 0, workers: int = 3):
    stop = threading.Event()
    rt = SimpleNamespace(engine=SimpleNamespace(workers=workers, poll_interval_seconds=3600), ledger=ledger,
                         membership=None, config=SimpleNamespace(accounts=[SimpleNamespace(name="acct")]),
                         leads=lambda: False, save_quotas=lambda: None)
    return SimpleNamespace(rt=rt, stop_event=stop, poll_accounts=poll, _leader_jobs=lambda: 0,
                           erase_files=lambda: None)


@pytest.fixture
def no_periodic_jobs(monkeypatch) -> None:
    """The periodic thread's bulk verification and feeds stay out of these tests."""
    monkeypatch.setattr("connector.engine.verify.verify_in_bulk", lambda rt, should_stop: None)
    monkeypatch.setattr("connector.engine.feeds.run_feeds", lambda rt, should_stop: None)


def start(engine, drive) -> threading.Thread:
    runner = threading.Thread(target=Scheduler(engine, drive).run, kwargs={"tick_seconds": 60})
    runner.start()
    return runner


def wait_until(done: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(engine, runner: threading.Thread) -> None:
    engine.stop_event.set()
    runner.join(10)


def test_a_slow_order_holds_no_other_and_a_waiting_poll_holds_nothing(no_periodic_jobs) -> None:
    ledger = FakeLedger(["slow", *[f"fast-{n}" for n in range(20)]])
    release_slow = threading.Event()
    finished: list[str] = []

    def drive(rt, order_id, should_stop):
        if order_id == "slow":
            release_slow.wait(10)
        else:
            time.sleep(0.01)
        finished.append(order_id)
        ledger.done(order_id)

    def poll(accounts):  # the account's poll waits for its quota until the stop request
        engine.stop_event.wait(60)
        return 0

    engine = make_engine(ledger, poll=poll)
    runner = start(engine, drive)
    wait_until(lambda: len(finished) >= 20)
    # every fast order finished while the slow one and the poll were still waiting
    assert sorted(finished) == sorted(f"fast-{n}" for n in range(20))
    release_slow.set()
    engine.stop_event.set()
    stopped_at = time.monotonic()
    runner.join(10)
    assert not runner.is_alive() and time.monotonic() - stopped_at < 5
    assert "slow" in finished  # the step in flight finished before the scheduler returned


class StatefulLedger(FakeLedger):
    """Orders with a state: the scheduler reads the confirm-ready ones apart."""

    def __init__(self, states: dict[str, str]) -> None:
        super().__init__(list(states))
        self.states = states

    def schedule(self, states, *, due_before, accounts=None, except_accounts=(), limit=None):
        wanted = {getattr(s, "value", s) for s in states}
        with self.lock:
            return due(*[(o, self.account(o)) for o in self.pending if self.states[o] in wanted
                         and (accounts is None or self.account(o) in accounts)
                         and self.account(o) not in except_accounts])[:limit]

    @staticmethod
    def account(order_id: str) -> str:
        return "other" if order_id.startswith("x-") else "acct"  # x-: an account not configured


def test_orders_waiting_to_be_confirmed_leave_the_workers_to_buy_labels(no_periodic_jobs) -> None:
    """Confirmations first by ship-by, but while the account's confirm lane is full (its bucket
    busy) the workers buy the labels behind them, and a confirm-ready order is not dispatched
    only to be turned away: no more are handed out than the lane has room for."""
    from connector.engine.confirm import CONFIRM_LANE, confirm_lane

    states = {**{f"c-{n}": "LABELED" for n in range(10)}, **{f"n-{n}": "NEW" for n in range(20)}}
    ledger = StatefulLedger(states)
    bucket_open = threading.Event()  # the confirmShipment bucket: shut until the labels are bought
    labels: list[str] = []
    turned_away: list[str] = []
    most_in_lane = []

    def drive(rt, order_id, should_stop):
        if states[order_id] == "LABELED":
            lane = confirm_lane(rt, "acct")
            if not lane.try_enter():
                turned_away.append(order_id)
                return None
            most_in_lane.append(lane.busy)
            try:
                bucket_open.wait(10)
            finally:
                lane.leave()
        else:
            time.sleep(0.01)
            labels.append(order_id)
        ledger.done(order_id)

    engine = make_engine(ledger, workers=4)
    runner = start(engine, drive)
    wait_until(lambda: len(labels) >= 20)
    assert sorted(labels) == sorted(f"n-{n}" for n in range(20))  # bought while two confirmations waited
    assert max(most_in_lane) == CONFIRM_LANE and len(most_in_lane) == CONFIRM_LANE
    assert turned_away == []  # confirm-ready orders are handed out only as far as the lane has room
    bucket_open.set()
    wait_until(lambda: not ledger.pending)
    stop(engine, runner)
    assert ledger.pending == []


def test_confirm_ready_orders_of_an_account_outside_the_configuration_are_still_handed_out(
        no_periodic_jobs) -> None:
    """Lanes ration the configured accounts; an order of another account (the ledger holds one,
    e.g. an account since removed from the YAML) is still driven, not left out of the schedule."""
    ledger = StatefulLedger({"x-1": "LABELED", "c-1": "LABELED"})
    driven: list[str] = []

    def drive(rt, order_id, should_stop):
        driven.append(order_id)
        ledger.done(order_id)

    engine = make_engine(ledger)
    runner = start(engine, drive)
    wait_until(lambda: not ledger.pending)
    stop(engine, runner)
    assert sorted(driven) == ["c-1", "x-1"]


def test_an_order_turned_away_by_a_full_lane_is_handed_out_as_soon_as_the_lane_has_room(
        no_periodic_jobs, monkeypatch) -> None:
    """An order whose label is bought in the middle of its drive finds the lane full and comes back
    QUEUED; it does not rest: the dispatcher hands it out again when a confirmation leaves."""
    from connector.engine import scheduler
    from connector.engine.confirm import CONFIRM_LANE, confirm_lane
    from connector.engine.outcome import Outcome

    monkeypatch.setattr(scheduler, "REST_S", 60.0)  # a rest would outlast the test
    states = {**{f"c-{n}": "LABELED" for n in range(CONFIRM_LANE)}, "n-1": "NEW"}
    ledger = StatefulLedger(states)
    bucket_open = threading.Event()
    bounced = threading.Event()
    confirmed: list[str] = []

    def drive(rt, order_id, should_stop):
        if states[order_id] == "NEW":  # its label is bought: LABELED, and on to the confirm step
            with ledger.lock:
                states[order_id] = "LABELED"
        lane = confirm_lane(rt, "acct")
        if not lane.try_enter():
            bounced.set()
            return Outcome.QUEUED
        try:
            if order_id != "n-1":
                bounced.wait(10)  # hold the lane until the newcomer has been turned away
                bucket_open.wait(10)
            confirmed.append(order_id)
        finally:
            lane.leave()
        ledger.done(order_id)
        return Outcome.REST

    engine = make_engine(ledger, workers=4)
    runner = start(engine, drive)
    assert bounced.wait(10)  # both lane places taken by c-*, n-1 turned away
    bucket_open.set()
    wait_until(lambda: not ledger.pending)
    stop(engine, runner)
    assert sorted(confirmed) == ["c-0", "c-1", "n-1"]


class RetryingLedger(FakeLedger):
    """Honours each order's retry time, as the ledger's schedule does with next_attempt_at."""

    def __init__(self, order_ids: list[str]) -> None:
        super().__init__(order_ids)
        self.retry_at: dict[str, float] = {}

    def schedule(self, states, *, due_before, accounts=None, except_accounts=(), limit=None):
        now = time.monotonic()
        return [d for d in super().schedule(states, due_before=due_before, accounts=accounts,
                                            except_accounts=except_accounts, limit=limit)
                if self.retry_at.get(d.order_id, 0.0) <= now]


def test_a_deferred_order_is_driven_again_at_its_retry_time_not_after_a_rest(
        no_periodic_jobs, monkeypatch) -> None:
    """DEFER writes the retry time into the ledger, whose schedule honours it: the dispatcher adds
    no rest of its own (with REST_S at 60 s, a rested order would not come back in this test)."""
    from connector.engine import scheduler
    from connector.engine.outcome import Outcome

    monkeypatch.setattr(scheduler, "REST_S", 60.0)
    ledger = RetryingLedger(["o-1"])
    tries: list[float] = []

    def drive(rt, order_id, should_stop):
        tries.append(time.monotonic())
        if len(tries) < 3:
            ledger.retry_at[order_id] = time.monotonic() + 0.2  # a transient failure: again in 0.2 s
            return Outcome.DEFER
        ledger.done(order_id)
        return Outcome.REST

    engine = make_engine(ledger)
    runner = start(engine, drive)
    wait_until(lambda: not ledger.pending)
    stop(engine, runner)
    assert len(tries) == 3
    assert all(later - earlier >= 0.2 for earlier, later in zip(tries, tries[1:], strict=False))  # on time


class TwoAccountLedger(FakeLedger):
    """NEW orders of the accounts their ids start with (``a-1``: account a), in the given order."""

    def schedule(self, states, *, due_before, accounts=None, except_accounts=(), limit=None):
        if "NEW" not in {getattr(s, "value", s) for s in states}:
            return []
        with self.lock:
            keys = due(*[(o, o.split("-")[0]) for o in self.pending])
        return [k for k in keys if k.account not in except_accounts
                and (accounts is None or k.account in accounts)][:limit]


def test_an_accounts_backlog_filling_the_window_leaves_the_other_accounts_their_share(
        no_periodic_jobs) -> None:
    """Account a's backlog comes first by ship-by, more of it than the window the dispatcher reads
    (DUE_WINDOW per free worker): b's order, behind it, was never seen, so a took every worker --
    each of them waiting for a's quota -- until its backlog was down to the window. b gets its share."""
    ledger = TwoAccountLedger([*(f"a-{n}" for n in range(30)), "b-1"])
    quota = threading.Event()  # account a's orders wait for its quota
    driven: list[str] = []

    def drive(rt, order_id, should_stop):
        driven.append(order_id)
        if order_id.startswith("a-"):
            quota.wait(10)
        ledger.done(order_id)

    engine = make_engine(ledger, workers=2)
    engine.rt.config.accounts = [SimpleNamespace(name="a"), SimpleNamespace(name="b")]
    runner = start(engine, drive)
    try:
        wait_until(lambda: "b-1" in driven, seconds=3)
        assert "b-1" in driven[:2], driven  # one worker each (b-1 done, a-1 takes its worker)
    finally:
        quota.set()
        stop(engine, runner)


def test_a_ledger_dropping_its_connections_stops_neither_the_dispatcher_nor_the_orders(
        no_periodic_jobs, monkeypatch, caplog) -> None:
    """A PostgreSQL restart or failover drops every connection: the dispatcher's read of what is
    due fails, and so may an order's drive mid-step. The dispatcher says so once, reads again at
    the next tick and lets that order rest, where it used to end the daemon."""
    from connector.engine import scheduler

    class Dropped(Exception):
        pass

    monkeypatch.setattr(scheduler, "REST_S", 0.1)
    ledger = FakeLedger(["o1", "o2"])
    ledger.db_errors = (Dropped,)
    failing = {"reads": 2, "o1": 1}
    read = ledger.schedule

    def schedule(*args, **kwargs):
        if failing["reads"]:
            failing["reads"] -= 1
            raise Dropped("server closed the connection unexpectedly")
        return read(*args, **kwargs)

    ledger.schedule = schedule
    drive, driven = failing_drive(ledger, failing, lambda: Dropped("terminating connection due to "
                                                                   "administrator command"))
    run_until_drained(ledger, drive)
    assert sorted(driven) == ["o1", "o2"]
    failures = [r for r in caplog.records if r.getMessage().startswith("the ledger failed")]
    assert len(failures) == 2  # the reads that failed in a row, and the drive


def test_a_bug_in_one_drive_stops_neither_the_dispatcher_nor_the_others(
        no_periodic_jobs, monkeypatch, caplog) -> None:
    """drive() turns a step's error into a retry, but a bug outside the steps (an order row it
    cannot read, say) came out of the future and ended the daemon. That order now rests, logged
    by its id, and is tried again; the others go on."""
    from connector.engine import scheduler

    monkeypatch.setattr(scheduler, "REST_S", 0.1)
    ledger = FakeLedger(["broken", "o1", "o2"])
    drive, driven = failing_drive(ledger, {"broken": 2}, lambda: KeyError("order_id"))
    run_until_drained(ledger, drive)
    assert sorted(driven) == ["broken", "o1", "o2"]
    logged = [r for r in caplog.records if "its drive failed unexpectedly" in r.getMessage()]
    assert len(logged) == 2 and all("order broken" in r.getMessage() for r in logged)


def failing_drive(ledger: FakeLedger, failures: dict[str, int], error: Callable[[], Exception]):
    """A drive that raises ``error()`` the first ``failures[order_id]`` times it is handed an
    order, then finishes it; and the list of the orders it finished."""
    driven: list[str] = []

    def drive(rt, order_id, should_stop):
        if failures.get(order_id):
            failures[order_id] -= 1
            raise error()
        driven.append(order_id)
        ledger.done(order_id)

    return drive, driven


def run_until_drained(ledger: FakeLedger, drive) -> None:
    """The scheduler until every order is done; it must still be running then."""
    engine = make_engine(ledger)
    runner = start(engine, drive)
    wait_until(lambda: not ledger.pending)
    assert runner.is_alive()
    stop(engine, runner)


def test_a_ledger_refusing_writes_pauses_the_dispatch_with_back_off_and_logs_once(
        no_periodic_jobs, monkeypatch, caplog) -> None:
    """A full disk: the reads of what is due answer, every step's write fails. Each order used to
    be handed out again every REST_S -- a carrier's quote and Amazon's calls each time, for nothing
    recorded -- and the log said "failed" and "answers again" at every tick. Now the dispatch pauses,
    doubling, and the failure is said once, and its end once."""
    from connector.engine import scheduler

    class DiskFull(Exception):
        pass

    caplog.set_level(logging.INFO, logger="connector.engine")
    monkeypatch.setattr(scheduler, "REST_S", 0.1)
    ledger = FakeLedger([f"o{n}" for n in range(6)])
    ledger.db_errors = (DiskFull,)
    full = {"until": time.monotonic() + 1.6}
    attempts: list[str] = []

    def drive(rt, order_id, should_stop):
        attempts.append(order_id)
        if time.monotonic() < full["until"]:
            raise DiskFull("database or disk is full")
        ledger.done(order_id)

    engine = make_engine(ledger, workers=3)
    runner = start(engine, drive)
    wait_until(lambda: not ledger.pending, seconds=15)
    assert runner.is_alive() and not ledger.pending
    stop(engine, runner)
    # pauses of 0.1, 0.2, 0.4, 0.8 s after a first wave of 3: some ten drives in the 1.6 s, where
    # without the pause each of 3 workers retried an order every 0.1 s (some 40)
    failed = len(attempts) - 6
    assert failed <= 12, attempts
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("the ledger failed") for m in messages) == 1, messages
    assert messages.count("the ledger answers again") == 1, messages


def test_the_pause_never_overflows_however_long_the_ledger_refuses_writes(no_periodic_jobs) -> None:
    """Hours of a full disk: one more failed step per pause. 2 ** 1024 is no float: the doubling
    stops at its cap instead of ending the dispatcher."""
    from concurrent.futures import Future

    class DiskFull(Exception):
        pass

    ledger = FakeLedger(["o1"])
    ledger.db_errors = (DiskFull,)
    dispatcher = Scheduler(make_engine(ledger), lambda *args: None)
    for _ in range(1100):
        failed: Future = Future()
        failed.set_exception(DiskFull("database or disk is full"))
        dispatcher._outcome(failed, "o1")
    assert dispatcher._paused_until - time.monotonic() <= 60


def test_an_accounts_poll_waiting_for_quota_holds_no_other_accounts_next_poll(no_periodic_jobs) -> None:
    """Each account is polled on its own every poll_interval_seconds: one whose poll waits minutes
    for its searchOrders token must not hold the other accounts' next polls until it is done."""
    polled: list[str] = []

    def poll(accounts):
        (account,) = accounts
        if account.name == "waiting":  # its poll waits for quota until the stop request
            engine.stop_event.wait(60)
        polled.append(account.name)
        return 0

    engine = make_engine(FakeLedger([]), poll=poll)
    engine.rt.engine.poll_interval_seconds = 0.05
    engine.rt.config.accounts = [SimpleNamespace(name="waiting"), SimpleNamespace(name="flowing")]
    runner = start(engine, lambda rt, order_id, should_stop: None)
    try:
        wait_until(lambda: polled.count("flowing") >= 3, seconds=5)
        assert polled.count("flowing") >= 3, polled
    finally:
        stop(engine, runner)
    assert not runner.is_alive()


def test_a_leading_worker_reads_no_window_past_the_accounts_it_owns(no_periodic_jobs) -> None:
    """The worker that leads also owns the ``@leader`` job, which is no account: counted as an
    owned account not seen yet, every full window of its accounts' orders was read again past them
    (once a second), each such read finding nothing."""
    reads_past: list[set[str]] = []

    class Counting(TwoAccountLedger):
        def schedule(self, states, *, except_accounts=(), **kwargs):
            if except_accounts and "NEW" in {getattr(s, "value", s) for s in states}:
                reads_past.append(set(except_accounts))
            return super().schedule(states, except_accounts=except_accounts, **kwargs)

    ledger = Counting([f"a-{n}" for n in range(30)])  # more than one window of account a's orders

    def drive(rt, order_id, should_stop):
        time.sleep(0.05)  # (left due: the window stays full)

    engine = make_engine(ledger, workers=2)
    engine.rt.config.accounts = [SimpleNamespace(name="a")]
    engine.rt.membership = SimpleNamespace(shared=True, owned=lambda: {"a", "@leader"})
    runner = start(engine, drive)
    try:
        time.sleep(2.5)
    finally:
        stop(engine, runner)
    assert reads_past == []


def test_the_periodic_thread_saves_the_quota_changes_left_unsaved(no_periodic_jobs) -> None:
    """A burst's last quota changes wait for the next use of the bucket: the daemon saves them at
    its next tick, so a crash loses at most a tick of them."""
    engine = make_engine(FakeLedger([]))
    flushed = threading.Event()
    engine.rt.save_quotas = flushed.set
    runner = start(engine, lambda rt, order_id, should_stop: None)
    try:
        assert flushed.wait(5)
    finally:
        stop(engine, runner)
