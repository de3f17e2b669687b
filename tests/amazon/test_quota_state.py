"""Quota state survives a restart: a drained bucket stays drained, a full one is not assumed empty."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from connector.ledger import open_ledger
from connector.ratelimit import DEFAULT_HEADROOM, RateLimiter

from .conftest import FakeClock

RATE, BURST = 0.0056, 20  # searchOrders


@pytest.fixture
def ledger(tmp_path: Path):
    led = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", key_file=str(tmp_path / "pii.key"),
                      create_key=True)
    led.migrate()
    yield led
    led.close()


class Process:
    """One daemon's limiter: its own monotonic clock (meaningless to another process), the shared
    wall clock, the shared ledger."""

    def __init__(self, store: Any, wall: FakeClock, start: float) -> None:
        self.clock = FakeClock(start)
        self.wall = wall

        def sleep(seconds: float) -> None:  # time passes for everyone
            self.clock.sleep(seconds)
            wall.advance(seconds)

        self.limiter = RateLimiter(clock=self.clock, sleep=sleep, wall=wall)
        self.limiter.attach_store(store)

    def search_bucket(self):
        return self.limiter.bucket("demo-na", "searchOrders")


def test_a_drained_bucket_stays_drained_after_a_restart(ledger) -> None:
    wall = FakeClock(1_800_000_000.0)
    first = Process(ledger, wall, start=100.0)
    bucket = first.search_bucket()
    for _ in range(BURST):
        bucket.acquire()
    first.limiter.save()  # what Runtime.close() does on shutdown
    state = ledger.load_quota_state("demo-na")["searchOrders"]
    assert state["tokens"] < 1 and state["at"] == pytest.approx(wall.now)  # wall-clock time, not monotonic

    wall.advance(30)  # the restart takes 30 s
    second = Process(ledger, wall, start=5.0)
    restored = second.search_bucket()
    assert restored.available == pytest.approx(state["tokens"] + 30 * RATE)
    before = second.clock.now
    restored.acquire()  # waits for Amazon's next token instead of storming with a "full" bucket
    missing = 1 - state["tokens"] - 30 * RATE
    assert second.clock.now - before == pytest.approx(missing / RATE + DEFAULT_HEADROOM, rel=1e-3)


def test_a_bucket_with_tokens_left_is_not_assumed_empty(ledger) -> None:
    wall = FakeClock(1_800_000_000.0)
    first = Process(ledger, wall, start=100.0)
    first.search_bucket().acquire()
    first.limiter.save()
    second = Process(ledger, wall, start=7.0)
    bucket = second.search_bucket()
    assert bucket.available == pytest.approx(BURST - 1)
    bucket.acquire()
    assert second.clock.sleeps == []  # polls at once


def test_a_429_penalty_is_saved_at_once_and_still_runs_after_a_restart(ledger) -> None:
    wall = FakeClock(1_800_000_000.0)
    first = Process(ledger, wall, start=100.0)
    first.limiter.bucket("demo-na", "getOrder").penalize(60)  # no explicit save: a crash follows
    saved = ledger.load_quota_state("demo-na")["getOrder"]
    assert saved["penalized_until"] == pytest.approx(wall.now + 60)
    wall.advance(20)
    second = Process(ledger, wall, start=0.0)
    bucket = second.limiter.bucket("demo-na", "getOrder")
    assert bucket.available == 0
    before = second.clock.now
    bucket.acquire()
    assert second.clock.now - before == pytest.approx(40)


def test_state_is_saved_while_in_use_at_most_every_few_seconds(tmp_path: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.saves: list[dict] = []

        def load_quota_state(self, account_key: str) -> dict:
            return {}

        def save_quota_state(self, account_key: str, states: dict) -> None:
            self.saves.append({"account": account_key, **states})

    store, clock = Recorder(), FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, wall=clock, save_every=5.0)
    limiter.attach_store(store)
    bucket = limiter.bucket("demo-eu", "confirmShipment")  # 2/s
    for _ in range(40):  # 20 s of confirmations
        bucket.acquire()
    assert 3 <= len(store.saves) <= 5  # every 5 s, not every call
    assert all(s["account"] == "demo-eu" and "confirmShipment" in s for s in store.saves)
    limiter.save()
    assert store.saves[-1]["confirmShipment"]["tokens"] == pytest.approx(bucket.available)


def test_a_burst_left_idle_is_saved_by_the_daemons_flush_and_survives_a_crash(ledger) -> None:
    """A poll reading many pages takes searchOrders tokens in a burst: the first is saved, the rest
    fall within ``save_every`` of it, and the bucket then idles until the next poll. Those takes
    were saved only at the next use or at the shutdown: a crash (kill -9, the host lost) meanwhile
    lost them, and the restarted daemon sent calls Amazon's drained bucket answers with 429s."""
    wall = FakeClock(1_800_000_000.0)
    first = Process(ledger, wall, start=100.0)
    bucket = first.search_bucket()
    for _ in range(15):  # the pages of one poll
        bucket.acquire()
    first.clock.advance(10)  # the poll is over; the daemon's periodic flush runs ...
    wall.advance(10)
    first.limiter.save_due()
    # ... and the daemon is killed: nothing more is saved
    second = Process(ledger, wall, start=0.0)
    assert second.search_bucket().available == pytest.approx(BURST - 15 + 10 * RATE, abs=0.01)


def test_the_flush_saves_only_what_is_due_and_what_the_daemon_may_save() -> None:
    saved: list[str] = []
    store = type("Store", (), {"load_quota_state": lambda self, account: {},
                               "save_quota_state": lambda self, account, states: saved.append(account)})()
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, wall=clock, save_every=5.0)
    limiter.attach_store(store)
    for account in ("mine", "theirs"):
        limiter.bucket(account, "getOrder").acquire()  # saved at once: the first change
        limiter.bucket(account, "getOrder").acquire()  # within save_every: waits
    assert saved == ["mine", "theirs"]
    limiter.save_due(lambda account: account == "mine")
    assert saved == ["mine", "theirs"]  # not due yet
    clock.advance(5)
    limiter.save_due(lambda account: account == "mine")
    assert saved == ["mine", "theirs", "mine"]  # (another worker's now: its state is not ours to write)
    limiter.save_due(lambda account: True)
    assert saved == ["mine", "theirs", "mine", "theirs"]  # still to save when it may be
    limiter.save_due()
    assert saved == ["mine", "theirs", "mine", "theirs"]  # nothing left


def test_a_429_saved_while_an_older_save_of_the_account_is_under_way_is_not_overwritten_by_it() -> None:
    """One order thread's save (its token was due one) has read the buckets and is writing them when
    another thread's call is answered 429 and saves the penalty at once. Written after it, the older
    state erased the penalty from the ledger: the next owner, or a restart, sent into the drained bucket."""
    first_write_started, release_first = threading.Event(), threading.Event()
    written: list[dict] = []

    class Store:
        def load_quota_state(self, account_key: str) -> dict:
            return {}

        def save_quota_state(self, account_key: str, states: dict) -> None:
            if not first_write_started.is_set():  # the older save: slow to write
                first_write_started.set()
                release_first.wait(5)
            written.append(states)

    limiter = RateLimiter(save_every=0.0)
    limiter.attach_store(Store())
    bucket = limiter.bucket("demo-na", "getOrder")
    older = threading.Thread(target=bucket.acquire)  # its token: a save is due
    older.start()
    assert first_write_started.wait(5)
    penalty = threading.Thread(target=bucket.penalize, args=(60,))  # a 429 meanwhile: saved at once
    penalty.start()
    penalty.join(0.5)  # (blocked behind the older write, once saves of an account take turns)
    release_first.set()
    older.join(5)
    penalty.join(5)
    assert "penalized_until" in written[-1]["getOrder"], written


def test_the_rate_amazon_reported_is_remembered_but_configuration_still_wins(ledger) -> None:
    wall = FakeClock(1_800_000_000.0)
    first = Process(ledger, wall, start=0.0)
    first.limiter.bucket("demo-na", "getOrder")
    assert first.limiter.learn_rate("demo-na", "getOrder", 2.5)
    first.limiter.save()
    second = Process(ledger, wall, start=0.0)
    assert second.limiter.bucket("demo-na", "getOrder").rate == pytest.approx(2.5)
    configured = RateLimiter(overrides={"getOrder": {"rate": 1.0}}, clock=FakeClock(), wall=wall)
    configured.attach_store(ledger)
    assert configured.bucket("demo-na", "getOrder").rate == pytest.approx(1.0)


def test_unreadable_saved_state_is_ignored(ledger, caplog) -> None:
    ledger.save_quota_state("demo-na", {"searchOrders": {"tokens": "many"}})
    limiter = RateLimiter(clock=FakeClock())
    limiter.attach_store(ledger)
    assert limiter.bucket("demo-na", "searchOrders").available == BURST  # a fresh bucket
    assert "ignoring the saved searchOrders quota state" in caplog.text


def test_a_worker_taking_an_account_over_reloads_its_state(ledger) -> None:
    wall = FakeClock(1_800_000_000.0)
    mine, other = Process(ledger, wall, start=0.0), Process(ledger, wall, start=50.0)
    assert mine.search_bucket().available == BURST
    for _ in range(BURST):  # the other worker owned the account meanwhile and drained it
        other.search_bucket().acquire()
    other.limiter.save()
    mine.limiter.reload("demo-na")
    assert mine.search_bucket().available < 1


def test_a_429_whose_save_failed_is_saved_at_the_shutdown(ledger) -> None:
    """A 429 is saved at once; when that save fails (the ledger away for a moment), the penalty
    must still reach the ledger at the next save -- the shutdown's at the latest -- or the next
    start finds the bucket it saved before the 429 and calls into Amazon's empty one."""
    wall = FakeClock(1_800_000_000.0)
    first = Process(ledger, wall, start=100.0)
    bucket = first.search_bucket()
    bucket.acquire()
    first.limiter.save()
    real, failed = ledger.save_quota_state, []

    def away_once(account: str, states: dict) -> None:
        if not failed:
            failed.append(account)
            raise ConnectionError("the ledger's server restarts")
        real(account, states)

    ledger.save_quota_state = away_once
    bucket.penalize(60)  # Amazon answered 429: saved at once ... which fails
    assert failed == ["demo-na"]
    first.limiter.save()  # what Runtime.close() does on shutdown
    state = ledger.load_quota_state("demo-na")["searchOrders"]
    assert state["tokens"] < 1 and state.get("penalized_until") == pytest.approx(wall.now + 60)
