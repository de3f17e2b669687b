"""A worker whose account lease moves to another worker while its order poll waits for a
searchOrders token: the wait ends, and the poll spends none of the new owner's quota."""
from __future__ import annotations

import threading
import time

import pytest

from connector.engine.loop import Engine

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
