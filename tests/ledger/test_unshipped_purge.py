"""The purge's rule for orders nobody ships that are not held (connector/engine/purge.py): a NEW or
PLANNED order with no label claimed or bought loses its address at its ship-by (its arrival,
without one) + max transit + the retention, and is held ``address_purged`` in the same
transaction. Selected in SQL without decrypting anything, asked again under the write's lock, one
transaction per chunk. Every case runs on SQLite and PostgreSQL."""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from connector.engine.purge import UNBOUGHT_PACKAGE_STATES, UNSHIPPED_ORDER_STATES
from connector.holds import HoldReason
from connector.ledger import OrderState, PackageState, StaleStateError
from connector.ledger.crypto import PiiCipher
from connector.ledger.sql import SqlLedger
from connector.ledger.timestamps import to_text

from .test_order_queries import BUYER, ITEMS, T0, Clock, order

REASON = HoldReason.ADDRESS_PURGED.value
MESSAGE = "nobody shipped it; its buyer's address was erased"
DUE = T0 + timedelta(minutes=1)  # a cut-off past the orders' arrival (just after T0) and their ship-by


@pytest.fixture
def ledger(make_store) -> SqlLedger:
    return make_store(PiiCipher([Fernet.generate_key()]), clock=Clock())


def blind(make_store) -> SqlLedger:
    """The same database opened with a key that reads no address: what works through it decrypts
    nothing."""
    return make_store(PiiCipher([Fernet.generate_key()]))


def selected(store: SqlLedger, due_before) -> list[str]:
    return store.pii_unshipped_expired(unshipped=UNSHIPPED_ORDER_STATES, unbought=UNBOUGHT_PACKAGE_STATES,
                                       due_before=due_before)


def purge(store: SqlLedger, ids, due_before) -> list[str]:
    return store.purge_unshipped_pii(ids, unshipped=UNSHIPPED_ORDER_STATES, unbought=UNBOUGHT_PACKAGE_STATES,
                                     due_before=due_before, reason=REASON, message=MESSAGE)


def planned(ledger: SqlLedger, n: int):
    oid = order(n).order_id
    return ledger.plan_package(oid, "1", f"MFN-{oid}-1", "dhl", "STD", ITEMS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_selection_is_the_rule_read_order_by_order(ledger, make_store, seed) -> None:
    """Orders in assorted states, ship-bys (some none), arrivals and packages: the SQL selects
    exactly the unpurged NEW or PLANNED orders due by ship-by (arrival without one) whose every
    package is planned, failed or voided -- a claim or any bought label keeps the address."""
    rng = random.Random(seed)
    arrived = {}
    for n in range(80):
        ship_by = None if n % 5 == 0 else T0 + timedelta(days=rng.uniform(-40, 40))
        ledger.upsert_order(order(n, ship_by=ship_by))
    with ledger._write() as conn:
        for n in range(80):
            oid = order(n).order_id
            arrived[oid] = T0 + timedelta(days=rng.uniform(-40, 40))
            state = rng.choice([OrderState.NEW, OrderState.NEW, OrderState.PLANNED, OrderState.PLANNED,
                                OrderState.LABEL_CLAIMED, OrderState.LABELED, OrderState.CONFIRMING,
                                OrderState.HELD, OrderState.VERIFIED, OrderState.VOIDING])
            conn.execute("UPDATE orders SET state = ?, created_at = ? WHERE order_id = ?",
                         (state.value, to_text(arrived[oid]), oid))
            for ref in range(rng.choice([0, 1, 1, 2])):
                conn.execute(
                    "INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service, state,"
                    " items, created_at, updated_at) VALUES (?, ?, ?, 'dhl', 'STD', ?, '[]', ?, ?)",
                    (oid, str(ref + 1), f"k-{oid}-{ref}", rng.choice(list(PackageState)).value, to_text(T0),
                     to_text(T0)))
    ledger.purge_pii([order(n).order_id for n in range(0, 80, 7)])
    for due_before in (T0 + timedelta(days=10), T0 + timedelta(days=30)):  # both clocks count
        expected = []
        for record in ledger.orders():  # the slow way: every order and its packages read
            clock = max(t for t in (record.order.ship_by, arrived[record.order_id]) if t)
            if (not record.pii_purged and record.state in UNSHIPPED_ORDER_STATES and clock <= due_before
                    and all(p.state in UNBOUGHT_PACKAGE_STATES for p in ledger.packages(record.order_id))):
                expected.append(record.order_id)
        found = selected(blind(make_store), due_before)  # no key needed: nothing decrypted
        assert found == sorted(expected)
        assert 0 < len(found) < 40


def test_a_new_or_planned_order_is_held_and_its_address_erased_in_one_go(ledger) -> None:
    for n in range(4):
        ledger.upsert_order(order(n, ship_by=T0 - timedelta(days=100)))
    waiting = planned(ledger, 1)  # PLANNED, its label not claimed yet
    claimed = ledger.advance(planned(ledger, 2), PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                             order_state=OrderState.LABEL_CLAIMED)  # a call to the carrier in flight
    labelled = ledger.advance(planned(ledger, 3), PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                              order_state=OrderState.LABEL_CLAIMED)
    ledger.advance(labelled, PackageState.LABEL_CLAIMED, PackageState.LABELED, order_state=OrderState.LABELED,
                   tracking_number="TRK3", label_path="/labels/3.pdf")  # bought, not confirmed yet
    new, plan, claim, label = (order(n).order_id for n in range(4))
    before = ledger.events()[-1].id

    assert selected(ledger, DUE) == [new, plan]
    assert purge(ledger, [new, plan, claim, label], DUE) == [new, plan]  # asked again in the write

    for oid in (new, plan):
        record = ledger.get_order(oid)
        assert record.state is OrderState.HELD and record.hold_reason == REASON
        assert record.hold_message == f"order {oid}: {MESSAGE}"
        assert record.held_from is OrderState.NEW  # a release plans it again (and planning holds it)
        assert record.pii_purged and record.order.ship_to is None
        notes = [h["note"] for h in ledger.history(oid)][-2:]
        assert notes == [f"{REASON}: order {oid}: {MESSAGE}", "pii purged"]
    assert [p.state for p in ledger.packages(plan)] == [PackageState.FAILED]
    assert "purged before a label was bought" in ledger.packages(plan)[0].error
    with pytest.raises(StaleStateError):  # a buy step that read the plan before the purge buys nothing
        ledger.advance(waiting, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                       order_state=OrderState.LABEL_CLAIMED)
    held = [(e.order_id, e.data["reason"]) for e in ledger.events(after=before) if e.type == "order.held"]
    assert held == [(new, REASON), (plan, REASON)]  # an ERP (mfn_order_held) hears why
    for oid, state in ((claim, OrderState.LABEL_CLAIMED), (label, OrderState.LABELED)):
        record = ledger.get_order(oid)  # a claim in flight, a label bought: the address stays
        assert record.state is state and record.order.ship_to == BUYER and not record.pii_purged
    assert claimed.state is PackageState.LABEL_CLAIMED

    assert purge(ledger, [new, plan, claim, label], DUE) == []  # idempotent: nothing twice
    assert selected(ledger, DUE) == []
    ledger.upsert_order(order(0, ship_by=T0 - timedelta(days=100)))  # Amazon's copy brings no address back
    assert ledger.get_order(new).order.ship_to is None


def test_an_order_that_moved_on_since_its_selection_keeps_its_address(ledger) -> None:
    """Selected while due, then -- before the purge's write -- its label was claimed, or Amazon
    moved its ship-by on: the write asks again under its lock and leaves it."""
    for n in range(3):
        ledger.upsert_order(order(n, ship_by=T0 - timedelta(days=100)))
    claimed_later, later_ship_by, due = (order(n).order_id for n in range(3))
    stale = selected(ledger, DUE)
    assert stale == [claimed_later, later_ship_by, due]
    ledger.advance(planned(ledger, 0), PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                   order_state=OrderState.LABEL_CLAIMED)
    ledger.upsert_order(order(1, ship_by=T0 + timedelta(days=3)))

    assert purge(ledger, stale, DUE) == [due]
    assert ledger.get_order(claimed_later).order.ship_to == BUYER
    assert ledger.get_order(later_ship_by).order.ship_to == BUYER
    assert ledger.get_order(later_ship_by).state is OrderState.NEW


def test_a_failure_between_two_writes_leaves_the_orders_as_they_were(ledger, monkeypatch) -> None:
    """One transaction: a crash (here a failing statement) after the hold and before the erasure
    -- or anywhere in the chunk -- leaves every order of it NEW with its address, and the next
    sweep does it all."""
    for n in range(3):
        ledger.upsert_order(order(n, ship_by=T0 - timedelta(days=100)))
    planned(ledger, 2)
    ids = selected(ledger, DUE)
    erase = type(ledger)._erase_buyer_data
    calls = []

    def dies_on_the_second(self, conn, order_id, state, now):
        calls.append(order_id)
        if len(calls) == 2:
            raise RuntimeError("killed")
        erase(self, conn, order_id, state, now)

    monkeypatch.setattr(type(ledger), "_erase_buyer_data", dies_on_the_second)
    with pytest.raises(RuntimeError, match="killed"):
        purge(ledger, ids, DUE)
    for n, state in ((0, OrderState.NEW), (1, OrderState.NEW), (2, OrderState.PLANNED)):
        record = ledger.get_order(order(n).order_id)
        assert record.state is state and record.order.ship_to == BUYER and not record.pii_purged
    assert ledger.packages(order(2).order_id)[0].state is PackageState.PLANNED
    assert not [e for e in ledger.events() if e.type == "order.held"]

    monkeypatch.setattr(type(ledger), "_erase_buyer_data", erase)
    assert purge(ledger, ids, DUE) == ids
    assert all(ledger.get_order(oid).pii_purged for oid in ids)


def test_without_a_ship_by_the_arrival_counts(ledger) -> None:
    ledger.upsert_order(replace(order(0), ship_by=None))  # arrives just after T0 (the ledger's clock)
    assert selected(ledger, T0) == []
    assert selected(ledger, T0 + timedelta(seconds=1)) == [order(0).order_id]


def test_the_selection_reads_the_index_of_kept_addresses_on_sqlite(ledger, db_path) -> None:  # SQLite alone
    plans = []

    class Explained:
        def __init__(self, conn) -> None:
            self.conn = conn

        def execute(self, sql, params):
            plans.append(" | ".join(r[3] for r in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params)))
            return self.conn.execute(sql, params)

    ledger._unshipped_due(Explained(ledger._conn()), UNSHIPPED_ORDER_STATES, UNBOUGHT_PACKAGE_STATES, T0)
    (plan,) = plans
    assert "INDEX orders_pii_kept" in plan, plan


def test_an_order_arriving_long_past_its_ship_by_keeps_its_address_the_whole_clock_from_its_arrival(
        ledger) -> None:
    """An order that reaches the ledger long after its ship-by -- an ERP's shipment (its ship-by may
    lie up to a year back) or a late order Amazon still shows unshipped -- came to be shipped now:
    "nobody ships it any more" is counted from its arrival too, waiting or held. Counted from the
    ship-by alone, the next hourly purge erased the address of an order submitted minutes before,
    before any label was bought for it."""
    ledger.upsert_order(order(0, ship_by=T0 - timedelta(days=200)))  # both arrive just after T0
    ledger.upsert_order(order(1, ship_by=T0 - timedelta(days=200)))
    ledger.hold(order(1).order_id, "unknown_sku", "SKU-RED is not in the item master")
    waiting, held = order(0).order_id, order(1).order_id

    def abandoned(due_before) -> list[str]:
        return ledger.pii_expired(gone=[], shipped=[], confirmed=[], ended_before=due_before,
                                  shipped_before=due_before, abandoned=[OrderState.HELD])

    an_hour_later = T0 + timedelta(hours=1) - timedelta(days=90)  # the cut-off an hour after it arrived
    assert selected(ledger, an_hour_later) == [] and abandoned(an_hour_later) == []
    assert purge(ledger, [waiting], an_hour_later) == []
    assert ledger.get_order(waiting).order.ship_to == BUYER
    assert selected(ledger, T0 + timedelta(seconds=1)) == [waiting]  # its arrival + the clock
    assert abandoned(T0 + timedelta(seconds=1)) == [held]
