"""A carrier's quote waiting for an SP-API token (Amazon Buy Shipping's getRates) runs on a quote
thread, not the order's: a stop request, or the account's lease moving, must end it as it ends a
wait on the order's own thread -- nothing sent, and the order neither planned without that carrier
nor put off."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from connector.engine.shopping import _quote_all
from connector.ratelimit import QuotaWaitInterrupted, TokenBucket, fence


class WaitingCarrier:
    """A quote that waits for its account's token (the bucket is empty for minutes)."""

    quote_calls_carrier = False

    def __init__(self, stop: threading.Event) -> None:
        self.bucket = TokenBucket(0.001, 1, stop=stop, name="getRates of account demo-na")
        self.bucket.acquire()
        self.sent = 0
        self.ended = threading.Event()

    def quote(self, request):
        try:
            self.bucket.acquire()
            self.sent += 1
            return []
        finally:
            self.ended.set()


@pytest.fixture
def quoting():
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quote")
    carrier = WaitingCarrier(stop)
    rt = SimpleNamespace(engine=SimpleNamespace(quote_timeout_seconds=3.0), carriers={"amzn": carrier},
                         quote_pool=lambda code: pool)

    def ask():
        failures, unanswered, refused = [], [], []
        quotes = _quote_all(rt, SimpleNamespace(ship_to=None), [("amzn", None)], failures, unanswered,
                            refused)
        return quotes, failures, unanswered

    yield SimpleNamespace(ask=ask, stop=stop, carrier=carrier)
    stop.set()  # (frees a quote thread left waiting)
    pool.shutdown(wait=True)


def test_a_quote_waiting_for_a_token_ends_when_the_orders_account_lease_goes(quoting) -> None:
    started = time.monotonic()
    with fence(lambda: True), pytest.raises(QuotaWaitInterrupted):  # the lease is another worker's
        quoting.ask()
    assert time.monotonic() - started < 1 and quoting.carrier.ended.wait(1)
    assert quoting.carrier.sent == 0


def test_a_quote_whose_token_wait_a_stop_ended_is_no_failed_quote(quoting) -> None:
    threading.Timer(0.3, quoting.stop.set).start()  # SIGTERM while the quote waits
    with pytest.raises(QuotaWaitInterrupted):  # the step ends as at any stop: REST, nothing recorded
        quoting.ask()
    assert quoting.carrier.sent == 0
