"""Whether this host's clock can be trusted to erase buyer data by (see amazon/server_clock.py).

The purge runs only once this process has read an SP-API answer, and only while that answer (with
any step of the wall clock since) shows the host's clock at most an hour ahead of Amazon's. A clock
behind Amazon's only erases later, which is safe. A daemon with no seller account (an ERP that only
buys labels through it) has no Amazon time to compare with, and purges by its own clock.

A process that made no SP-API call (its accounts' orders submitted by an ERP, a leader whose worker
holds no account's lease, every login refused since the start) asks Amazon the time itself: one
unsigned GET of an account's SP-API endpoint, whose answer (a refusal) carries Amazon's Date.
Waiting for an answer that never comes would keep every buyer address for ever.
"""
from __future__ import annotations

import logging

import requests

from .. import clock
from ..amazon.client import SpApiClient
from .runtime import Runtime

log = logging.getLogger("connector.engine")

AHEAD_LIMIT = 3600.0  # seconds the host may run ahead of Amazon's clock and still purge
ASK_EVERY = 300.0  # seconds between two unsigned GETs asking Amazon the time (not every pass)


def purge_wait_reason(rt: Runtime) -> str | None:
    """Why the purge must not erase now, or None when it may."""
    if not rt.amazon:
        return None
    ahead = rt.amazon_clock.ahead_by()
    if ahead is None:
        _ask_amazon_the_time(rt)
        ahead = rt.amazon_clock.ahead_by()
    if ahead is None:
        return "no answer from Amazon yet to check this host's clock against"
    if ahead > AHEAD_LIMIT:
        return (f"this host's clock is {ahead / 3600:.1f} h ahead of Amazon's: fix the clock (NTP), "
                "or buyer data is erased early")
    return None


def _ask_amazon_the_time(rt: Runtime) -> None:
    """Read Amazon's Date from an unsigned GET of an account's SP-API endpoint (no credentials
    sent, none needed: any answer carries the Date), until one answers; at most every
    :data:`ASK_EVERY` seconds, so an unreachable Amazon does not slow every pass by its timeouts."""
    asked = rt.amazon_clock.asked_at
    if asked is not None and clock.monotonic() - asked < ASK_EVERY:
        return
    rt.amazon_clock.asked_at = clock.monotonic()
    for client in rt.amazon.values():
        if not isinstance(client, SpApiClient):
            continue
        try:
            resp = client.session.get(client.endpoint + "/", timeout=client.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            log.info("asking Amazon the time at %s failed: %s", client.endpoint, type(exc).__name__)
            continue
        rt.amazon_clock.saw(resp.headers.get("Date"))
        if rt.amazon_clock.ahead_by() is not None:
            return
