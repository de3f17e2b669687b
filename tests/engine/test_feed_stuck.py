"""A feed Amazon never finishes processing (it can stay IN_QUEUE or IN_PROGRESS for days): once
``amazon.feeds.max_processing_seconds`` have passed since its createFeed, it is given up (here
cancelled, still IN_QUEUE: tests/engine/test_feed_cancel.py has the details), and the account
confirms by confirmShipment for a while, so that no order waits for ever, unconfirmed and not
held."""
from __future__ import annotations

import pytest

from connector.engine import feeds as feeds_mod
from connector.engine.loop import drive
from connector.ledger import ACTIVE_ORDER_STATES, OrderState

from ..e2e.helpers import advance, feeds_config, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_feed_amazon_never_processes_does_not_keep_its_orders_waiting_for_ever(world):
    config = feeds_config(40)
    config["sandbox"]["emulators"]["spapi"]["feeds"]["in_queue_seconds"] = 10 ** 8  # stuck IN_QUEUE
    config["amazon"]["feeds"].update(batch_wait_seconds=0, max_rows=3, max_open_feeds=1)
    w = world(config)
    rt = w.runtime()
    try:
        ingest_all(rt)
        for record in rt.ledger.orders([OrderState.NEW]):
            drive(rt, record.order_id, lambda: False)
        labeled = [r.order_id for r in rt.ledger.orders([OrderState.LABELED])]
        assert len(labeled) > 3
        feeds_mod.run_feeds(rt)
        stuck = rt.ledger.feeds()  # one per account
        assert stuck and {f.state for f in stuck} == {"SUBMITTED"}
        members = {rt.ledger.get_package(m.package_id).order_id for f in stuck
                   for m in rt.ledger.feed_members(f.id)}

        def hours_pass(hours: int) -> None:  # the daemon's passes go on meanwhile
            for _ in range(hours // 4):
                advance(w, 4 * 3600)
                feeds_mod._state(rt).checked.clear()
                feeds_mod.run_feeds(rt)
                for order_id in labeled:
                    drive(rt, order_id, lambda: False)

        hours_pass(8)  # amazon.feeds.max_processing_seconds: 8 h, then cancelled (still IN_QUEUE)
        feeds_mod.run_feeds(rt)  # the next pass: getFeed shows them CANCELLED; settled
        assert {rt.ledger.get_feed_record(f.id).state for f in stuck} == {"FAILED"}
        confirmed = w.state("spapi")["confirmations"]
        assert all(o in confirmed for o in labeled if o not in members), "the account's other orders waited"

        hours_pass(5 * 24)  # every feed stuck: the stuck feeds' packages are read back, sent again, held
        confirmed = w.state("spapi")["confirmations"]
        waiting = [(o, rt.ledger.get_order(o).state.value) for o in labeled
                   if rt.ledger.get_order(o).state in ACTIVE_ORDER_STATES and o not in confirmed]
        assert not waiting, f"orders still waiting, unconfirmed and not held: {waiting}"
    finally:
        rt.close()
