"""The light reads that keep a large ledger fast (connector/ledger/queries.py): each one agrees with
the slow way it replaces (records read one by one), decrypts nothing, and on SQLite reads an index
rather than scanning the orders. Every case runs on SQLite and PostgreSQL."""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet

from connector.engine.purge import _CONFIRMED, life_end
from connector.ledger import (
    ACTIVE_ORDER_STATES,
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    OrderState,
    PackageState,
)
from connector.ledger.crypto import PiiCipher, PiiDecryptError
from connector.ledger.sql import SqlLedger
from connector.ledger.timestamps import to_text
from connector.model import FulfillmentStatus

from .test_order_queries import ITEMS, SHIP_BY0, T0, Clock, order  # the same orders as the listings' tests


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def ledger(make_store, key: bytes) -> SqlLedger:
    return make_store(PiiCipher([key]), clock=Clock())


@pytest.fixture
def filled(ledger: SqlLedger) -> SqlLedger:
    """30 orders on three sites (one unknown), ship-by an hour apart (every fifth none), inserted
    out of ship-by order; 3 and 7 held; 10..15 planned (the odd ones with a second package, the
    first one failed), 12 and 13 labelled; 20 and 21 deferred."""
    for n in random.Random(7).sample(range(30), 30):
        ledger.upsert_order(order(n, site=("US", "DE", "")[n % 3], account="acme" if n % 2 else "zeta",
                                  ship_by=None if n % 5 == 4 else SHIP_BY0 + timedelta(hours=(n * 7) % 30)))
    ledger.hold(order(3).order_id, "unknown_sku", "order 3: SKU-RED is not in the catalog")
    ledger.hold(order(7).order_id, "manual", "held by an operator")
    for n in range(10, 16):
        oid = order(n).order_id
        package = ledger.plan_package(oid, "1", f"MFN-{oid}-1", "dhl", "STD", ITEMS)
        if n % 2:
            ledger.advance(package, PackageState.PLANNED, PackageState.FAILED, order_state=OrderState.NEW,
                           error="refused")
            ledger.plan_package(oid, "2", f"MFN-{oid}-2", "yunexpress", "EXP", ITEMS)
    for n in (12, 13):
        package = ledger.open_package(order(n).order_id)
        package = ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                                 order_state=OrderState.LABEL_CLAIMED)
        ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED,
                       order_state=OrderState.LABELED, tracking_number=f"TRK{n}",
                       label_path=f"/labels/{n}.pdf")
    for n in (20, 21):
        ledger.defer(order(n).order_id, T0 + timedelta(days=n - 19), "timeout")
    return ledger


def blind(make_store) -> SqlLedger:
    """The same database opened with a key that cannot read any address: whatever works through
    it decrypted nothing."""
    return make_store(PiiCipher([Fernet.generate_key()]))


def lines(ledger: SqlLedger, size: int, **filters) -> list:
    seen = []
    after = None
    while True:
        page = ledger.order_lines(after=after, limit=size, **filters)
        seen += page
        if len(page) < size:
            return seen
        after = (page[-1].created_at, page[-1].order_id)


@pytest.mark.parametrize("size", [1, 4, 100])
@pytest.mark.parametrize("filters", [{}, {"states": [OrderState.NEW, OrderState.HELD]}, {"states": []},
                                     {"ship_by_before": SHIP_BY0 + timedelta(hours=9)},
                                     {"states": ["LABELED"], "ship_by_before": SHIP_BY0 + timedelta(days=9)}])
def test_order_lines_are_the_order_pages_with_the_newest_package(filled, make_store, size, filters) -> None:
    expected = []
    for record, created_at in filled.order_page(limit=1000, **filters):
        packages = filled.packages(record.order_id)
        newest = packages[-1] if packages else None
        expected.append((record.order_id, record.order.site, record.state, record.order.ship_by,
                         record.hold_reason, record.held_from, created_at,
                         newest.carrier if newest else "", newest.tracking_number if newest else ""))
    assert [tuple(line) for line in lines(blind(make_store), size, **filters)] == expected
    if not filters:
        assert len(expected) == 30 and ("yunexpress", "") in {(e[7], e[8]) for e in expected}
        assert {("dhl", "TRK12"), ("yunexpress", "TRK13")} <= {(e[7], e[8]) for e in expected}


def test_counts_are_what_the_records_say(filled, make_store) -> None:
    records = filled.orders()
    led = blind(make_store)
    assert led.count_orders() == 30
    assert led.count_orders(ACTIVE_ORDER_STATES) == sum(r.state in ACTIVE_ORDER_STATES for r in records)
    assert led.count_orders([OrderState.HELD]) == 2 and led.count_orders([]) == 0
    assert led.state_site_counts() == Counter((r.state.value, r.order.site) for r in records)
    backlog = [OrderState.HELD, *ACTIVE_ORDER_STATES]
    assert led.state_site_counts(backlog) == Counter((r.state.value, r.order.site) for r in records
                                                     if r.state in backlog)
    assert led.state_site_counts([]) == {}


def test_held_summary_counts_and_gives_the_first_message(filled, make_store) -> None:
    filled.hold(order(8).order_id, "manual", "a second manual hold")
    expected: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in filled.orders([OrderState.HELD]):  # oldest update first
        expected[r.hold_reason].append((r.order_id, r.hold_message))
    assert blind(make_store).held_summary() == {k: (len(v), *v[0]) for k, v in expected.items()}
    assert set(expected) == {"unknown_sku", "manual"}


def test_labels_bought_count_every_label_not_voided_and_those_still_without_their_file(filled,
                                                                                     make_store) -> None:
    """The summary's "Labels by carrier": a label is counted once bought (LABEL_CREATED on), its file
    written or not (a full disk kept 61 of 65 out of it), whatever its order's state; not voided."""
    assert blind(make_store).labels_bought() == {"dhl": (1, 0), "yunexpress": (1, 0)}  # 12; 13's second
    for n in (10, 14, 15):  # bought; none of the files written yet
        package = filled.open_package(order(n).order_id)
        package = filled.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                                 order_state=OrderState.LABEL_CLAIMED)
        filled.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED,
                       order_state=OrderState.LABEL_CLAIMED, tracking_number=f"TRK{n}")
    filled.hold(order(14).order_id, "manual", "a label bought, then held")  # still bought
    voided = filled.open_package(order(12).order_id)
    voided = filled.advance(voided, PackageState.LABELED, PackageState.VOIDING,
                            order_state=OrderState.VOIDING)
    filled.advance(voided, PackageState.VOIDING, PackageState.VOIDED, order_state=OrderState.VOIDED)
    counts = blind(make_store).labels_bought()
    assert counts == {"dhl": (2, 2), "yunexpress": (2, 1)}  # 10, 14 | 13, 15 (their first: FAILED)
    assert counts["dhl"].bought == 2 and counts["dhl"].awaiting_file == 2


def test_schedule_is_earliest_ship_by_first_without_reading_buyer_data(filled, make_store) -> None:
    def slow(due_before=None):
        records = filled.orders(ACTIVE_ORDER_STATES, due_before=due_before)
        return sorted(((r.order_id, r.order.account, r.order.ship_by) for r in records),
                      key=lambda k: (k[2] or datetime.max.replace(tzinfo=timezone.utc), k[0]))

    # retries whose time will have come (new, planned, labelled; with a ship-by and without; 0, the
    # earliest ship-by, among the last to be retried), and one parked past it, beside 20 (due) and
    # 21 (parked): every part of the limited read has rows to give
    for n, hours in ((0, 23), (5, 3), (9, 20), (12, 1), (14, 2), (24, 25), (16, 30)):
        filled.defer(order(n).order_id, T0 + timedelta(hours=hours), "timeout")
    led = blind(make_store)
    keys = led.schedule(ACTIVE_ORDER_STATES)
    assert [tuple(k) for k in keys] == slow() and len(keys) == 28
    assert keys[-1].ship_by is None and keys[0].ship_by == SHIP_BY0
    due = led.schedule(ACTIVE_ORDER_STATES, due_before=T0 + timedelta(days=1, hours=1))
    assert [tuple(k) for k in due] == slow(T0 + timedelta(days=1, hours=1))
    due_ids = {k.order_id for k in due}
    assert order(21).order_id not in due_ids and order(20).order_id in due_ids
    assert order(16).order_id not in due_ids and {order(n).order_id for n in (0, 5, 9, 12, 14, 24)} <= due_ids
    assert led.schedule([]) == []
    accounts = {k.account for k in keys}
    left_out = sorted(accounts)[0]
    rest = led.schedule(ACTIVE_ORDER_STATES, except_accounts=[left_out])
    assert [tuple(k) for k in rest] == [tuple(k) for k in keys if k.account != left_out] and rest
    # With a limit, each state is read in the index's order and cut there: the same first orders
    # (orders without a ship-by last), every filter kept, across the states and the empty ship-bys.
    for limit in (1, 2, 5, 9, 27, 28, 40):
        assert led.schedule(ACTIVE_ORDER_STATES, limit=limit) == keys[:limit]
        assert led.schedule(ACTIVE_ORDER_STATES, due_before=T0 + timedelta(days=1, hours=1),
                            limit=limit) == due[:limit]
        assert led.schedule(ACTIVE_ORDER_STATES, except_accounts=[left_out], limit=limit) == rest[:limit]
        assert led.schedule(ACTIVE_ORDER_STATES, accounts=[left_out], limit=limit) == [
            k for k in keys if k.account == left_out][:limit]
    many = [*accounts, *(f"seller-{n}" for n in range(1200))]  # a 3PL's worker: bound once, not a part each
    assert led.schedule(ACTIVE_ORDER_STATES, accounts=many, except_accounts=many[2:], limit=7) == keys[:7]
    assert led.schedule([OrderState.PLANNED, OrderState.LABELED], limit=3) == [
        k for k in keys if k.order_id in {order(n).order_id for n in (10, 11, 14, 15, 12, 13)}][:3]


def test_soonest_ship_by_and_attempted_pages(filled, make_store) -> None:
    led = blind(make_store)
    backlog = [OrderState.HELD, *ACTIVE_ORDER_STATES]
    soonest = led.soonest_ship_by(backlog, limit=5)
    dated = sorted((r for r in filled.orders(backlog) if r.order.ship_by), key=lambda r: r.order.ship_by)
    assert [r.order_id for r in soonest] == [r.order_id for r in dated[:5]]
    assert all(r.order.ship_to is None for r in soonest)
    retrying = led.order_page(states=ACTIVE_ORDER_STATES, attempted=True, limit=50)
    assert sorted(r.order_id for r, _ in retrying) == [order(20).order_id, order(21).order_id]
    assert len(led.order_page(attempted=False, limit=50)) == 28


def test_the_key_check_reads_the_newest_order_with_an_address(ledger, make_store) -> None:
    for n in range(3):
        ledger.upsert_order(order(n))
    ledger.purge_pii([order(2).order_id])  # the newest has none left: the one before is checked
    with pytest.raises(PiiDecryptError, match="restore the original key"):
        blind(make_store).check_key()
    ledger.check_key()
    ledger.purge_pii([order(0).order_id, order(1).order_id])
    other = blind(make_store)
    with pytest.raises(PiiDecryptError, match="not the key this ledger seals buyer data with"):
        other.check_key()  # nothing stored, but the ledger knows its key from its first start
    assert other.adopt_key()  # ... and takes another only while it holds no buyer data
    other.check_key()
    with pytest.raises(PiiDecryptError, match="not the key"):
        ledger.check_key()


# -- the purge's selection against the rule it replaces ------------------------------------------------

KEPT = [*SHIPPED_ORDER_STATES, *NOTHING_TO_SHIP_STATES, OrderState.HELD, OrderState.ISSUED]
PACKAGE_STATES = [PackageState.DELIVERED, PackageState.RETURNED, PackageState.CONFIRMED,
                  PackageState.IN_TRANSIT, PackageState.LOST, PackageState.VERIFIED, PackageState.VOIDED,
                  PackageState.FAILED, PackageState.LABELED]


def scramble(ledger: SqlLedger, seed: int) -> None:
    """Orders in assorted states with 0-2 packages in assorted states and times (some missing)."""
    rng = random.Random(seed)
    now = T0 + timedelta(days=60)
    for n in range(80):  # every fourth cancelled on Amazon
        ledger.upsert_order(replace(order(n), status=FulfillmentStatus.CANCELLED) if n % 4 == 1 else order(n))
    with ledger._write() as conn:
        for n in range(80):
            oid = order(n).order_id
            state = rng.choice([*KEPT, OrderState.NEW, OrderState.CONFIRMED])
            if n in (1, 5, 9):  # held, cancelled on Amazon (one of them purged already)
                state = OrderState.HELD
            conn.execute("UPDATE orders SET state = ? WHERE order_id = ?", (state.value, oid))
            for ref in range(rng.choice([0, 1, 1, 2])):
                def when():
                    return None if rng.random() < 0.2 else to_text(now - timedelta(days=rng.uniform(0, 70)))
                conn.execute(
                    "INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service, state,"
                    " items, created_at, updated_at, shipped_at, delivered_at, last_scan_at)"
                    " VALUES (?, ?, ?, 'dhl', 'STD', ?, '[]', ?, ?, ?, ?, ?)",
                    (oid, str(ref + 1), f"k-{oid}-{ref}", rng.choice(PACKAGE_STATES).value, to_text(T0),
                     to_text(T0), when(), when(), when()))
    ledger.purge_pii([order(n).order_id for n in range(0, 80, 9)])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pii_expired_selects_what_the_retention_rule_says(ledger, make_store, seed) -> None:
    scramble(ledger, seed)
    now, retention, fallback = T0 + timedelta(days=60), timedelta(days=30), timedelta(days=14)
    expected = []
    for record in ledger.orders(KEPT):  # the purge as it was: every finished order read
        if record.pii_purged:
            continue
        if record.state in NOTHING_TO_SHIP_STATES or (record.state is OrderState.HELD
                                                and record.order.status is FulfillmentStatus.CANCELLED):
            expected.append(record.order_id)
            continue
        ends = [end for p in ledger.packages(record.order_id) if (end := life_end(p, fallback))]
        if ends and max(ends) + retention <= now:
            expected.append(record.order_id)
    found = blind(make_store).pii_expired(
        gone=NOTHING_TO_SHIP_STATES, shipped=[*SHIPPED_ORDER_STATES, OrderState.HELD, OrderState.ISSUED],
        confirmed=_CONFIRMED, ended_before=now - retention, shipped_before=now - retention - fallback,
        cancelled=[OrderState.HELD])
    assert found == sorted(expected)
    assert 3 < len(found) < 60  # the seeds give both kinds


@pytest.mark.parametrize("seed", [1, 2])
def test_cancelled_on_amazon_names_the_orders_amazon_cancelled(ledger, make_store, seed, monkeypatch) -> None:
    from connector.ledger import queries

    scramble(ledger, seed)
    every = ledger.orders()
    expected = {r.order_id for r in every if r.order.status is FulfillmentStatus.CANCELLED}
    assert 0 < len(expected) < len(every)
    monkeypatch.setattr(queries, "_SQL_CHUNK", 7)  # several queries: the chunks' answers add up
    ids = [r.order_id for r in every]
    assert blind(make_store).cancelled_on_amazon(ids) == expected  # no key needed: nothing decrypted
    assert ledger.cancelled_on_amazon(ids[:3] + ["no-such-order"]) == expected & set(ids[:3])
    assert ledger.cancelled_on_amazon([]) == set()


def test_an_order_row_whose_data_is_not_json_leaves_the_others_amazon_status(ledger) -> None:
    """What Amazon says of an order whose stored data is not JSON (a hand edit or a restore gone
    wrong: the daemon holds it ledger_inconsistent) cannot be read: it is named in no status, and
    the others' are read (``orders list --due-within`` lists it, as due, and leaves the settled ones
    out). Read in SQL, that one row failed the whole read (SQLite: malformed JSON; PostgreSQL:
    invalid input syntax for type json), and with it the listing."""
    statuses = [FulfillmentStatus.CANCELLED, FulfillmentStatus.SHIPPED, FulfillmentStatus.CANCELLED,
                FulfillmentStatus.UNSHIPPED]
    for n, status in enumerate(statuses):
        ledger.upsert_order(replace(order(n), status=status))
    with ledger._write() as conn:
        conn.execute("UPDATE orders SET data = ? WHERE order_id = ?",
                     ('{"order_id": "' + order(2).order_id + '", "status": "CANC', order(2).order_id))
    ids = [order(n).order_id for n in range(4)]

    assert ledger.with_amazon_status(ids, (FulfillmentStatus.CANCELLED, FulfillmentStatus.SHIPPED)) == {
        ids[0], ids[1]}
    assert ledger.cancelled_on_amazon(ids) == {ids[0]}


def test_a_delivered_parcel_without_a_delivery_time_ends_at_its_last_scan_or_update(ledger, make_store):
    """DELIVERED with no ``delivered_at`` (the carrier's overall status said delivered, no event
    did: stored so before tracking took the newest scan then): its life ended at its last scan, else
    when it was last updated -- never kept for good. A delivery time, when there is one, wins."""
    now, retention, fallback = T0 + timedelta(days=60), timedelta(days=30), timedelta(days=14)

    def ago(days: float | None) -> str | None:
        return None if days is None else to_text(now - timedelta(days=days))

    cases = {0: (None, 40, 50), 1: (None, 10, 50), 2: (None, None, 40), 3: (None, None, 5), 4: (10, 40, 50)}
    for n in cases:
        ledger.upsert_order(order(n))
    with ledger._write() as conn:  # (delivered_at, last_scan_at, updated_at), days before now
        for n, (delivered, scanned, updated) in cases.items():
            conn.execute("UPDATE orders SET state = 'DELIVERED' WHERE order_id = ?", (order(n).order_id,))
            conn.execute("INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service,"
                         " state, items, created_at, updated_at, shipped_at, delivered_at, last_scan_at)"
                         " VALUES (?, '1', ?, 'dhl', 'STD', 'DELIVERED', '[]', ?, ?, ?, ?, ?)",
                         (order(n).order_id, f"k-{n}", ago(60), ago(updated), ago(55), ago(delivered),
                          ago(scanned)))
    found = blind(make_store).pii_expired(
        gone=NOTHING_TO_SHIP_STATES, shipped=[*SHIPPED_ORDER_STATES, OrderState.HELD, OrderState.ISSUED],
        confirmed=_CONFIRMED, ended_before=now - retention, shipped_before=now - retention - fallback,
        cancelled=[OrderState.HELD])
    assert found == [order(0).order_id, order(2).order_id]
    ends = {n: life_end(ledger.packages(order(n).order_id)[0], fallback) for n in cases}
    assert ends == {n: now - timedelta(days=[d for d in case if d is not None][0])
                    for n, case in cases.items()}  # the rule the SQL applies


def test_a_held_order_amazon_shows_shipped_elsewhere_goes_at_the_undelivered_parcels_fallback(ledger):
    """Held shipped_elsewhere or already_shipped: Amazon shows the order shipped, by someone else,
    and the daemon follows no parcel of it. Its address goes like an undelivered parcel's: its ship
    date (at the latest Amazon's last update of the order, which shows it shipped) + max transit +
    the retention; not while a parcel the daemon follows keeps it, nor for an unshipped hold."""
    from types import SimpleNamespace

    from connector.engine.purge import purge_expired_pii

    now, retention, fallback = T0 + timedelta(days=200), timedelta(days=30), timedelta(days=60)

    def shipped(n: int, days_ago: float) -> str:
        # a ship-by the rule for holds nobody settles (the next test) has not reached: this rule alone
        ledger.upsert_order(replace(order(n), status=FulfillmentStatus.SHIPPED,
                                    last_updated=now - timedelta(days=days_ago),
                                    ship_by=now - timedelta(days=20)))
        return order(n).order_id

    old_hand, recent_hand, followed = shipped(0, 95), shipped(1, 85), shipped(2, 95)
    labelled = shipped(3, 120)  # a label bought here meanwhile, held for a person to void
    package = ledger.plan_package(labelled, "1", f"MFN-{labelled}-1", "dhl", "STD", ITEMS)
    package = ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                             order_state=OrderState.LABEL_CLAIMED)
    ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED, order_state=OrderState.LABELED,
                   tracking_number="TRK3", label_path="/labels/3.pdf")
    ledger.upsert_order(replace(order(4), last_updated=now - timedelta(days=150),  # unshipped, due
                                ship_by=now - timedelta(days=10)))
    with ledger._write() as conn:  # our own parcel of it, delivered 5 days ago: 25 days to go
        conn.execute("INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service, state,"
                     " items, created_at, updated_at, shipped_at, delivered_at, last_scan_at)"
                     " VALUES (?, '1', 'k-followed', 'dhl', 'STD', 'DELIVERED', '[]', ?, ?, ?, ?, ?)",
                     (followed, *(to_text(now - timedelta(days=d)) for d in (100, 5, 99, 5, 5))))
    for n, reason in enumerate(["shipped_elsewhere", "already_shipped", "void_refused", "shipped_elsewhere",
                                "manual"]):
        ledger.hold(order(n).order_id, reason, "held")
    settings = SimpleNamespace(pii_retention_days=retention.days, max_transit_days=fallback.days)
    rt = SimpleNamespace(config=SimpleNamespace(ledger=settings), ledger=ledger)

    assert purge_expired_pii(rt, now=now) == 2

    assert {r.order_id for r in ledger.orders() if r.pii_purged} == {old_hand, labelled}
    assert ledger.get_package(package.id).label_erased_at is not None
    assert purge_expired_pii(rt, now=now + timedelta(days=6)) == 1  # 85 + 6 days: past ship + 60 + 30
    assert {r.order_id for r in ledger.orders() if r.pii_purged} == {old_hand, labelled, recent_hand}
    assert purge_expired_pii(rt, now=now + timedelta(days=26)) == 1  # its delivery + 30 days
    assert ledger.get_order(followed).pii_purged and not ledger.get_order(order(4).order_id).pii_purged


def test_a_hold_nobody_settles_loses_its_address_at_ship_by_plus_the_fallback(ledger):
    """An order held unknown_sku (or an ERP's order, or one held by hand) that nobody releases
    would keep the buyer's address for ever. Past its ship-by + max transit + the retention, nobody
    ships it any more: the address goes. Without a ship-by, its arrival in the ledger counts. Not
    while the daemon follows a parcel of it."""
    from types import SimpleNamespace

    from connector.engine.purge import purge_expired_pii

    now = T0 + timedelta(days=400)
    settings = SimpleNamespace(pii_retention_days=30, max_transit_days=60)
    rt = SimpleNamespace(config=SimpleNamespace(ledger=settings), ledger=ledger)
    due = {0: now - timedelta(days=91), 1: now - timedelta(days=89), 2: None, 3: now - timedelta(days=200)}
    for n, ship_by in due.items():
        ledger.upsert_order(replace(order(n), ship_by=ship_by))  # arrives at T0 (the ledger's clock)
        ledger.hold(order(n).order_id, "unknown_sku", "SKU-RED is not in the item master")
    with ledger._write() as conn:  # order 3: a parcel of it delivered 5 days ago is followed
        conn.execute("INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service, state,"
                     " items, created_at, updated_at, shipped_at, delivered_at, last_scan_at)"
                     " VALUES (?, '1', 'k-3', 'dhl', 'STD', 'DELIVERED', '[]', ?, ?, ?, ?, ?)",
                     (order(3).order_id, *(to_text(now - timedelta(days=d)) for d in (9, 5, 8, 5, 5))))

    assert purge_expired_pii(rt, now=now) == 2
    assert {r.order_id for r in ledger.orders() if r.pii_purged} == {order(0).order_id, order(2).order_id}
    assert purge_expired_pii(rt, now=now + timedelta(days=2)) == 1  # order 1's ship-by + 90 days
    assert not ledger.get_order(order(3).order_id).pii_purged  # its delivery + 30 days: not yet


def test_an_order_row_whose_data_is_not_json_keeps_no_other_address(ledger) -> None:
    """A held order whose stored data is not JSON (a hand edit or a restore gone wrong: the daemon
    holds it ledger_inconsistent) cannot tell what Amazon says of it, so the rules that read that
    pass it over; the purge of every other order goes on. Reading it in SQL failed the whole
    selection (SQLite: malformed JSON; PostgreSQL: invalid input syntax for type json), every
    hour, and no address was erased any more."""
    from types import SimpleNamespace

    from connector.engine.purge import purge_expired_pii

    now = T0 + timedelta(days=10)  # no ship-by + 90 days reached: the rules that read Amazon's status
    settings = SimpleNamespace(pii_retention_days=30, max_transit_days=60)
    rt = SimpleNamespace(config=SimpleNamespace(ledger=settings), ledger=ledger)
    ledger.upsert_order(replace(order(0), ship_by=now))  # its row garbled below
    ledger.upsert_order(replace(order(1), status=FulfillmentStatus.CANCELLED, ship_by=now))
    ledger.upsert_order(replace(order(2), status=FulfillmentStatus.SHIPPED, ship_by=now,
                                last_updated=now - timedelta(days=91)))
    ledger.upsert_order(replace(order(3), ship_by=now))  # held, nothing says it may go
    for n, reason in enumerate(["ledger_inconsistent", "manual", "shipped_elsewhere", "manual"]):
        ledger.hold(order(n).order_id, reason, "held")
    with ledger._write() as conn:
        conn.execute("UPDATE orders SET data = ? WHERE order_id = ?",
                     ('{"order_id": "' + order(0).order_id + '", "status": "CANC', order(0).order_id))
    ledger.upsert_order(order(4))
    with ledger._write() as conn:  # cancelled before a label was bought: nothing to keep
        conn.execute("UPDATE orders SET state = 'CANCELLED' WHERE order_id = ?", (order(4).order_id,))

    assert purge_expired_pii(rt, now=now) == 3
    ids = [order(n).order_id for n in range(5)]
    assert ledger.purged_orders(ids) == {ids[1], ids[2], ids[4]}


def test_an_order_row_whose_data_is_not_json_leaves_the_others_watched(ledger) -> None:
    """The ship-by guard and the parcel guard pass over an order whose stored data is not JSON (a
    hand edit or a restore gone wrong: the daemon holds it ledger_inconsistent), and keep its open
    alerts; every other order is watched. Reading its record raised, every five minutes: no
    ship-by alert was raised or cleared any more, nor were the guards after it run (the parcel
    guard, the valid-tracking rate's)."""
    from types import SimpleNamespace

    from connector.engine.watch import parcel_guard, ship_by_guard

    now = SHIP_BY0 - timedelta(hours=2)
    alerts = SimpleNamespace(ship_by_warning_hours=12)
    rt = SimpleNamespace(config=SimpleNamespace(alerts=alerts), ledger=ledger)
    for n in range(4):
        ledger.upsert_order(order(n))
    ledger.hold(order(0).order_id, "ledger_inconsistent", "held")
    for kind in ("ship_by_near", "parcel_lost"):
        ledger.raise_alert(kind, order(0).order_id, "raised before its row was garbled", {})
    ledger.raise_alert("parcel_lost", order(2).order_id, "lost", {})
    ledger.raise_alert("ship_by_near", order(3).order_id, "near", {})
    with ledger._write() as conn:
        conn.execute("UPDATE orders SET data = ? WHERE order_id = ?",
                     ('{"order_id": "' + order(0).order_id + '", "status": "CANC', order(0).order_id))
        conn.execute("UPDATE orders SET state = 'CANCELLED' WHERE order_id IN (?, ?)",
                     (order(2).order_id, order(3).order_id))  # nothing to ship: their alerts clear

    ship_by_guard(rt, now)
    parcel_guard(rt)
    open_alerts = {(a.kind, a.subject) for a in ledger.alerts()}
    assert open_alerts == {("ship_by_near", order(0).order_id), ("parcel_lost", order(0).order_id),
                           ("ship_by_near", order(1).order_id)}


def test_pii_expired_refuses_an_end_state_among_the_confirmed(ledger) -> None:
    with pytest.raises(ValueError, match="DELIVERED or RETURNED"):
        ledger.pii_expired(gone=[], shipped=[OrderState.DELIVERED], confirmed=[PackageState.DELIVERED],
                           ended_before=T0, shipped_before=T0)


# -- SQLite: the plans read indexes, not the orders table ------------------------------------------------

def test_the_large_ledger_reads_use_indexes_on_sqlite(filled, db_path) -> None:  # db_path: SQLite alone
    conn = filled._conn()

    def plan(sql: str, *params) -> str:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())

    page = plan("SELECT order_id, site, state, ship_by, hold_reason, held_from, created_at FROM orders"
                " WHERE (created_at, order_id) > (?, ?) ORDER BY created_at, order_id LIMIT 10", "", "")
    assert "COVERING INDEX orders_listing" in page
    newest = plan("SELECT 1 FROM packages n WHERE n.order_id = ? AND n.id > ?", "x", 1)
    assert "COVERING INDEX packages_newest" in newest
    key = plan("SELECT order_id, pii FROM orders WHERE pii IS NOT NULL ORDER BY created_at DESC,"
               " order_id DESC LIMIT 1")
    assert "INDEX orders_listing" in key and "TEMP B-TREE" not in key
    sites = plan("SELECT state, site, COUNT(*) FROM orders WHERE state IN (?, ?) GROUP BY state, site",
                 "NEW", "HELD")
    assert "COVERING INDEX orders_state_site" in sites
    purge = plan("SELECT o.order_id FROM orders o WHERE o.pii_purged_at IS NULL AND o.state IN (?, ?)",
                 "DELIVERED", "CANCELLED")
    assert "INDEX orders_pii_kept" in purge


def test_the_dispatchers_read_of_what_is_due_reads_an_index_alone_on_sqlite(filled, db_path) -> None:
    # The daemon sends it each time an order worker comes free. Reading rows, or sorting every due
    # order, on a peak's thousands of orders cost more than anything else the dispatcher did.
    conn = filled._conn()
    sent: list[str] = []
    conn.set_trace_callback(sent.append)  # the statement as sent, its parameters filled in
    try:
        filled.schedule(ACTIVE_ORDER_STATES, due_before=T0 + timedelta(days=1), accounts=["acme", "zeta"],
                        except_accounts=["other"], limit=40)
    finally:
        conn.set_trace_callback(None)
    (statement,) = [s for s in sent if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    plan = conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
    reads = [r[3] for r in plan if r[3].startswith(("SEARCH", "SCAN orders"))]
    # Per state: the orders without a retry time (with a ship-by, and without) read in the index's
    # order and cut at the limit, no sort. Then those whose retry time has come, of every state: a
    # range of retry times per state, sorted. So no parked order (its retry time ahead) is read,
    # nor every due order sorted. The last sort is the outer one, of the parts' few rows.
    assert len(reads) == 2 * len(ACTIVE_ORDER_STATES) + 1
    in_order = [r for r in reads if "next_attempt_at=? AND ship_by" in r]
    retries = [r for r in reads if "next_attempt_at>? AND next_attempt_at<?" in r]
    assert len(in_order) == 2 * len(ACTIVE_ORDER_STATES) and len(retries) == 1, reads
    assert all(r.startswith("SEARCH orders USING COVERING INDEX orders_due (state=? AND next_attempt_at")
               for r in reads), reads
    sorted_parts = {r[1] for r in plan if "TEMP B-TREE" in r[3]}
    assert sorted_parts == {0} | {r[1] for r in plan if "next_attempt_at<?" in r[3]}, plan
