"""Whether this host's clock can be trusted to erase buyer data by (see amazon/server_clock.py).

The purge runs only once this process has read an SP-API answer, and only while that answer (with
any step of the wall clock since) shows the host's clock at most an hour ahead of Amazon's. A clock
behind Amazon's only erases later, which is safe. A daemon with no seller account (an ERP that only
buys labels through it) has no Amazon time to compare with, and purges by its own clock.
"""
from __future__ import annotations

from .runtime import Runtime

AHEAD_LIMIT = 3600.0  # seconds the host may run ahead of Amazon's clock and still purge


def purge_wait_reason(rt: Runtime) -> str | None:
    """Why the purge must not erase now, or None when it may."""
    if not rt.amazon:
        return None
    ahead = rt.amazon_clock.ahead_by()
    if ahead is None:
        return "no answer from Amazon yet to check this host's clock against"
    if ahead > AHEAD_LIMIT:
        return (f"this host's clock is {ahead / 3600:.1f} h ahead of Amazon's: fix the clock (NTP), "
                "or buyer data is erased early")
    return None
