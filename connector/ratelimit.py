"""Client-side token buckets, one per (seller account, SP-API operation).

Amazon meters every operation with a token bucket per selling-partner account x application:
*rate* tokens are added per second up to *burst*; a call with an empty bucket is answered 429
(https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits). We mirror that
bucket on our side and pace at the bucket itself (``pacing`` 1.0 by default): the sustained rate
is Amazon's. What keeps us clear of 429s is a *headroom* of a fraction of a second: a call goes
out only when the bucket would still hold a token ``headroom`` seconds earlier, so a request that
reaches Amazon a little faster than the one before still finds its token. It costs a fraction of
one token of the burst, never throughput. When a 429 comes anyway (a restart with Amazon's bucket
still drained, a second app instance, a quota Amazon lowered) the client calls
:meth:`TokenBucket.penalize` and sends the same call again at the head of the bucket's queue.

The core's published defaults live in :data:`DEFAULT_QUOTAS`: the Orders operations the daemon
itself calls, with the rate and burst Amazon documents for each operation (the models' operation
descriptions, https://github.com/amzn/selling-partner-api-models); the Feeds operations' in
:data:`FEEDS_QUOTAS`. A plugin that calls other SP-API operations declares their defaults
(``CarrierSpec.spapi_quotas``); the daemon contributes them with :meth:`RateLimiter.add_defaults`.
Amazon changes these numbers over time and can raise a plan per seller, so

* configuration may override any of them per operation and per account, and always wins;
* otherwise the rate Amazon reports in ``x-amzn-RateLimit-Limit`` (best-effort: only on some
  answers, never the burst) replaces the published default rate (:meth:`RateLimiter.learn_rate`).

Every wait ends early on a stop request: give the limiter a ``stop`` (a :class:`threading.Event`
or a callable) and a waiting caller raises :class:`QuotaWaitInterrupted` -- nothing was sent.

Quota state survives a restart: with a store attached (:meth:`RateLimiter.attach_store`, the
ledger's ``load_quota_state``/``save_quota_state``), each account's buckets are saved with
wall-clock times -- after a 429 at once, otherwise at most every ``save_every`` seconds while in
use (a change left waiting by the last save is saved by :meth:`RateLimiter.save_due`, which the
daemon calls every tick), and on :meth:`RateLimiter.save` (shutdown) -- and restored when a bucket
is first used, so a
restarted daemon neither storms Amazon with a bucket it believes full nor waits for one it
believes empty. The account key is the account name: one account is one seller in one region.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, Union

from . import clock as daemon_clock

log = logging.getLogger("connector.ratelimit")

# operation -> (rate in requests per second, burst), for the operations the core calls. Plugins add
# their own operations' defaults through RateLimiter.add_defaults.
DEFAULT_QUOTAS: dict[str, tuple[float, int]] = {
    # Orders API v2026-01-01
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    # Orders API v0 (shipment confirmation stays on v0)
    "confirmShipment": (2.0, 10),
}

FEEDS_QUOTAS: dict[str, tuple[float, int]] = {
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeeds": (0.0222, 10),
    "getFeedDocument": (0.0222, 10),
    "cancelFeed": (2.0, 15),
}
"""The Feeds operations' published (rate per second, burst), per seller account and application:
the feeds client (amazon/feeds.py) adds them; kept here, where the configuration check reads
them without loading an HTTP client."""

CORE_OPERATIONS: tuple[str, ...] = (*DEFAULT_QUOTAS, *FEEDS_QUOTAS)
"""Every SP-API operation the core calls: with those the carrier plugins declare
(``CarrierSpec.spapi_quotas``), the operations ``amazon.quotas`` may set."""

DEFAULT_PACING = 1.0
DEFAULT_HEADROOM = 0.5  # seconds of latency variation between two requests that never cost a 429
DEFAULT_SAVE_EVERY = 5.0  # seconds between two saves of an account's quota state
LONG_WAIT_LOGGED = 5.0  # a wait for a token at least this long is logged (an operator may wonder)

_TIME_EPSILON = 1e-6  # seconds
_YIELD = 0.01  # seconds a caller waits while a re-sent (throttled) call goes first

StopSignal = Union[threading.Event, Callable[[], bool], None]


class QuotaWaitInterrupted(Exception):
    """A wait for a quota token or a retry back-off ended because a stop was requested.

    Nothing was sent for the call that waited: the caller must change nothing and stop.
    Deliberately not an :class:`~connector.amazon.errors.SpApiError`, so no ``except SpApiError``
    counts it as a failure of the order."""

    def __init__(self, what: str = "") -> None:
        super().__init__(f"stop requested while waiting{' for ' + what if what else ''}; nothing was sent")
        self.what = what


_fence = threading.local()


@contextmanager
def fence(lost: Callable[[], bool]) -> Iterator[None]:
    """While the block runs, every quota wait and retry back-off on this thread also ends, with
    :class:`QuotaWaitInterrupted`, once ``lost()`` is true -- and a token is not taken at all then.
    The order poll runs under ``fence(lambda: not owns(account))``: a worker that lost an account's
    lease while it waited minutes for a searchOrders token must not then spend the new owner's
    quota."""
    previous = getattr(_fence, "lost", None)
    _fence.lost = lost
    try:
        yield
    finally:
        _fence.lost = previous


def carry_fence(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, to run on another thread (a pool's) under this thread's fence, if any: a
    carrier's quote, asked on a quote thread for the order this thread drives, must stop spending
    the account's quota as the order's own calls do."""
    lost = getattr(_fence, "lost", None)
    if lost is None:
        return function

    def fenced(*args: Any, **kwargs: Any) -> Any:
        with fence(lost):
            return function(*args, **kwargs)

    return fenced


def _fenced_off() -> bool:
    lost = getattr(_fence, "lost", None)
    return lost is not None and bool(lost())


def stop_requested(stop: StopSignal) -> bool:
    if _fenced_off():
        return True
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def pause(seconds: float, stop: StopSignal = None, sleep: Callable[[float], None] | None = None,
          what: str = "") -> None:
    """Wait ``seconds``; raise :class:`QuotaWaitInterrupted` as soon as ``stop`` is requested.

    ``sleep``: an injected sleep (a test's fake clock), called as is, the stop checked around it;
    None waits in real time, on the event itself when ``stop`` is an Event."""
    if stop_requested(stop):
        raise QuotaWaitInterrupted(what)
    seconds = max(0.0, seconds)
    fenced = getattr(_fence, "lost", None) is not None
    if sleep is not None:
        sleep(seconds)
    elif isinstance(stop, threading.Event) and not fenced:
        stop.wait(seconds)
    elif stop is not None or fenced:  # a callable, or a fence: look a few times a second
        end = time.monotonic() + seconds
        while not stop_requested(stop) and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))
    else:
        time.sleep(seconds)
    if stop_requested(stop):
        raise QuotaWaitInterrupted(what)


class TokenBucket:
    """A thread-safe token bucket that blocks callers until a token is free.

    ``rate`` is in tokens per second, ``burst`` the bucket size; the bucket starts full.
    ``headroom`` (seconds): a call needs the bucket to hold ``rate * headroom`` tokens more than
    it takes (capped at the burst), see the module docstring. ``clock`` and ``sleep`` are
    injectable so tests can run on a fake clock (``sleep`` None: real time, interruptible by
    ``stop``); ``on_wait`` hears the seconds of every wait for a token before it starts (the
    quota-wait metric); ``on_change`` is called (outside the lock) after a token was taken
    (``False``) or a penalty set (``True``).
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = daemon_clock.monotonic,
                 sleep: Callable[[float], None] | None = None,
                 on_wait: Callable[[float], None] | None = None, headroom: float = 0.0,
                 stop: StopSignal = None, name: str = "",
                 on_change: Callable[[bool], None] | None = None) -> None:
        _check_rate(rate)
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a positive integer, got {burst!r}")
        if not (math.isfinite(headroom) and headroom >= 0):
            raise ValueError(f"headroom must be a non-negative number of seconds, got {headroom!r}")
        self.rate = float(rate)
        self.burst = burst
        self.headroom = float(headroom)
        self.stop = stop
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._on_change = on_change
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()
        self._penalized_until = float("-inf")
        self._front = 0  # callers re-sending a throttled call: served before anyone else

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now

    def _need(self, tokens: int) -> float:
        return min(float(self.burst), tokens + self.rate * self.headroom)

    @property
    def available(self) -> float:
        """Tokens in the bucket now (0 while a penalty is running)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            return 0.0 if now < self._penalized_until else self._tokens

    def acquire(self, tokens: int = 1, timeout: float | None = None, *, front: bool = False,
                stop: StopSignal = None) -> bool:
        """Take ``tokens`` from the bucket, sleeping until they are there.

        Returns ``True`` once taken. With a ``timeout`` (seconds), returns ``False`` at once when
        the tokens cannot be had within it (tokens only arrive at the fixed rate, so this is
        known up front); ``timeout=0`` is a non-blocking try. ``front``: a call sent again after
        a 429 -- it goes before every other waiting caller. ``stop`` (else the bucket's own):
        when requested, the wait ends with :class:`QuotaWaitInterrupted`.
        """
        if tokens < 1 or tokens > self.burst:
            raise ValueError(f"can take between 1 and {self.burst} tokens at a time, asked for {tokens}")
        if _fenced_off():  # (a plain stop lets a call that needs no wait go: its step finishes)
            raise QuotaWaitInterrupted(self.name)
        stop = stop if stop is not None else self.stop
        deadline = None if timeout is None else self._clock() + max(0.0, timeout)
        if front:
            with self._lock:
                self._front += 1
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    self._refill(now)
                    wait = max(self._penalized_until - now,
                               max(0.0, self._need(tokens) - self._tokens) / self.rate)
                    blocked = not front and self._front > 0
                    if wait <= _TIME_EPSILON and not blocked:  # float noise must not spin us forever
                        self._tokens = max(0.0, self._tokens - tokens)
                        break
                    if blocked:
                        wait = max(wait, _YIELD)
                if deadline is not None and now + wait > deadline + _TIME_EPSILON:
                    return False
                if self._on_wait is not None:
                    self._on_wait(wait)
                if wait >= LONG_WAIT_LOGGED:
                    log.info("waiting %.0f s for a quota token of %s", wait, self.name or repr(self))
                pause(wait, stop, self._sleep, self.name)
        finally:
            if front:
                with self._lock:
                    self._front -= 1
        if self._on_change is not None:
            self._on_change(False)
        return True

    def penalize(self, seconds: float) -> None:
        """Hand out no tokens for ``seconds`` (after a 429), and empty the bucket.

        A 429 means Amazon's bucket is empty, so ours is emptied too: after the penalty, callers
        get only the tokens that refilled meanwhile, as on Amazon's side.
        """
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens = 0.0
            self._penalized_until = max(self._penalized_until, now + max(0.0, seconds))
        if self._on_change is not None:
            self._on_change(True)

    def set_rate(self, rate: float) -> None:
        """Change the refill rate from now on (tokens refilled so far keep the old rate)."""
        _check_rate(rate)
        with self._lock:
            self._refill(self._clock())
            self.rate = float(rate)

    # -- state across processes ----------------------------------------------------------------

    def snapshot(self, wall_offset: float) -> dict[str, Any]:
        """The bucket as JSON-able state, times as wall-clock epoch seconds
        (``wall_offset`` = wall clock minus this bucket's clock)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            state: dict[str, Any] = {"tokens": round(self._tokens, 6), "at": round(now + wall_offset, 3)}
            if self._penalized_until > now:
                state["penalized_until"] = round(self._penalized_until + wall_offset, 3)
            return state

    def restore(self, state: Mapping[str, Any], wall_offset: float) -> None:
        """Carry on from a :meth:`snapshot` (of this or another process): the tokens it had, plus
        what refilled since, and a penalty still running."""
        tokens, at = state.get("tokens"), state.get("at")
        if not (_number(tokens) and _number(at)):
            raise ValueError(f"quota state needs numeric tokens and at, got {dict(state)!r}")
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now + wall_offset - float(at))  # a clock that went back refills nothing
            self._tokens = min(float(self.burst), max(0.0, float(tokens)) + elapsed * self.rate)
            self._last = now
            until = state.get("penalized_until")
            if _number(until):
                self._penalized_until = max(self._penalized_until, float(until) - wall_offset)

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst})"


class QuotaStateStore(Protocol):
    """Where quota state lives across restarts (the ledger implements it)."""

    def load_quota_state(self, account_key: str) -> dict[str, dict[str, Any]]: ...

    def save_quota_state(self, account_key: str, states: dict[str, dict[str, Any]]) -> None: ...


class RateLimiter:
    """One :class:`TokenBucket` per (account, operation), created on first use.

    ``defaults`` maps operation -> (rate, burst) (normally :data:`DEFAULT_QUOTAS`; plugins add
    theirs with :meth:`add_defaults`). ``overrides`` maps operation -> ``{"rate": float,
    "burst": int}`` (either key optional) and applies to every account; ``account_overrides``
    maps account -> the same shape, for a seller whose usage plan Amazon raised. The effective
    rate is multiplied by ``pacing`` (0 < p <= 1); burst is not scaled. ``headroom``: see
    :class:`TokenBucket`. ``wall`` is the wall clock quota state is saved in (``clock`` is
    monotonic and means nothing to another process). ``stop``: see :meth:`use_stop`.
    """

    def __init__(self, defaults: Mapping[str, tuple[float, int]] | None = None,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                 account_overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                 pacing: float = DEFAULT_PACING, headroom: float = DEFAULT_HEADROOM,
                 clock: Callable[[], float] = daemon_clock.monotonic,
                 sleep: Callable[[float], None] | None = None,
                 wall: Callable[[], float] = daemon_clock.timestamp, stop: StopSignal = None,
                 save_every: float = DEFAULT_SAVE_EVERY) -> None:
        if not (0 < pacing <= 1):
            raise ValueError(f"pacing must be in (0, 1], got {pacing!r}")
        self.defaults = dict(DEFAULT_QUOTAS if defaults is None else defaults)
        self.overrides = {op: _check_override(op, o) for op, o in (overrides or {}).items()}
        self.account_overrides = {
            acct: {op: _check_override(f"{acct}/{op}", o) for op, o in ops.items()}
            for acct, ops in (account_overrides or {}).items()
        }
        self.pacing = pacing
        self.headroom = headroom
        self.stop = stop
        self.save_every = save_every
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._learned: dict[tuple[str, str], float] = {}  # x-amzn-RateLimit-Limit per (account, op)
        self._store: QuotaStateStore | None = None
        self._saved: dict[str, dict[str, dict[str, Any]]] = {}  # account -> state loaded at start
        self._dirty: set[str] = set()
        self._last_save: dict[str, float] = {}
        self._save_lock = threading.Lock()
        self._writing: dict[str, threading.Lock] = {}  # account -> held while its state is read and written

    def use_stop(self, stop: StopSignal) -> None:
        """Every wait of every bucket (existing and future) ends when ``stop`` is requested."""
        with self._lock:
            self.stop = stop
            for bucket in self._buckets.values():
                bucket.stop = stop

    def pause(self, seconds: float, what: str = "") -> None:
        """A retry back-off that ends on a stop request (:class:`QuotaWaitInterrupted`)."""
        pause(seconds, self.stop, self._sleep, what)

    def add_defaults(self, quotas: Mapping[str, tuple[float, int]]) -> None:
        """Contribute the default (rate, burst) of operations a plugin calls.

        An operation that already has a quota -- a core default, a configured quota, or another
        plugin's contribution -- keeps it: configuration always wins, and the first contribution
        wins over later ones. Safe to call again (each client of a plugin may do so).
        """
        checked = checked_defaults(quotas)
        with self._lock:
            for op, quota in checked.items():
                self.defaults.setdefault(op, quota)

    def configured_rate(self, account: str, operation: str) -> bool:
        """Whether the configuration sets this pair's rate (then Amazon's header is not used)."""
        return any("rate" in (layer or {}) for layer in (
            self.overrides.get(operation), self.account_overrides.get(account, {}).get(operation)))

    def quota(self, account: str, operation: str) -> tuple[float, int]:
        """The (rate, burst) Amazon grants for this pair, before pacing: configuration, else the
        rate Amazon reported, else the published default."""
        rate: float | None = None
        burst: int | None = None
        if operation in self.defaults:
            rate, burst = self.defaults[operation]
        rate = self._learned.get((account, operation), rate)
        for layer in (self.overrides.get(operation), self.account_overrides.get(account, {}).get(operation)):
            if layer:
                rate = layer.get("rate", rate)
                burst = layer.get("burst", burst)
        if rate is None or burst is None:
            raise KeyError(f"no quota (rate and burst) configured for SP-API operation {operation!r}")
        return rate, burst

    def bucket(self, account: str, operation: str) -> TokenBucket:
        key = (account, operation)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                return bucket
            saved = self._load(account).get(operation) or {}
            learned = saved.get("learned_rate")
            if _number(learned) and learned > 0 and not self.configured_rate(account, operation):
                self._learned.setdefault(key, float(learned))
            rate, burst = self.quota(account, operation)
            from . import metrics  # prometheus_client: loaded with a first bucket, not by every command

            bucket = TokenBucket(rate * self.pacing, burst, clock=self._clock, sleep=self._sleep,
                                 on_wait=metrics.quota_waiter(account, operation), headroom=self.headroom,
                                 stop=self.stop, name=f"{operation} of account {account}",
                                 on_change=lambda penalized: self._changed(account, penalized))
            if saved:
                try:
                    bucket.restore(saved, self._wall() - self._clock())
                except ValueError as exc:
                    log.warning("account %s: ignoring the saved %s quota state: %s", account, operation, exc)
            self._buckets[key] = bucket
            return bucket

    def learn_rate(self, account: str, operation: str, rate: float) -> bool:
        """Amazon reported ``rate`` (``x-amzn-RateLimit-Limit``) for this pair: use it from now
        on, unless the configuration sets the rate. Returns whether the bucket changed."""
        if not (_number(rate) and math.isfinite(rate) and rate > 0):
            return False
        if self.configured_rate(account, operation):
            return False
        key = (account, operation)
        with self._lock:
            if self._learned.get(key) == rate:
                return False
            before, _ = self.quota(account, operation)
            self._learned[key] = float(rate)
            bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.set_rate(rate * self.pacing)
        if before != rate:
            log.info("account %s: Amazon reports %s at %g requests/s (was %g); pacing to it",
                     account, operation, rate, before)
        self._changed(account, False)
        return True

    # -- state across restarts -----------------------------------------------------------------

    def attach_store(self, store: QuotaStateStore | None) -> None:
        """Restore buckets from ``store`` when first used, and save them to it."""
        self._store = store

    def reload(self, account: str) -> None:
        """Forget ``account``'s buckets, and their changes not saved yet, so their next use
        restores them from the store: for a worker that takes over an account another process
        has been calling for, or that lost one to another."""
        with self._lock:
            for key in [k for k in self._buckets if k[0] == account]:
                del self._buckets[key]
            self._saved.pop(account, None)
        with self._save_lock:
            self._dirty.discard(account)

    def _load(self, account: str) -> dict[str, dict[str, Any]]:
        if self._store is None:
            return {}
        if account not in self._saved:
            try:
                self._saved[account] = self._store.load_quota_state(account)
            except Exception as exc:  # noqa: BLE001 - a ledger hiccup must not stop a call
                log.warning("account %s: could not read the saved quota state: %s", account, exc)
                self._saved[account] = {}
        return self._saved[account]

    def _changed(self, account: str, penalized: bool) -> None:
        """A bucket of ``account`` changed: save the account's state after a 429 at once,
        otherwise when the last save is ``save_every`` seconds old."""
        if self._store is None:
            return
        with self._save_lock:
            self._dirty.add(account)
            due = self._clock() - self._last_save.get(account, float("-inf")) >= self.save_every
        if penalized or due:
            self.save(account)

    def save_due(self, may_save: Callable[[str], bool] = lambda account: True) -> None:
        """Save the accounts whose changes wait unsaved since a save ``save_every`` seconds old, and
        that ``may_save`` (the daemon: those whose lease it holds; another worker's state is not
        this one's to write). A change within ``save_every`` of the last save waits for the next
        change: a bucket used in a burst (a poll's pages) and then left idle would keep it unsaved
        until its next use or the shutdown, and a crash meanwhile lose it. The daemon calls this
        every tick."""
        with self._save_lock:
            now = self._clock()
            waiting = [account for account in sorted(self._dirty)
                       if now - self._last_save.get(account, float("-inf")) >= self.save_every]
        for account in waiting:
            if may_save(account):
                self.save(account)

    def states(self, account: str) -> dict[str, dict[str, Any]]:
        """What :meth:`save` stores for ``account``: operation -> bucket state."""
        offset = self._wall() - self._clock()
        with self._lock:
            pairs = [(op, b) for (acct, op), b in self._buckets.items() if acct == account]
            learned = {op: r for (acct, op), r in self._learned.items() if acct == account}
        out = {}
        for op, bucket in pairs:
            state = bucket.snapshot(offset)
            if op in learned:
                state["learned_rate"] = learned[op]
            out[op] = state
        return out

    def save(self, account: str | None = None) -> None:
        """Save the buckets of ``account`` (None: of every account with changes) now."""
        if self._store is None:
            return
        with self._save_lock:
            accounts = [account] if account is not None else sorted(self._dirty)
            for acct in accounts:
                self._dirty.discard(acct)
                self._last_save[acct] = self._clock()
            writing = [self._writing.setdefault(acct, threading.Lock()) for acct in accounts]
        for acct, lock in zip(accounts, writing, strict=True):
            # One save of an account at a time, each reading the buckets once the one before it is
            # written: a 429's penalty saved at once must not be overwritten by an older save
            # still under way, which read the buckets before the 429.
            with lock:
                states = self.states(acct)
                try:
                    self._store.save_quota_state(acct, states)
                except Exception as exc:  # noqa: BLE001 - losing one save costs a little pacing, no more
                    log.warning("account %s: could not save the quota state: %s", acct, exc)
                    with self._save_lock:  # still to save: at the next change, or the shutdown's save
                        self._dirty.add(acct)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_rate(rate: Any) -> None:
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")


def checked_defaults(quotas: Mapping[str, tuple[float, int]]) -> dict[str, tuple[float, int]]:
    """Operation -> (rate, burst) as floats and ints; ValueError naming the operation whose quota
    is not a positive rate and burst."""
    return {op: _check_default(op, quota) for op, quota in quotas.items()}


def _check_default(operation: str, quota: Any) -> tuple[float, int]:
    try:
        rate, burst = quota
    except (TypeError, ValueError):
        raise ValueError(f"default quota of {operation}: expected (rate, burst), got {quota!r}") from None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"default quota of {operation}: rate must be a positive number, got {rate!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"default quota of {operation}: burst must be a positive integer, got {burst!r}")
    return float(rate), burst


def _check_override(where: str, override: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(override, Mapping):
        raise ValueError(f"quota override {where}: expected a mapping with rate/burst, got {override!r}")
    unknown = set(override) - {"rate", "burst"}
    if unknown:
        raise ValueError(f"quota override {where}: unknown key(s) {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if "rate" in override:
        rate = override["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"quota override {where}: rate must be a positive number, got {rate!r}")
        out["rate"] = float(rate)
    if "burst" in override:
        burst = override["burst"]
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"quota override {where}: burst must be a positive integer, got {burst!r}")
        out["burst"] = burst
    return out
