"""One order is driven by one thread at a time in a process, and the lock map does not grow with
every order the daemon has ever seen; a closed runtime starts no more quote threads."""
from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.e2e


def test_one_thread_drives_an_order_and_finished_locks_are_forgotten(world):
    rt = world({"sandbox": {"orders": 1}}).runtime()
    got: list[bool] = []

    def second() -> None:
        with rt.driving("111-0000000-0000001") as mine:
            got.append(mine)

    try:
        with rt.driving("111-0000000-0000001") as first:
            other = threading.Thread(target=second)
            other.start()
            other.join()
        assert first and got == [False]  # the second thread was turned away, not let in
        with rt.driving("111-0000000-0000001", wait=1) as again:
            assert again  # free once the first let go
        assert rt._order_locks == {}
    finally:
        rt.close()


def test_a_closed_runtime_starts_no_quote_threads(world):
    rt = world({"sandbox": {"orders": 1}}).runtime()
    pool = rt.quote_pool("yunexpress")
    assert rt.quote_pool("yunexpress") is pool  # one pool per carrier, kept
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.quote_pool("yunexpress")  # an order thread still quoting at close() gets no new pool
    assert rt._quote_pools == {}
