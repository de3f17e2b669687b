"""How far this host's clock runs from Amazon's, read from the ``Date`` header of SP-API answers.

The purge erases buyer data by the host's clock. A clock set months ahead (a board without a
battery-backed clock, booted before NTP has set it) would erase the addresses of orders still to
ship. Every HTTP answer carries its server's time (``Date``, to the second:
https://www.rfc-editor.org/rfc/rfc9110#field.date), so the daemon compares it with its own and the
purge runs only while a recent answer shows the two close (engine/loop.py).
"""
from __future__ import annotations

import threading
from datetime import datetime
from email.utils import parsedate_to_datetime

from .. import clock

READ_EVERY = 10.0  # seconds between two readings: one header parsed per ten seconds, not per call


class ServerClock:
    """The host clock's lead over Amazon's (negative: behind), from the latest answer read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading: tuple[float, datetime, float] | None = None  # lead, clock.now(), clock.monotonic()
        self.asked_at: float | None = None  # clock.monotonic() of the last time Amazon was asked (host_clock)

    def saw(self, date_header: str | None) -> None:
        """Note an answer's ``Date`` (an unreadable or missing one is ignored)."""
        reading = self._reading
        if not date_header or (reading is not None and clock.monotonic() - reading[2] < READ_EVERY):
            return
        try:
            at = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if at.tzinfo is None:  # "-0000": no zone said
            return
        now = clock.now()
        with self._lock:
            self._reading = ((now - at).total_seconds(), now, clock.monotonic())

    def ahead_by(self) -> float | None:
        """Seconds the host's clock runs ahead of Amazon's now, or None before any answer was read.
        A step of the wall clock since the reading counts (the wall clock moved further than the
        monotonic one): a clock set ahead after the last answer is not trusted either."""
        with self._lock:
            if self._reading is None:
                return None
            lead, wall, mono = self._reading
        stepped = (clock.now() - wall).total_seconds() - (clock.monotonic() - mono)
        return lead + stepped
