"""Client-side token buckets, one per (seller account, SP-API operation).

Amazon meters every operation with a token bucket per selling-partner account x application:
*rate* tokens are added per second up to *burst*; a call with an empty bucket is answered 429.
We mirror that bucket on our side and pace a little below it (``pacing``, default 0.9), so the
daemon normally never sees a 429; when it does (a restart with Amazon's bucket still drained, a
second app instance, a quota Amazon lowered) the client calls :meth:`TokenBucket.penalize`.

The core's published defaults live in :data:`DEFAULT_QUOTAS`: the Orders operations the daemon
itself calls, with the rate and burst Amazon documents for each operation (the models'
operation descriptions, https://github.com/amzn/selling-partner-api-models, and
https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits). A plugin that calls
other SP-API operations contributes their defaults with :meth:`RateLimiter.add_defaults`. Amazon
changes these numbers over time and can raise Orders plans per seller, so configuration may
override any of them per operation and per account, and configuration always wins.
``x-amzn-RateLimit-Limit`` is deliberately not used: Amazon sends it best-effort only.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import clock as daemon_clock
from . import metrics

# operation -> (rate in requests per second, burst), for the operations the core calls. Plugins add
# their own operations' defaults through RateLimiter.add_defaults.
DEFAULT_QUOTAS: dict[str, tuple[float, int]] = {
    # Orders API v2026-01-01
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    # Orders API v0 (shipment confirmation stays on v0)
    "confirmShipment": (2.0, 10),
}

DEFAULT_PACING = 0.9

_TIME_EPSILON = 1e-6  # seconds


class TokenBucket:
    """A thread-safe token bucket that blocks callers until a token is free.

    ``rate`` is in tokens per second, ``burst`` the bucket size; the bucket starts full.
    ``clock`` and ``sleep`` are injectable so tests can run on a fake clock; ``on_wait`` hears
    the seconds of every wait for a token before it starts (the quota-wait metric).
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = daemon_clock.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 on_wait: Callable[[float], None] | None = None) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a positive integer, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()
        self._penalized_until = float("-inf")

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now

    @property
    def available(self) -> float:
        """Tokens in the bucket now (0 while a penalty is running)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            return 0.0 if now < self._penalized_until else self._tokens

    def acquire(self, tokens: int = 1, timeout: float | None = None) -> bool:
        """Take ``tokens`` from the bucket, sleeping until they are there.

        Returns ``True`` once taken. With a ``timeout`` (seconds), returns ``False`` at once when
        the tokens cannot be had within it (tokens only arrive at the fixed rate, so this is
        known up front); ``timeout=0`` is a non-blocking try.
        """
        if tokens < 1 or tokens > self.burst:
            raise ValueError(f"can take between 1 and {self.burst} tokens at a time, asked for {tokens}")
        deadline = None if timeout is None else self._clock() + max(0.0, timeout)
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                wait = max(self._penalized_until - now, max(0.0, tokens - self._tokens) / self.rate)
                if wait <= _TIME_EPSILON:  # float noise of the clock must not spin us forever
                    self._tokens = max(0.0, self._tokens - tokens)
                    return True
            if deadline is not None and now + wait > deadline + _TIME_EPSILON:
                return False
            if self._on_wait is not None:
                self._on_wait(wait)
            self._sleep(wait)

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

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst})"


class RateLimiter:
    """One :class:`TokenBucket` per (account, operation), created on first use.

    ``defaults`` maps operation -> (rate, burst) (normally :data:`DEFAULT_QUOTAS`; plugins add
    theirs with :meth:`add_defaults`). ``overrides`` maps operation -> ``{"rate": float,
    "burst": int}`` (either key optional) and applies to every account; ``account_overrides``
    maps account -> the same shape, for a seller whose usage plan Amazon raised. The effective
    rate is multiplied by ``pacing`` (0 < p <= 1) so the client stays below Amazon's bucket;
    burst is not scaled.
    """

    def __init__(self, defaults: Mapping[str, tuple[float, int]] | None = None,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                 account_overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                 pacing: float = DEFAULT_PACING, clock: Callable[[], float] = daemon_clock.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not (0 < pacing <= 1):
            raise ValueError(f"pacing must be in (0, 1], got {pacing!r}")
        self.defaults = dict(DEFAULT_QUOTAS if defaults is None else defaults)
        self.overrides = {op: _check_override(op, o) for op, o in (overrides or {}).items()}
        self.account_overrides = {
            acct: {op: _check_override(f"{acct}/{op}", o) for op, o in ops.items()}
            for acct, ops in (account_overrides or {}).items()
        }
        self.pacing = pacing
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def add_defaults(self, quotas: Mapping[str, tuple[float, int]]) -> None:
        """Contribute the default (rate, burst) of operations a plugin calls.

        An operation that already has a quota -- a core default, a configured quota, or another
        plugin's contribution -- keeps it: configuration always wins, and the first contribution
        wins over later ones. Safe to call again (each client of a plugin may do so).
        """
        checked = {op: _check_default(op, quota) for op, quota in quotas.items()}
        with self._lock:
            for op, quota in checked.items():
                self.defaults.setdefault(op, quota)

    def quota(self, account: str, operation: str) -> tuple[float, int]:
        """The (rate, burst) Amazon grants for this pair, before pacing."""
        rate: float | None = None
        burst: int | None = None
        if operation in self.defaults:
            rate, burst = self.defaults[operation]
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
            if bucket is None:
                rate, burst = self.quota(account, operation)
                bucket = TokenBucket(rate * self.pacing, burst, clock=self._clock, sleep=self._sleep,
                                     on_wait=metrics.quota_waiter(account, operation))
                self._buckets[key] = bucket
            return bucket


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
