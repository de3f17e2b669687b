from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from connector.ratelimit import (
    DEFAULT_HEADROOM,
    DEFAULT_PACING,
    DEFAULT_QUOTAS,
    QuotaWaitInterrupted,
    RateLimiter,
    TokenBucket,
    fence,
)

from .conftest import FakeClock


def test_published_defaults_are_held_in_one_table() -> None:
    # the core's own operations only; a plugin contributes its operations' defaults
    assert DEFAULT_QUOTAS == {"searchOrders": (0.0056, 20), "getOrder": (0.5, 30),
                              "confirmShipment": (2.0, 10)}
    assert DEFAULT_PACING == 1.0  # at the bucket itself; the headroom keeps it clear of 429s
    assert 0 < DEFAULT_HEADROOM <= 1


def test_plugins_add_defaults_and_configuration_wins(clock: FakeClock) -> None:
    limiter = RateLimiter({**DEFAULT_QUOTAS, "getWidgets": (1.0, 2)}, {"listWidgets": {"rate": 3.0}},
                          account_overrides={"big": {"createWidget": {"burst": 50}}},
                          clock=clock, sleep=clock.sleep)
    with pytest.raises(KeyError, match="createWidget"):
        limiter.quota("acme", "createWidget")
    limiter.add_defaults({"getWidgets": (80.0, 100), "createWidget": (10, 20), "listWidgets": (5.0, 9),
                          "getOrder": (99.0, 99)})
    assert limiter.quota("acme", "getWidgets") == (1.0, 2)  # configured (in the defaults) wins
    assert limiter.quota("acme", "listWidgets") == (3.0, 9)  # a configured override wins
    assert limiter.quota("acme", "createWidget") == (10.0, 20)
    assert limiter.quota("big", "createWidget") == (10.0, 50)  # per-account configuration too
    assert limiter.quota("acme", "getOrder") == (0.5, 30)  # a plugin never replaces a core default
    limiter.add_defaults({"createWidget": (1.0, 1)})  # the first contribution stays
    assert limiter.quota("acme", "createWidget") == (10.0, 20)
    assert limiter.bucket("acme", "createWidget").rate == pytest.approx(10.0)
    for bad in ({"x": (0, 1)}, {"x": (1.0, 0)}, {"x": (1.0, True)}, {"x": "fast"}):
        with pytest.raises(ValueError, match="default quota of x"):
            limiter.add_defaults(bad)


def test_full_bucket_serves_the_burst_at_once_then_paces_at_the_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(2.0, 10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        assert bucket.acquire()
    assert clock.sleeps == []
    start = clock.now
    for _ in range(4):
        assert bucket.acquire()
    assert clock.now - start == pytest.approx(4 / 2.0)
    assert all(s == pytest.approx(0.5) for s in clock.sleeps)


def replay_against_amazon(limiter: RateLimiter, clock: FakeClock, calls: int,
                          latency: Callable[[int], float]) -> tuple[int, float]:
    """Send ``calls`` confirmShipment calls through the limiter; each reaches Amazon's own bucket
    ``latency(i)`` seconds after it left. Returns (429s Amazon would answer, seconds taken)."""
    bucket = limiter.bucket("acme", "confirmShipment")
    rate, burst = DEFAULT_QUOTAS["confirmShipment"]
    amazon_tokens, last, throttled = float(burst), clock.now, 0
    start = clock.now
    arrivals = []
    for i in range(calls):
        bucket.acquire()
        arrivals.append(clock.now + latency(i))
    for at in sorted(arrivals):
        amazon_tokens = min(float(burst), amazon_tokens + (at - last) * rate)
        last = at
        if amazon_tokens < 1.0 - 1e-9:
            throttled += 1
        else:
            amazon_tokens -= 1
    return throttled, clock.now - start


def slow_burst_then_jitter(i: int) -> float:
    """The burst reaches Amazon late (0.45 s), later calls anywhere from 0 to 0.49 s."""
    return 0.45 if i < 10 else (0.05, 0.45, 0.0, 0.3, 0.49, 0.1)[i % 6]


def test_limiter_paces_at_amazons_rate_without_a_429(clock: FakeClock) -> None:
    """Replay what the limiter hands out against Amazon's own bucket, with request latencies
    that vary by up to the headroom: the sustained rate is Amazon's, and never a 429."""
    limiter = RateLimiter(DEFAULT_QUOTAS, clock=clock, sleep=clock.sleep)
    bucket = limiter.bucket("acme", "confirmShipment")
    assert bucket.rate == pytest.approx(2.0)
    assert bucket.burst == 10
    throttled, took = replay_against_amazon(limiter, clock, 400, slow_burst_then_jitter)
    assert throttled == 0, "Amazon would have answered 429"
    # (400 - burst) tokens at 2/s, plus the headroom's one token once: at least 0.98 of the bucket
    assert took == pytest.approx((400 - 10 + 2.0 * DEFAULT_HEADROOM) / 2.0)
    assert (400 - 10) / took >= 0.98 * 2.0


def test_without_headroom_varying_latency_costs_429s(clock: FakeClock) -> None:
    """What the headroom is for: the same replay at the bucket with no headroom is throttled."""
    limiter = RateLimiter(DEFAULT_QUOTAS, headroom=0, clock=clock, sleep=clock.sleep)
    throttled, _ = replay_against_amazon(limiter, clock, 400, slow_burst_then_jitter)
    assert throttled > 0


def test_search_orders_bucket_is_one_call_per_about_three_minutes(clock: FakeClock) -> None:
    bucket = RateLimiter(clock=clock, sleep=clock.sleep).bucket("acme", "searchOrders")
    start = clock.now
    for _ in range(20):
        bucket.acquire()
    assert clock.now - start == pytest.approx(DEFAULT_HEADROOM)  # the burst, less the headroom's sliver
    before = clock.now
    bucket.acquire()
    assert clock.now - before == pytest.approx(1 / 0.0056)  # ~179 s


def test_acquire_with_timeout(clock: FakeClock) -> None:
    bucket = TokenBucket(1.0, 1, clock=clock, sleep=clock.sleep)
    assert bucket.acquire(timeout=0)
    assert not bucket.acquire(timeout=0)  # empty: a non-blocking try fails
    assert not bucket.acquire(timeout=0.5)  # the next token is 1 s away: fails at once
    assert clock.sleeps == []
    assert bucket.acquire(timeout=1.5)  # waits for it
    assert clock.sleeps == [pytest.approx(1.0)]


def test_penalize_empties_the_bucket_and_blocks_for_the_penalty(clock: FakeClock) -> None:
    bucket = TokenBucket(2.0, 10, clock=clock, sleep=clock.sleep)
    assert bucket.available == 10
    bucket.penalize(5.0)
    assert bucket.available == 0
    assert not bucket.acquire(timeout=4.9)
    start = clock.now
    assert bucket.acquire()
    assert clock.now - start == pytest.approx(5.0)
    # tokens refilled during the penalty (5 s x 2/s = 10, capped at burst) are usable afterwards
    assert bucket.available == pytest.approx(9.0)


def test_short_penalty_still_waits_for_a_refilled_token(clock: FakeClock) -> None:
    bucket = TokenBucket(0.5, 30, clock=clock, sleep=clock.sleep)
    bucket.penalize(0.1)
    start = clock.now
    bucket.acquire()
    assert clock.now - start == pytest.approx(2.0)  # one token at 0.5/s, not 0.1 s


def test_penalties_do_not_shorten_each_other(clock: FakeClock) -> None:
    bucket = TokenBucket(100.0, 10, clock=clock, sleep=clock.sleep)
    bucket.penalize(10)
    bucket.penalize(1)
    start = clock.now
    bucket.acquire()
    assert clock.now - start == pytest.approx(10)


def test_one_bucket_per_account_and_operation(clock: FakeClock) -> None:
    limiter = RateLimiter(DEFAULT_QUOTAS, clock=clock, sleep=clock.sleep)
    a_confirm = limiter.bucket("acct-a", "confirmShipment")
    assert limiter.bucket("acct-a", "confirmShipment") is a_confirm
    b_confirm = limiter.bucket("acct-b", "confirmShipment")
    a_get = limiter.bucket("acct-a", "getOrder")
    assert len({id(a_confirm), id(b_confirm), id(a_get)}) == 3
    for _ in range(10):
        a_confirm.acquire()
    a_confirm.penalize(60)
    assert not a_confirm.acquire(timeout=0)
    # neither the other account nor the other operation is affected
    assert b_confirm.acquire(timeout=0)
    assert a_get.acquire(timeout=0)
    assert b_confirm.available == pytest.approx(9)


def test_overrides_per_operation_and_per_account(clock: FakeClock) -> None:
    limiter = RateLimiter(
        DEFAULT_QUOTAS,
        {"getOrder": {"rate": 1.0}, "newOp": {"rate": 3, "burst": 4}},
        account_overrides={"big-seller": {"confirmShipment": {"rate": 10.0, "burst": 40}}},
        pacing=0.5,
        clock=clock,
        sleep=clock.sleep,
    )
    assert limiter.quota("x", "getOrder") == (1.0, 30)  # burst kept from the default
    assert limiter.bucket("x", "getOrder").rate == pytest.approx(0.5)
    assert limiter.quota("big-seller", "confirmShipment") == (10.0, 40)
    assert limiter.quota("small-seller", "confirmShipment") == (2.0, 10)
    assert limiter.quota("x", "newOp") == (3.0, 4)
    with pytest.raises(KeyError, match="unknownOp"):
        limiter.bucket("x", "unknownOp")


@pytest.mark.parametrize(
    "overrides",
    [
        {"getOrder": {"rate": 0}},
        {"getOrder": {"burst": 0}},
        {"getOrder": {"burst": 2.5}},
        {"getOrder": {"rate": 1, "size": 3}},
        {"getOrder": 5},
    ],
)
def test_bad_overrides_are_refused(overrides: dict) -> None:
    with pytest.raises(ValueError, match="getOrder"):
        RateLimiter(DEFAULT_QUOTAS, overrides)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        TokenBucket(1, 0)
    with pytest.raises(ValueError):
        TokenBucket(1, 2).acquire(3)
    with pytest.raises(ValueError):
        RateLimiter(pacing=1.5)


def test_threads_never_get_more_than_the_bucket_allows() -> None:
    bucket = TokenBucket(200.0, 5)
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            bucket.acquire()
            with lock:
                taken.append(time.monotonic())

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(taken) == 40
    # 5 from the burst, 35 at 200/s
    assert time.monotonic() - start >= 35 / 200 - 0.01


# -- a stop request ends every wait ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["event", "callable", "fence"])
def test_a_stop_request_ends_a_wait_of_minutes_at_once(kind: str) -> None:
    """The daemon's stop, as an Event or a callable; or a fence on the waiting thread (the order
    poll waits fenced on its account's lease: when the lease goes, the wait ends)."""
    event = threading.Event()
    stop = {"event": event, "callable": event.is_set, "fence": threading.Event()}[kind]
    limiter = RateLimiter(stop=stop)
    bucket = limiter.bucket("acme", "searchOrders")
    for _ in range(19):
        assert bucket.acquire(timeout=0)
    errors: list[BaseException] = []

    def poll() -> None:
        with fence(event.is_set) if kind == "fence" else contextlib.nullcontext():
            try:
                bucket.acquire()  # the 20th needs the headroom's half second; the 21st ~3 minutes
                bucket.acquire()
            except QuotaWaitInterrupted as exc:
                errors.append(exc)

    worker = threading.Thread(target=poll)
    started = time.monotonic()
    worker.start()
    time.sleep(0.8)
    event.set()
    worker.join(timeout=5)
    assert not worker.is_alive() and time.monotonic() - started < 2
    assert len(errors) == 1 and "searchOrders of account acme" in str(errors[0])
    assert bucket.available < 1  # the interrupted wait took nothing


def test_a_fenced_off_thread_takes_not_even_a_free_token() -> None:
    """Unlike a stop (the step in flight finishes), a fence whose lease is gone lets nothing go;
    outside the block the thread is as before."""
    limiter = RateLimiter()
    bucket = limiter.bucket("acme", "getOrder")
    with fence(lambda: True), pytest.raises(QuotaWaitInterrupted):
        bucket.acquire()
    assert bucket.acquire(timeout=0)


def test_a_stop_set_later_reaches_buckets_made_before(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    bucket = limiter.bucket("acme", "getOrder")
    stop = threading.Event()
    limiter.use_stop(stop)
    stop.set()
    assert bucket.acquire()  # a free token is still handed out: nothing waits
    with pytest.raises(QuotaWaitInterrupted):
        while True:
            bucket.acquire()
    assert clock.sleeps == []  # stopped before sleeping


def test_the_fake_clock_sleep_is_still_used_with_a_stop(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, stop=threading.Event(), headroom=0)
    bucket = limiter.bucket("acme", "getOrder")
    for _ in range(31):
        bucket.acquire()
    assert clock.sleeps == [pytest.approx(2.0)]  # simulated time, not real time
