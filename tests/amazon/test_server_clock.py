"""The host clock's lead over Amazon's, read from the answers' Date header."""
from __future__ import annotations

from datetime import timedelta
from email.utils import formatdate

import pytest

from connector.amazon.server_clock import READ_EVERY, ServerClock
from connector.model import utcnow

pytestmark = pytest.mark.usefixtures("daemon_clock")


def _date(lead_seconds: float) -> str:
    """Amazon's Date header when the host's clock runs ``lead_seconds`` ahead of it."""
    return formatdate((utcnow() - timedelta(seconds=lead_seconds)).timestamp(), usegmt=True)


def test_no_answer_read_yet_says_nothing():
    watch = ServerClock()
    for header in (None, "", "yesterday", "Mon, 07 Dec 2026 00:00:00 -0000"):  # unreadable, or no zone
        watch.saw(header)
    assert watch.ahead_by() is None


def test_the_lead_is_read_to_the_second_and_once_per_ten_seconds(daemon_clock):
    watch = ServerClock()
    watch.saw(_date(7200))
    assert 7199 <= watch.ahead_by() <= 7202
    watch.saw(_date(0))  # within READ_EVERY of the last reading: not parsed
    assert watch.ahead_by() > 7000
    daemon_clock.advance(READ_EVERY + 1)  # (both of the daemon's clocks: no step of the wall clock)
    assert 7199 <= watch.ahead_by() <= 7202
    watch.saw(_date(-30))  # behind Amazon's
    assert -31 <= watch.ahead_by() <= -28


def test_a_wall_clock_step_ahead_after_the_reading_counts(monkeypatch):
    watch = ServerClock()
    watch.saw(_date(0))
    from connector import clock

    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=365))  # the wall clock alone
    assert watch.ahead_by() > 364 * 86400
