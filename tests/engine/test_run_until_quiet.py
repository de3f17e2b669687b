"""`run --once` and the demo drive passes until nothing is left to do. A pass that changes nothing
ends them -- but not when it put orders off for a transient failure (an injected fault, a carrier
that did not answer): the next pass, which drives them again, may get through. Before, the demo with
faults injected ended now and then with an order still NEW or CONFIRMING."""
from __future__ import annotations

import threading
from types import SimpleNamespace

from connector.engine.loop import Engine, PassResult


def looped(results: list[PassResult], counts: list[dict], **kwargs) -> tuple[int, int]:
    """Engine.run_until_quiet over scripted passes: (passes run, passes scripted)."""
    passes = iter(results)
    seen = iter(counts)
    engine = SimpleNamespace(run_pass=lambda ingest: next(passes), stop_event=threading.Event(),
                             rt=SimpleNamespace(ledger=SimpleNamespace(counts=lambda: next(seen))))
    return Engine.run_until_quiet(engine, **kwargs), len(results)


def still(n: int, deferred: int) -> list[PassResult]:
    return [PassResult(driven=1, active_left=1, ingest_errors=0, deferred=deferred) for _ in range(n)]


def test_a_pass_that_changes_nothing_and_defers_nothing_ends_the_loop():
    ran, _ = looped(still(10, deferred=0), [{"NEW": 1}] * 10)
    assert ran == 2  # the first pass has nothing to compare with; the second changed nothing


def test_passes_that_put_orders_off_go_on_while_a_later_one_may_get_through():
    results = still(3, deferred=1) + [PassResult(driven=1, active_left=0, ingest_errors=0)]
    ran, scripted = looped(results, [{"NEW": 1}] * 3 + [{"VERIFIED": 1}])
    assert ran == scripted == 4  # the fourth pass got the order through


def test_patience_bounds_the_passes_that_change_nothing():
    ran, _ = looped(still(20, deferred=1), [{"NEW": 1}] * 20, patience=3)
    assert ran == 4  # the first, then three that changed nothing


def test_no_active_order_left_ends_the_loop_at_once():
    ran, _ = looped([PassResult(driven=3, active_left=0, ingest_errors=0)] * 5, [{"VERIFIED": 3}] * 5)
    assert ran == 1
