"""The API's listings in SQL (connector/ledger/queries.py): filters, keyset pages, no PII decrypted."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.ledger import OrderState, PackageState
from connector.ledger.crypto import PiiCipher, PiiDecryptError
from connector.ledger.sqlite import SqliteLedger
from connector.ledger.timestamps import to_text
from connector.model import Address, FulfillmentStatus, Money, Order, OrderItem

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
SHIP_BY0 = datetime(2026, 3, 3, 12, 0, tzinfo=timezone.utc)
ITEMS = [{"order_item_id": "item-1", "quantity": 1}]
BUYER = Address(name="Zelda Quux", line1="742 Evergreen Terrace", city="Springfield", postal_code="97403",
                country_code="US", phone="+1 555 0100 4242")


class Clock:
    """Every reading is 1 ms after the previous one."""

    def __init__(self) -> None:
        self.now = T0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(milliseconds=1)
            return self.now


def order(n: int, *, site: str = "US", account: str = "acme", ship_by: datetime | None = SHIP_BY0) -> Order:
    return Order(order_id=f"111-{n:07d}-0000001", account=account, marketplace_id="ATVPDKIKX0DER", site=site,
                 status=FulfillmentStatus.UNSHIPPED, last_updated=T0,
                 items=(OrderItem("item-1", "SKU-RED", 1, unit_price=Money(Decimal("9.99"), "USD")),),
                 ship_to=BUYER, ship_by=ship_by)


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(make_store, key: bytes):
    return make_store(PiiCipher([key]), clock=Clock())


@pytest.fixture
def filled(ledger: SqliteLedger) -> SqliteLedger:
    """20 orders: sites US/DE alternating, accounts acme/zeta by thirds, ship-by an hour apart,
    every fifth without a ship-by; orders 3, 7 held (unknown_sku, manual); 10..13 with packages."""
    for n in range(20):
        ledger.upsert_order(order(n, site="US" if n % 2 == 0 else "DE", account="acme" if n % 3 else "zeta",
                                  ship_by=None if n % 5 == 4 else SHIP_BY0 + timedelta(hours=n)))
    ledger.hold(order(3).order_id, "unknown_sku", "order 3: SKU-RED is not in the catalog")
    ledger.hold(order(7).order_id, "manual", "held by an operator")
    for n in range(10, 14):
        oid = order(n).order_id
        ledger.plan_package(oid, "1", f"MFN-{oid}-1", "yunexpress" if n % 2 else "dhl", "STD", ITEMS)
    return ledger


def walk(ledger: SqliteLedger, size: int, **filters) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = ledger.order_page(after=after, limit=size, **filters)
        seen += [record.order_id for record, _ in page]
        if len(page) < size:
            return seen
        after = (page[-1][1], page[-1][0].order_id)


def created(ledger: SqliteLedger) -> list[str]:
    rows = ledger._conn().execute("SELECT order_id FROM orders ORDER BY created_at, order_id").fetchall()
    return [r[0] for r in rows]


def test_pages_walk_every_order_once_in_creation_order(filled):
    everything = created(filled)
    assert len(everything) == 20
    for size in (1, 3, 7, 20, 50):
        assert walk(filled, size) == everything


def test_the_cursor_is_the_created_at_of_the_row(filled):
    page = filled.order_page(limit=5)
    stored = dict(filled._conn().execute("SELECT order_id, created_at FROM orders").fetchall())
    assert [(r.order_id, at) for r, at in page] == [(r.order_id, stored[r.order_id]) for r, _ in page]


def test_an_order_arriving_during_a_walk_is_seen_once_at_the_end(filled):
    first = filled.order_page(limit=6)
    filled.upsert_order(order(99))
    rest = walk(filled, 6)  # a fresh walk, for comparison
    after = (first[-1][1], first[-1][0].order_id)
    seen = [r.order_id for r, _ in first]
    while True:
        page = filled.order_page(after=after, limit=6)
        seen += [r.order_id for r, _ in page]
        if len(page) < 6:
            break
        after = (page[-1][1], page[-1][0].order_id)
    assert seen == rest and seen[-1] == order(99).order_id and len(set(seen)) == 21


def test_filters(filled):
    ids = {n: order(n).order_id for n in range(20)}
    assert walk(filled, 2, states=[OrderState.HELD]) == [ids[3], ids[7]]
    assert set(walk(filled, 3, states=["HELD", "PLANNED"])) == {ids[n] for n in (3, 7, 10, 11, 12, 13)}
    assert filled.order_page(states=[], limit=10) == []
    assert walk(filled, 4, site="DE") == [ids[n] for n in range(20) if n % 2]
    assert walk(filled, 4, account="zeta") == [ids[n] for n in range(20) if n % 3 == 0]
    assert walk(filled, 4, hold_reason="unknown_sku") == [ids[3]]
    assert walk(filled, 4, site="DE", account="zeta", states=[OrderState.NEW]) == [ids[9], ids[15]]


def test_ship_by_before_is_strict_and_leaves_out_orders_without_one(filled):
    ids = {n: order(n).order_id for n in range(20)}
    cut = SHIP_BY0 + timedelta(hours=6)
    assert walk(filled, 3, ship_by_before=cut) == [ids[n] for n in range(6) if n != 4]
    # a sub-millisecond cut is rounded up: an order due at exactly 06:00:00.000 is before 06:00:00.0005
    assert ids[6] in walk(filled, 50, ship_by_before=cut + timedelta(microseconds=500))
    naive = cut.replace(tzinfo=None)  # naive = UTC
    assert walk(filled, 50, ship_by_before=naive) == walk(filled, 50, ship_by_before=cut)
    in_berlin = cut.astimezone(timezone(timedelta(hours=1)))
    assert walk(filled, 50, ship_by_before=in_berlin) == walk(filled, 50, ship_by_before=cut)


def test_updated_since_is_inclusive(filled):
    rows = filled._conn().execute("SELECT order_id, updated_at FROM orders ORDER BY updated_at").fetchall()
    middle = rows[len(rows) // 2]["updated_at"]
    expected = {r["order_id"] for r in rows if r["updated_at"] >= middle}
    since = datetime.strptime(middle, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    got = walk(filled, 4, updated_since=since)
    assert set(got) == expected and len(got) == len(expected)


def test_pages_do_not_decrypt_buyer_data(filled, make_store):
    assert all(r.order.ship_to is None for r, _ in filled.order_page(limit=50))
    assert all(r.order.ship_to == BUYER for r, _ in filled.order_page(limit=50, with_pii=True))
    # with a key that cannot read the addresses, listings still work; reading one address does not
    stranger = make_store(PiiCipher([Fernet.generate_key()]))
    try:
        page = stranger.order_page(limit=50)
        assert len(page) == 20 and page[0][0].hold_reason == "" and page[0][0].order.items
        found = stranger.order_detail(order(3).order_id)
        assert found is not None and found[1] is True and found[0].hold_reason == "unknown_sku"
        with pytest.raises(PiiDecryptError):
            stranger.order_detail(order(3).order_id, with_pii=True)
        with pytest.raises(PiiDecryptError):
            stranger.get_order(order(3).order_id)
    finally:
        stranger.close()


def test_order_detail_says_whether_an_address_is_on_file(filled):
    oid = order(5).order_id
    record, on_file = filled.order_detail(oid)
    assert on_file and record.order.ship_to is None and record.order.order_id == oid
    record, on_file = filled.order_detail(oid, with_pii=True)
    assert on_file and record.order.ship_to == BUYER
    filled.purge_pii([oid])
    record, on_file = filled.order_detail(oid, with_pii=True)
    assert not on_file and record.pii_purged and record.order.ship_to is None
    assert filled.order_detail("999-0000000-0000000") is None


def test_records_match_get_order_apart_from_the_address(filled):
    for record, _ in filled.order_page(limit=50):
        full = filled.get_order(record.order_id)
        assert record.order == full.order.without_pii()
        fields = ("state", "hold_reason", "hold_message", "held_from", "attempts", "next_attempt_at",
                  "pii_purged", "updated_at")
        assert [getattr(record, f) for f in fields] == [getattr(full, f) for f in fields]


def test_limits(filled):
    assert filled.order_page(limit=0) == []
    with pytest.raises(ValueError):
        filled.order_page(limit=-1)
    with pytest.raises(ValueError):
        filled.package_page(limit=-1)


def test_package_pages_and_filters(filled):
    ids = [p.id for n in range(10, 14) for p in filled.packages(order(n).order_id)]
    assert len(ids) == 4

    def walk_packages(size: int, **filters) -> list[int]:
        seen: list[int] = []
        after = None
        while True:
            page = filled.package_page(after_id=after, limit=size, **filters)
            seen += [p.id for p in page]
            if len(page) < size:
                return seen
            after = page[-1].id

    assert walk_packages(1) == sorted(ids) and walk_packages(3) == sorted(ids)
    assert [p.order_id for p in filled.package_page(carrier="dhl", limit=10)] == \
        [order(10).order_id, order(12).order_id]
    assert [p.order_id for p in filled.package_page(order_id=order(11).order_id, limit=10)] == \
        [order(11).order_id]
    assert filled.package_page(states=[PackageState.LABELED], limit=10) == []
    assert filled.package_page(states=[], limit=10) == []
    first = filled.packages(order(10).order_id)[0]
    moved = filled.advance(first, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    assert [p.id for p in filled.package_page(states=["LABEL_CLAIMED"], limit=10)] == [first.id]
    assert [p.id for p in filled.package_page(updated_since=moved.updated_at, limit=10)] == [first.id]
    assert filled.package_page(updated_since=moved.updated_at + timedelta(milliseconds=1), limit=10) == []


def test_latest_packages_is_the_newest_per_order(filled):
    oid = order(10).order_id
    first = filled.packages(oid)[0]
    filled.advance(first, PackageState.PLANNED, PackageState.FAILED, OrderState.NEW, error="refused")
    second = filled.plan_package(oid, "2", f"MFN-{oid}-2", "dhl", "EXP", ITEMS)
    wanted = [oid, order(11).order_id, order(0).order_id, "999-0000000-0000000"]
    latest = filled.latest_packages(wanted)
    assert set(latest) == {oid, order(11).order_id}
    assert latest[oid].id == second.id and latest[oid].service == "EXP"
    assert filled.latest_packages([]) == {}


# -- shipped_lines: what the valid-tracking rate reads ----------------------------------------------

SHIPPED_STATES = [OrderState.VERIFIED, OrderState.IN_TRANSIT, OrderState.DELIVERED, OrderState.RETURNING,
                  OrderState.HELD]


def ship(ledger, n: int, shipped_at: datetime, *, last: PackageState = PackageState.VERIFIED,
         plan: dict | None = None, events=(), filed_as: str | None = None, **order_fields):
    """Order ``n``: one package carried from PLANNED to ``last`` (via VERIFIED), shipped at ``shipped_at``."""
    from dataclasses import replace

    placed = replace(order(n), **order_fields)
    ledger.upsert_order(placed)
    package = ledger.plan_package(placed.order_id, "1", f"MFN-{placed.order_id}-1", "yanwen", "S", ITEMS,
                                  plan=plan)
    chain = [PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.LABELED, PackageState.CONFIRMING,
             PackageState.CONFIRMED, PackageState.VERIFIED]
    if last is not PackageState.VERIFIED:
        chain.append(last)
    for old, new in zip(chain, chain[1:], strict=False):
        fields = {"tracking_number": f"YT{n}"} if new is PackageState.LABELED else {}
        if new is PackageState.CONFIRMING:
            fields["shipped_at"] = shipped_at
        if new is PackageState.VERIFIED and filed_as is not None:
            fields["filed_as"] = filed_as
        order_state = OrderState(new.value) if new.value in OrderState.__members__ else None
        package = ledger.advance(package, old, new, order_state, events=events if new is last else (),
                                 **fields)
    return package


def walk_shipped(ledger, since: datetime, size: int, states=SHIPPED_STATES) -> list:
    lines, after = [], 0
    while after is not None:
        page, after = ledger.shipped_lines(states, shipped_since=since, after_id=after, limit=size)
        lines += page
    return lines


def test_shipped_lines_read_the_window_with_the_orders_json_fields(ledger):
    from connector.ledger import TrackingRecord
    from connector.model import TrackingStatus

    since = T0 + timedelta(days=1)
    ship(ledger, 1, since - timedelta(seconds=1))                 # before the window
    ship(ledger, 2, since, plan={"tracking_level": "fully_tracked", "min_scans": 2},
         deliver_by=SHIP_BY0 + timedelta(days=9))
    ship(ledger, 3, since + timedelta(hours=1), origin="erp", channel="shopify", confirm=False)
    failed = TrackingRecord(0, since + timedelta(days=2), TrackingStatus.FAILED_ATTEMPT.value)
    ship(ledger, 4, since + timedelta(hours=2), last=PackageState.RETURNING, events=[failed])
    ship(ledger, 5, since + timedelta(hours=3), last=PackageState.RETURNING)  # no failed attempt scanned
    ship(ledger, 6, since + timedelta(hours=4), origin="erp", confirm=True)   # an ERP's Amazon order
    ledger.hold(order(6).order_id, "void_refused", "the carrier has scanned the parcel")
    ship(ledger, 7, since + timedelta(hours=5), last=PackageState.IN_TRANSIT, filed_as="Other")

    lines = walk_shipped(ledger, since, 500)
    assert [line.order_id for line in lines] == [order(n).order_id for n in (2, 3, 4, 5, 6, 7)]
    by = {line.order_id: line for line in lines}
    two = by[order(2).order_id]
    assert (two.site, two.skus, two.confirms_on_amazon, two.ship_by, two.deliver_by) == (
        "US", ("SKU-RED",), True, SHIP_BY0, SHIP_BY0 + timedelta(days=9))
    assert (two.carrier, two.service, two.state, two.shipped_at) == (
        "yanwen", "S", PackageState.VERIFIED, since)
    assert (two.tracking_level, two.min_scans, two.failed_attempt) == ("fully_tracked", 2, False)
    assert by[order(3).order_id].confirms_on_amazon is False  # another channel, not confirmed here
    assert by[order(6).order_id].confirms_on_amazon is True
    three = by[order(3).order_id]
    assert (three.tracking_level, three.min_scans) == ("tracked", 1)  # no plan stored
    assert by[order(4).order_id].failed_attempt is True
    assert by[order(5).order_id].failed_attempt is False
    assert by[order(7).order_id].filed_as == "Other"  # Amazon filed it under another carrier
    assert {by[order(n).order_id].filed_as for n in (2, 3, 4, 5, 6)} == {None}
    # pages of any size walk the same packages once; the order's state filters
    for size in (1, 2, 3):
        assert walk_shipped(ledger, since, size) == lines
    assert [line.order_id for line in walk_shipped(ledger, since, 2, states=[OrderState.HELD])] == [
        order(6).order_id]
    assert walk_shipped(ledger, since, 2, states=[]) == []
    with pytest.raises(ValueError, match="limit"):
        ledger.shipped_lines(SHIPPED_STATES, shipped_since=since, limit=0)


def test_a_row_whose_json_is_unreadable_leaves_the_other_shipped_lines(ledger):
    """An order whose data, or a package whose plan, is not JSON (a hand edit or a restore gone
    wrong: the daemon holds such an order ledger_inconsistent) has its line left out; the others
    are read. Read in SQL, that one row failed the whole page (SQLite: malformed JSON; PostgreSQL:
    invalid input syntax for type json), and with it the valid-tracking rate of every site."""
    since = T0 + timedelta(days=1)
    for n in range(1, 5):
        ship(ledger, n, since + timedelta(hours=n), plan={"tracking_level": "tracked", "min_scans": 1})
    with ledger._write() as conn:
        garble = "UPDATE orders SET data = ? WHERE order_id = ?"
        conn.execute(garble, ('{"items": [{"sku": "SKU-R', order(2).order_id))  # cut short
        conn.execute("UPDATE packages SET plan = ? WHERE order_id = ?",
                     ("{'min_scans': 1}", order(3).order_id))  # Python's repr, not JSON
        conn.execute(garble, ('{"items": 7}', order(4).order_id))  # JSON, but no items to read

    assert [line.order_id for line in walk_shipped(ledger, since, 500)] == [order(1).order_id]
    assert [line.order_id for line in walk_shipped(ledger, since, 1)] == [order(1).order_id]


def test_the_rate_counts_the_packages_amazon_would(ledger):
    """engine.vtr.shipped_packages over these rows: the promise selects, another channel's label and
    a package outside the window do not count, categories come from the item master once per SKU
    set, the door from the service's tracking level, a scanned failed attempt reached the door."""
    from types import SimpleNamespace

    from connector.engine.vtr import NO_CATEGORY, shipped_packages
    from connector.ledger import TrackingRecord
    from connector.model import TrackingStatus

    since = T0 + timedelta(days=1)
    ship(ledger, 1, since - timedelta(days=40))                                  # before the read window
    ship(ledger, 2, since - timedelta(days=3), deliver_by=since + timedelta(days=2))  # promise in the window
    ship(ledger, 3, since - timedelta(days=3))                  # no promise: its ship date, before since
    ship(ledger, 4, since + timedelta(hours=1), origin="erp", channel="shopify", confirm=False)
    failed = TrackingRecord(0, since + timedelta(days=2), TrackingStatus.FAILED_ATTEMPT.value)
    ship(ledger, 5, since + timedelta(hours=2), last=PackageState.RETURNING, events=[failed])
    other = ship(ledger, 6, since + timedelta(hours=3), last=PackageState.IN_TRANSIT, filed_as="Other")
    ledger.advance(other, PackageState.IN_TRANSIT, PackageState.IN_TRANSIT, scans=2)  # scanned
    looked_up: list[str] = []

    def item(sku: str):
        looked_up.append(sku)
        return SimpleNamespace(category="Toys") if sku == "SKU-RED" else None

    levels = {"S": SimpleNamespace(tracking_level="tracked")}
    rt = SimpleNamespace(ledger=ledger, config=SimpleNamespace(ledger=SimpleNamespace(max_transit_days=30)),
                         catalog=SimpleNamespace(get=item),
                         carrier_specs={"yanwen": SimpleNamespace(service=levels.get)})
    packages = list(shipped_packages(rt, since=since))  # a generator: read once
    assert [p.order_id for p in packages] == [order(2).order_id, order(5).order_id, order(6).order_id]
    assert looked_up == ["SKU-RED"]  # once for the SKU set, not per package
    assert all(p.categories == ("Toys",) and p.to_door is False for p in packages)
    assert [p.reached_door for p in packages] == [False, True, False]
    # Amazon filed 6 under "Other": scanned, but not valid tracking
    assert [(p.filed_as, p.scans, p.valid) for p in packages][2] == ("Other", 2, False)
    assert NO_CATEGORY not in packages[0].categories


def test_a_package_whose_json_is_unreadable_is_passed_over_by_the_package_reads(ledger, caplog):
    """A package whose items, plan or refund is not JSON (a hand edit or a restore gone wrong) is
    left out of the tracking pass, the package pages, the labels to print and the handover backlog,
    with a warning naming it and its order, never what it holds; the others are read, and a page
    is filled past it (a short page still means the last). That one row failed each whole read:
    the tracking of every parcel, GET /v1/packages, every print and handover."""
    since = T0 + timedelta(days=1)
    packages = [ship(ledger, n, since + timedelta(hours=n)) for n in range(1, 5)]
    with ledger._write() as conn:
        conn.execute("UPDATE packages SET label_path = '/labels/x.pdf'")
        for package, column, text in ((packages[0], "items", '[{"order_item_id": "item-1", "quant'),
                                      (packages[1], "plan", "{'min_scans': 1}"),  # Python's repr
                                      (packages[2], "refund", '"7.50 EUR"')):  # JSON, no object
            conn.execute(f"UPDATE packages SET {column} = ? WHERE id = ?", (text, package.id))
    good = packages[3]

    assert [p.id for p in ledger.packages_to_track(due_before=T0 + timedelta(days=9), shipped_after=T0)] \
        == [good.id]
    assert [p.id for p in ledger.package_page(limit=1)] == [good.id]
    assert [p.id for p in ledger.package_page(limit=50)] == [good.id]
    assert [p.id for p in ledger.unprinted_packages()] == [good.id]
    with ledger._write() as conn:
        conn.execute("UPDATE packages SET printed_at = ?", (to_text(since),))
    assert [p.id for p in ledger.handover_candidates()] == [good.id]
    assert [p.id for p, _ in ledger.label_page(limit=1)] == [good.id]
    assert list(ledger.handover_backlog()) == [good.order_id]
    assert list(ledger.latest_packages([p.order_id for p in packages])) == [good.order_id]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for package in packages[:3]:
        assert any(f"package {package.id} of order {package.order_id}" in w for w in warned)
    assert not any("quant" in w or "min_scans" in w or "EUR" in w for w in warned)


def test_an_order_whose_data_is_unreadable_is_passed_over_by_the_order_listings(filled, caplog):
    """An order whose stored data cannot be read (a hand edit or a restore gone wrong: the daemon
    holds it ledger_inconsistent) is left out of the order pages (GET /v1/orders, the status page),
    orders() and the soonest ship-by, with a warning naming it, never what it holds; the others are
    listed, and a page is filled past it (a short page still means the last). Its CorruptRecordError
    failed the whole page."""
    broken = [order(0).order_id, order(5).order_id]
    with filled._write() as conn:
        conn.execute("UPDATE orders SET data = ? WHERE order_id = ?",
                     ('{"order_id": "' + broken[0] + '", "status": "UNSH', broken[0]))
        conn.execute("UPDATE orders SET data = '{}' WHERE order_id = ?", (broken[1],))  # no order_id
    others = [o for o in created(filled) if o not in broken]

    for size in (1, 2, 50):
        assert walk(filled, size) == others
    assert sorted(r.order_id for r in filled.orders()) == sorted(others)
    assert broken[0] not in [r.order_id for r in filled.soonest_ship_by([OrderState.NEW], limit=3)]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert all(any(f"order {o}" in w for w in warned) for o in broken)
    assert not any("UNSH" in w for w in warned)
