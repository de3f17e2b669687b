"""A seller account whose Amazon login is refused (the app de-authorized: a seller who stopped using
the connector) makes no SP-API call, so no SP-API answer's Date shows Amazon's time. LWA's own answer
(its refusal included) is Amazon's and carries its Date: the purge must not wait for ever on a login
nobody will fix, keeping every stored buyer address."""
from __future__ import annotations

import pytest

from connector.engine import loop
from connector.engine.loop import Engine

from .test_amazon_credentials import ACCOUNTS, FAST

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_the_purge_reads_amazon_s_clock_from_a_refused_login(world, write_config, monkeypatch):
    w = world(FAST)
    revoked = [{**a, "refresh_token": "Atzr|revoked"} for a in ACCOUNTS]
    w.config_path = write_config({**FAST, "accounts": revoked})
    rt = w.runtime()
    purges: list[int] = []
    real_purge = loop.purge_expired_pii
    monkeypatch.setattr(loop, "purge_expired_pii", lambda rt: purges.append(real_purge(rt)))
    try:
        engine = Engine(rt)
        engine.poll_accounts()  # every login refused: no SP-API call is made
        engine._purge()
        assert purges, f"the purge waits for ever: {engine._purge_waits}"
    finally:
        rt.close()


def test_the_purge_asks_amazon_the_time_when_no_call_of_this_process_did(world, write_config, monkeypatch):
    """Accounts whose orders an ERP submits (``orders_owner: erp``), or a leader whose worker holds
    no account's lease, make no SP-API call of their own: the purge (the leader's job) must not wait
    for an answer that never comes."""
    w = world(FAST)
    erp = [{**a, "orders_owner": "erp"} for a in ACCOUNTS]
    w.config_path = write_config({**FAST, "accounts": erp})
    rt = w.runtime()
    purges: list[int] = []
    real_purge = loop.purge_expired_pii
    monkeypatch.setattr(loop, "purge_expired_pii", lambda rt: purges.append(real_purge(rt)))
    try:
        engine = Engine(rt)
        engine.run_pass()  # nothing to poll, nothing to confirm: no SP-API call
        engine._purge()
        assert purges, f"the purge waits for ever: {engine._purge_waits}"
    finally:
        rt.close()
