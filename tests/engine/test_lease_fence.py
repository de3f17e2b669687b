"""A worker whose account lease moves to another worker while its order poll waits for a
searchOrders token: the wait ends, and the poll spends none of the new owner's quota."""
from __future__ import annotations

import threading
import time

import pytest

from connector.engine.loop import Engine
from connector.ledger import PackageState

pytestmark = pytest.mark.e2e


def test_an_order_poll_waiting_for_quota_ends_when_the_lease_goes(world):
    rt = world({"sandbox": {"orders": 3}}).runtime()
    try:
        account = rt.config.accounts[0]
        client = rt.amazon[account.name]
        bucket = client.limiter.bucket(account.name, "searchOrders")
        while bucket.acquire(timeout=0):
            pass
        bucket.acquire()  # the last one (after the headroom's half second): the next is minutes away
        answered: list[str] = []
        call = client.call

        def counted(operation, *args, **kwargs):
            result = call(operation, *args, **kwargs)
            answered.append(operation)
            return result

        client.call = counted
        owned = threading.Event()
        owned.set()
        rt.acts_for = lambda name: owned.is_set()  # the lease, as the heartbeat thread keeps it
        engine = Engine(rt)
        failed: list[int] = []
        poll = threading.Thread(target=lambda: failed.append(engine.poll_accounts([account])), daemon=True)
        poll.start()
        time.sleep(0.5)
        assert poll.is_alive(), "the poll did not wait for its token"
        started = time.monotonic()
        owned.clear()  # another worker takes the account over
        poll.join(timeout=5)
        assert not poll.is_alive() and time.monotonic() - started < 2
        assert failed == [0] and "searchOrders" not in answered
        assert rt.ledger.get_watermark(account.name) is None
    finally:
        rt.close()


class OneAccountLease:
    """This worker's lease on one account, as the heartbeat thread keeps it (``owned`` cleared:
    another worker took the account over)."""

    shared = True
    leads = False

    def __init__(self, account: str) -> None:
        self.account = account
        self.held = threading.Event()
        self.held.set()

    def owns(self, account: str) -> bool:
        return account == self.account and self.held.is_set()

    def owned(self) -> set[str]:
        return {self.account} if self.held.is_set() else set()

    def stop(self) -> None:
        pass


def test_an_order_waiting_for_quota_stops_when_its_accounts_lease_goes(world):
    """The daemon drives an order whose confirmShipment waits minutes for its token, and the
    account's lease moves to another worker meanwhile: the wait ends, the confirmation is not
    sent (its claim handed back), and the order is not worked on here any more -- the new owner
    does, on its own buckets."""
    quotas = {"searchOrders": {"rate": 0.005, "burst": 1}, "confirmShipment": {"rate": 0.005, "burst": 2}}
    w = world({"sandbox": {"orders": 20}, "amazon": {"quotas": quotas},
               "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []},
               "engine": {"workers": 4, "poll_interval_seconds": 1}})
    rt = w.runtime()
    account = rt.config.accounts[0].name
    lease = rt.membership = OneAccountLease(account)
    bucket = rt.amazon[account].limiter.bucket(account, "confirmShipment")
    waits: list[float] = []
    bucket._on_wait = waits.append
    engine = Engine(rt, daemon=True)
    runner = threading.Thread(target=engine.run_forever, kwargs={"tick_seconds": 60}, daemon=True)
    try:
        runner.start()
        deadline = time.monotonic() + 60
        while not any(wait > 60 for wait in waits) and time.monotonic() < deadline:
            time.sleep(0.1)  # a third confirmation waits for its token, minutes away
        assert any(wait > 60 for wait in waits), (waits, rt.ledger.counts())
        time.sleep(0.5)
        lease.held.clear()  # another worker takes the account over
        time.sleep(2)
        states = {p.state for r in rt.ledger.orders() for p in rt.ledger.packages(r.order_id)}
        assert PackageState.CONFIRMING not in states  # the waiting confirmation handed its claim back
        assert w.state("spapi")["operation_calls"]["confirmShipment"]["total"] == 2
    finally:
        engine.stop()
        runner.join(10)
        rt.close()
    assert not runner.is_alive()
