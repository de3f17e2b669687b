"""The daemon's clock: every "now" of the engine and the ledger comes from here.

Production reads the system clock. A simulation (``mfn-connector sandbox simulate``) and tests
move it forward together with the emulators' simulated clocks, so a month of parcel lives --
first scans, deliveries, the PII retention window -- runs in minutes against the real daemon.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

_lock = threading.Lock()
_offset = timedelta()


def now() -> datetime:
    """The current time, timezone-aware UTC, shifted by :func:`advance`."""
    return datetime.now(timezone.utc) + _offset


def monotonic() -> float:
    """``time.monotonic()`` shifted by :func:`advance`: for token buckets and token caches, so a
    simulated day refills a quota and expires a token as a real one would."""
    return time.monotonic() + _offset.total_seconds()


def timestamp() -> float:
    """``time.time()`` shifted by :func:`advance`."""
    return time.time() + _offset.total_seconds()


def advance(seconds: float) -> None:
    """Move this process's clock forward (simulation and tests only)."""
    global _offset
    with _lock:
        _offset += timedelta(seconds=seconds)


def offset() -> timedelta:
    return _offset


def reset() -> None:
    """Back to the system clock."""
    global _offset
    with _lock:
        _offset = timedelta()
