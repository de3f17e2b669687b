"""An order whose stored address no configured key reads (an old key removed too soon) read
again by the order poll: the poll goes on with the orders after it and moves its watermark,
instead of failing the account's whole poll at that order, poll after poll (the watermark
stays, so the same order fails the next poll too)."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.fernet import Fernet

from connector.engine.ingest import ingest_account
from connector.ledger import OrderState
from connector.ledger.crypto import PiiCipher
from connector.model import iso, utcnow

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("state", [OrderState.PLANNED, OrderState.HELD])
def test_an_order_whose_address_no_key_reads_does_not_stop_the_poll(world, state):
    rt = world({"sandbox": {"orders": 4}}).runtime()
    try:
        account = rt.config.accounts[0]
        client = rt.amazon[account.name]
        real = client.search_orders_pages
        first: list[dict[str, Any]] = []

        def recorded(**kwargs: Any):
            for page in real(**kwargs):
                first.extend(copy.deepcopy(page["orders"]))
                yield page

        client.search_orders_pages = recorded
        ingest_account(rt, account)
        raw = next(r for r in first if r["fulfillment"]["fulfillmentStatus"] not in ("CANCELLED", "SHIPPED"))
        later = copy.deepcopy(raw)
        later["orderId"] = "111-0000000-0000009"  # an order after it in the same sweep
        order_id = raw["orderId"]
        if state is OrderState.PLANNED:
            rt.ledger.set_order_state(order_id, [OrderState.NEW], OrderState.PLANNED)
        else:  # held by the drive for its unreadable address; Amazon now sends it without one
            rt.ledger.hold(order_id, "ledger_inconsistent", f"order {order_id}: cannot be decrypted")
            del raw["recipient"]
        rt.ledger._conn().execute("UPDATE orders SET pii = ? WHERE order_id = ?",  # a key removed too soon
                                  (PiiCipher([Fernet.generate_key()]).encrypt({"v": 1}), order_id))
        mark = rt.ledger.get_watermark(account.name)

        def again(**kwargs: Any):
            yield {"orders": [raw, later], "pagination": {}, "lastUpdatedBefore": iso(utcnow())}

        client.search_orders_pages = again
        ingest_account(rt, account)
        assert rt.ledger.order_detail(later["orderId"]) is not None, "the order after it was not stored"
        assert rt.ledger.get_watermark(account.name) > mark
        assert rt.ledger.order_detail(order_id)[0].state is state
    finally:
        rt.close()
