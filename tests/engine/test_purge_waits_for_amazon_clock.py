"""The purge erases buyer data by the host's clock, so it runs only once an answer from Amazon
shows that clock not ahead of Amazon's by more than an hour: a host booted with its clock months
ahead must not erase the addresses of orders still to ship. Nor may it wait for ever, keeping
every address, where the daemon makes no SP-API call of its own."""
from __future__ import annotations

import logging

import pytest
import requests

from connector import clock
from connector.engine import loop
from connector.engine.loop import Engine

from .test_amazon_credentials import ACCOUNTS, FAST

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

DAYS = 2 * 86400.0


@pytest.fixture
def purges(monkeypatch) -> list[int]:
    """The purges the engine ran (each one's count of addresses erased)."""
    ran: list[int] = []
    real_purge = loop.purge_expired_pii
    monkeypatch.setattr(loop, "purge_expired_pii", lambda rt: ran.append(real_purge(rt)))
    return ran


def _move_emulators(w, seconds: float) -> None:
    for server in w.sandbox.servers.values():
        requests.post(server.url + "/_sandbox/clock", json={"advance_seconds": seconds},
                      timeout=10).raise_for_status()


def test_the_purge_waits_for_amazon_s_clock_to_agree_with_the_host_s(world, purges, caplog):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        engine = Engine(rt)
        with caplog.at_level(logging.INFO, logger="connector.engine"):
            engine._purge()  # nothing heard from Amazon yet: it is asked the time (the same as the host's)
            assert len(purges) == 1

            engine.poll_accounts()  # Amazon's Date: the same time as the host's

            clock.advance(DAYS)  # the host's clock alone moves two days ahead
            engine.poll_accounts()
            engine._purge()
            assert len(purges) == 1, "purged by a clock two days ahead of Amazon's"
            assert "48.0 h ahead of Amazon's" in caplog.text

            _move_emulators(w, DAYS)  # Amazon's time catches up (NTP fixed the host, as it were)
            clock.advance(11)  # (a new reading is taken at most every ten seconds)
            _move_emulators(w, 11)
            engine.poll_accounts()
            engine._purge()
            assert len(purges) == 2
            assert "purge of buyer data runs again" in caplog.text
    finally:
        rt.close()


def test_the_purge_waits_while_amazon_cannot_be_asked_the_time(world, purges, monkeypatch, caplog):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    for client in rt.amazon.values():  # Amazon unreachable
        monkeypatch.setattr(client, "endpoint", "http://127.0.0.1:9")
    try:
        engine = Engine(rt)
        with caplog.at_level(logging.INFO, logger="connector.engine"):
            engine._purge()
            engine._purge()
        assert purges == []
        waits = [r for r in caplog.records if "purge of buyer data waits" in r.getMessage()]
        assert len(waits) == 1 and "no answer from Amazon yet" in waits[0].getMessage()  # said once
    finally:
        rt.close()


@pytest.mark.parametrize("change, asked", [
    ({"refresh_token": "Atzr|revoked"}, False),  # every login refused: LWA's refusal carries the Date
    ({"orders_owner": "erp"}, True),  # an ERP submits the orders: no call at all, so Amazon is asked
], ids=["login-refused", "erp-accounts"])
def test_the_purge_does_not_wait_for_ever_where_the_daemon_makes_no_sp_api_call(
        world, write_config, purges, change, asked):
    w = world(FAST)
    w.config_path = write_config({**FAST, "accounts": [{**a, **change} for a in ACCOUNTS]})
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_pass()  # no SP-API call answers: the logins are refused, or there is nothing to do
        engine._purge()
        assert purges, f"the purge waits for ever: {engine._purge_waits}"
        assert (rt.amazon_clock.asked_at is not None) is asked
    finally:
        rt.close()
