"""Named kill points for crash tests: ``MFN_CONNECTOR_CRASH_AT=after_claim`` (or ``after_claim:3``
for the third time the point is reached) SIGKILLs the process right there.

This is how the test suite proves that every step survives a kill at its most dangerous line.
It costs one dictionary lookup when the variable is unset.
"""
from __future__ import annotations

import os
import signal
import threading

ENV = "MFN_CONNECTOR_CRASH_AT"
# In flow order. "*_call" points sit between an external call that succeeded and the commit
# recording it: the windows where a naive daemon buys twice or confirms twice.
POINTS = ("after_claim", "after_create_call", "after_create", "after_label", "before_confirm",
          "after_confirm_call", "after_confirm", "after_verify", "after_track_call", "after_track",
          "after_void_claim", "after_cancel_call", "after_void")
# Right after the label step's decisions that record the package and hold the order in one
# transaction: a first create the carrier refused (the claim given up, held carrier_rejected), and a
# claim the order no longer wants settled with the label found (for an order shipped elsewhere,
# recorded and held shipped_elsewhere together). Reached only on those paths, so not among POINTS,
# each of which an ordinary run reaches in turn (tests/e2e/test_crash.py kills at each by name).
DECISION_POINTS = ("after_create_refused", "after_claim_settled")
# Bulk confirmation by feed (engine/feeds.py), in flow order: the feed's packages claimed, its
# document uploaded, createFeed answered (the window where a feed is sent twice), its id stored,
# and its processing report read but not applied.
FEED_POINTS = ("after_feed_claim", "after_feed_upload", "after_create_feed_call", "after_feed_submitted",
               "before_feed_settle")
# Between an overdue feed's accepted cancelFeed and the getFeed that settles it (reached only by a
# feed Amazon leaves IN_QUEUE for amazon.feeds.max_processing_seconds, so not in FEED_POINTS).
FEED_CANCEL_POINT = "after_cancel_feed_call"
WEBHOOK_POINT = "after_webhook_post"  # between a receiver's 2xx and the commit recording it

_lock = threading.Lock()
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
