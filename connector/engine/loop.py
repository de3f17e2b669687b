"""The sync loop: poll Amazon, then drive every due order in a bounded worker pool.

The loop only schedules. Each order is driven by one worker at a time (``steps.drive``); Amazon
calls are paced by the shared token buckets, so confirmations never outrun the quota however
many workers run. A stop request (SIGTERM/SIGINT) lets every step in flight finish and commit.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..amazon.errors import SpApiError
from ..ledger import ACTIVE_ORDER_STATES
from ..model import utcnow
from .ingest import ingest_account
from .purge import purge_expired_pii
from .runtime import Runtime
from .steps import drive

log = logging.getLogger("connector.engine")

PURGE_EVERY_SECONDS = 3600  # the retention window is days long; hourly sweeps are plenty


@dataclass
class PassResult:
    driven: int
    active_left: int
    ingest_errors: int


class Engine:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stop_event = threading.Event()
        self._last_purge = float("-inf")

    def stop(self) -> None:
        self.stop_event.set()

    def run_pass(self, *, ingest: bool = True, only_due: bool = False) -> PassResult:
        """Ingest (optionally), then drive the active orders; ``only_due`` respects deferrals."""
        errors = 0
        if ingest:
            for account in self.rt.config.data["accounts"]:
                if self.stop_event.is_set():
                    break
                try:
                    ingest_account(self.rt, account)
                except SpApiError as exc:  # one account's trouble never stops the others
                    errors += 1
                    log.error("account %s: order poll failed: %s", account["name"], exc)
        due = self.rt.ledger.orders(ACTIVE_ORDER_STATES, due_before=utcnow() if only_due else None)
        workers = self.rt.engine_setting("workers")
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="order") as pool:
            futures = [pool.submit(drive, self.rt, r.order_id, self.stop_event.is_set) for r in due]
            try:
                for future in futures:
                    future.result()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        if not self.stop_event.is_set() and time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            purge_expired_pii(self.rt)
        left = len(self.rt.ledger.orders(ACTIVE_ORDER_STATES))
        return PassResult(driven=len(due), active_left=left, ingest_errors=errors)

    def run_until_quiet(self, *, max_passes: int = 20) -> int:
        """Passes until no active order is left or a pass changes nothing (for --once loops)."""
        passes = 0
        previous = None
        while passes < max_passes and not self.stop_event.is_set():
            result = self.run_pass(ingest=passes == 0)
            passes += 1
            counts = self.rt.ledger.counts()
            if result.active_left == 0 or counts == previous:
                break
            previous = counts
        return passes

    def run_forever(self, *, tick_seconds: float = 2.0) -> None:
        poll_interval = self.rt.engine_setting("poll_interval_seconds")
        next_poll = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            do_ingest = now >= next_poll
            if do_ingest:
                next_poll = now + poll_interval
            self.run_pass(ingest=do_ingest, only_due=True)
            self.stop_event.wait(tick_seconds)
        log.info("stopped: every step in flight finished and was committed")
