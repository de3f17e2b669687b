"""The SQLite ledger: every Ledger method, compare-and-set, PII at rest, concurrency, durability."""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import connector
from connector.ledger import (
    ACTIVE_ORDER_STATES,
    OrderState,
    Package,
    PackageChange,
    PackageState,
    StaleStateError,
    open_ledger,
)
from connector.ledger import sqlite as sqlite_store
from connector.ledger.crypto import PiiCipher, PiiDecryptError, PiiKeyError
from connector.ledger.sql import SqlLedger
from connector.ledger.sqlite import SqliteLedger
from connector.model import Address, FulfillmentStatus, Money, Order, OrderItem

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
BUYER_NAME = "Zelda Quux-Ångström"
BUYER_STREET = "742 Evergreen Terrace"
BUYER_PHONE = "+1 555 0100 4242"
ENV = "MFN_CONNECTOR_PII_KEY"
REPO = Path(connector.__file__).resolve().parent.parent
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Clock:
    """Deterministic, thread-safe: every reading is 1 ms after the previous one."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(milliseconds=1)
            return self.now


def address(**changes: str) -> Address:
    base = dict(name=BUYER_NAME, line1=BUYER_STREET, city="Springfield", state="OR",
                postal_code="97403", country_code="US", phone=BUYER_PHONE)
    base.update(changes)
    return Address(**base)


def make_order(order_id: str = "111-0000001-0000001", *, ship_to: Address | None = None,
               cancel: bool = False, **kw) -> Order:
    return Order(
        order_id=order_id, account=kw.get("account", "acme"), marketplace_id="ATVPDKIKX0DER",
        site="US", status=FulfillmentStatus.UNSHIPPED,
        last_updated=kw.get("last_updated", datetime(2026, 3, 1, 7, 0, tzinfo=timezone.utc)),
        items=(OrderItem("item-1", "SKU-RED", 2, title="Red mug", unit_price=Money(Decimal("9.99"), "USD")),),
        total=Money(Decimal("19.98"), "USD"), ship_to=address() if ship_to is None else ship_to,
        created=datetime(2026, 2, 28, 23, 0, tzinfo=timezone.utc),
        ship_by=datetime(2026, 3, 3, tzinfo=timezone.utc), buyer_cancel_requested=cancel,
    )


ITEMS = [{"order_item_id": "item-1", "quantity": 2}]


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(make_store, key: bytes, clock: Clock):
    return make_store(PiiCipher([key]), clock=clock)


def planned(ledger: SqlLedger, order_id: str = "111-0000001-0000001", ref: str = "1") -> Package:
    ledger.upsert_order(make_order(order_id))
    return ledger.plan_package(order_id, ref, f"MFN-{order_id}-{ref}", "yunexpress", "AYPZXR", ITEMS)


def claim(ledger: SqlLedger, package: Package) -> Package:
    return ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)


def race(*calls) -> list[str]:
    """Start ``calls`` together on their own threads; each reports "won" or "stale"."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call) -> None:
        barrier.wait()
        try:
            call()
            outcomes.append("won")
        except StaleStateError:
            outcomes.append("stale")

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def raw(ledger, sql: str, *params):
    """Rows of ``sql`` on the ledger's own database (``?`` placeholders), as tuples."""
    cursor = ledger._conn().execute(sql, params)
    return [tuple(r) for r in cursor.fetchall()] if cursor.description else []


# -- upsert_order / get_order ----------------------------------------------------------------------

def test_new_order_is_inserted_as_new_with_a_transition(ledger: SqlLedger, clock: Clock) -> None:
    order = make_order()
    assert ledger.upsert_order(order) is True
    record = ledger.get_order(order.order_id)
    assert record is not None
    assert record.state is OrderState.NEW and record.order_id == order.order_id
    assert record.order == order  # data and decrypted address round-trip
    assert record.attempts == 0 and record.next_attempt_at is None and not record.pii_purged
    assert record.hold_reason == "" and record.held_from is None
    assert record.updated_at == clock.now  # the ledger's clock, read inside the transaction
    assert [(h["from"], h["to"]) for h in ledger.history(order.order_id)] == [(None, "NEW")]
    assert ledger.get_order("no-such-order") is None


def test_order_without_address_stores_no_pii(ledger: SqlLedger) -> None:
    ledger.upsert_order(make_order(ship_to=Address()))
    assert ledger.get_order("111-0000001-0000001").order.ship_to is None
    assert raw(ledger, "SELECT pii FROM orders") == [(None,)]


def test_known_order_refreshes_data_but_never_the_state(ledger: SqlLedger) -> None:
    ledger.upsert_order(make_order())
    assert ledger.upsert_order(make_order(cancel=True)) is False
    record = ledger.get_order("111-0000001-0000001")
    assert record.state is OrderState.NEW and record.order.buyer_cancel_requested is True
    assert len(ledger.history("111-0000001-0000001")) == 1  # a refresh is not a transition


def test_a_copy_amazon_sent_before_the_stored_one_changes_nothing(ledger: SqlLedger) -> None:
    """A worker whose poll stalled past its lease writes what it read after the account's new owner
    stored a newer copy: the cancellation that copy says must stay."""
    oid, before, after = "111-0000001-0000001", T0 - timedelta(hours=1), T0
    ledger.upsert_order(make_order(last_updated=before))
    ledger.upsert_order(make_order(cancel=True, last_updated=after, ship_to=address(line2="Apt 9")))
    assert ledger.upsert_order(make_order(last_updated=before, ship_to=address(line2="Apt 1"))) is False
    record = ledger.get_order(oid)
    assert record.order.buyer_cancel_requested is True and record.order.last_updated == after
    assert record.order.ship_to.line2 == "Apt 9"
    ledger.upsert_order(make_order(last_updated=after, ship_to=address(line2="Apt 2")))  # same time: read
    assert ledger.get_order(oid).order.buyer_cancel_requested is False


def test_identical_refresh_does_not_touch_the_row(ledger: SqlLedger) -> None:
    ledger.upsert_order(make_order())
    before = ledger.get_order("111-0000001-0000001").updated_at
    ledger.upsert_order(make_order())
    assert ledger.get_order("111-0000001-0000001").updated_at == before


def test_address_refreshes_only_while_new_or_held(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    ledger.upsert_order(make_order(ship_to=address(line2="Apt 5")))
    assert ledger.get_order(oid).order.ship_to.line2 == "Apt 5"           # NEW: refreshed
    ledger.hold(oid, "unknown_sku", "SKU-RED is not in the catalog")
    ledger.upsert_order(make_order(ship_to=address(line2="Apt 6")))
    assert ledger.get_order(oid).order.ship_to.line2 == "Apt 6"           # HELD: refreshed
    ledger.release(oid)
    ledger.plan_package(oid, "1", "K-1", "yunexpress", "AYPZXR", ITEMS)
    ledger.upsert_order(make_order(ship_to=address(line2="Apt 7"), cancel=True))
    record = ledger.get_order(oid)
    assert record.state is OrderState.PLANNED
    assert record.order.ship_to.line2 == "Apt 6"          # the label is bought for this address
    assert record.order.buyer_cancel_requested is True    # but the data is refreshed


def test_empty_address_never_wipes_a_stored_one_and_fills_an_empty_one(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order(ship_to=Address()))
    ledger.upsert_order(make_order(ship_to=address()))
    assert ledger.get_order(oid).order.ship_to == address()
    ledger.upsert_order(make_order(ship_to=Address()))
    assert ledger.get_order(oid).order.ship_to == address()


def test_complete_address_leaves_an_address_incomplete_hold_in_place(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order(ship_to=Address(city="Springfield", postal_code="97403")))
    ledger.hold(oid, "address_incomplete", "missing: name, line1")
    ledger.upsert_order(make_order(ship_to=address()))
    record = ledger.get_order(oid)
    assert record.state is OrderState.HELD and record.hold_reason == "address_incomplete"
    assert record.order.ship_to == address() and record.order.ship_to.missing_fields() == []


def test_times_are_stored_as_fixed_width_iso_utc_text(ledger: SqlLedger) -> None:
    package = planned(ledger)
    ledger.defer(package.order_id, datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=8))), "x")
    ledger.set_watermark("acme", T0)
    (created, updated, due), = raw(ledger, "SELECT created_at, updated_at, next_attempt_at FROM orders")
    assert all(ISO_UTC.match(v) for v in (created, updated, due))
    assert due == "2026-03-01T02:00:00.000000Z"
    assert all(ISO_UTC.match(r[0]) for r in raw(ledger, "SELECT at FROM transitions"))
    assert raw(ledger, "SELECT value FROM watermarks") == [("2026-03-01T08:00:00.000000Z",)]


# -- orders() ---------------------------------------------------------------------------------------

def test_orders_filters_by_state_and_due_time_oldest_first(ledger: SqlLedger, clock: Clock) -> None:
    for n in (3, 1, 2):
        ledger.upsert_order(make_order(f"111-0000000-000000{n}"))
    ids = [r.order_id for r in ledger.orders()]
    assert ids == ["111-0000000-0000003", "111-0000000-0000001", "111-0000000-0000002"]
    ledger.hold("111-0000000-0000003", "unknown_sku", "")  # touched last: now the newest
    assert [r.order_id for r in ledger.orders([OrderState.NEW])] == ids[1:]
    assert [r.order_id for r in ledger.orders([OrderState.HELD])] == ids[:1]
    assert [r.order_id for r in ledger.orders()] == ids[1:] + ids[:1]
    assert ledger.orders([]) == []
    assert [r.order_id for r in ledger.orders(ACTIVE_ORDER_STATES, limit=1)] == ids[1:2]

    later = clock.now + timedelta(hours=1)
    ledger.defer("111-0000000-0000001", later, "carrier timeout")
    due_now = [r.order_id for r in ledger.orders([OrderState.NEW], due_before=clock.now)]
    assert due_now == ["111-0000000-0000002"]
    due_later = [r.order_id for r in ledger.orders([OrderState.NEW], due_before=later)]
    assert due_later == ["111-0000000-0000002", "111-0000000-0000001"]  # not after `later`: due


# -- set_order_state ---------------------------------------------------------------------------------

def test_set_order_state_is_a_compare_and_set_that_resets_attempts(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    ledger.defer(oid, T0 + timedelta(days=1), "boom")
    ledger.set_order_state(oid, [OrderState.NEW, OrderState.PLANNED], OrderState.CANCELLED,
                           note="buyer cancelled")
    record = ledger.get_order(oid)
    assert record.state is OrderState.CANCELLED and record.attempts == 0
    assert record.next_attempt_at is None
    assert ledger.history(oid)[-1] == {"at": record.updated_at, "from": "NEW", "to": "CANCELLED",
                                       "note": "buyer cancelled", "package_id": None}


def test_stale_set_order_state_raises_and_changes_nothing(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    ledger.defer(oid, T0 + timedelta(days=1), "boom")
    before, history = ledger.get_order(oid), ledger.history(oid)
    with pytest.raises(StaleStateError, match="is NEW, expected PLANNED"):
        ledger.set_order_state(oid, [OrderState.PLANNED], OrderState.LABEL_CLAIMED)
    assert ledger.get_order(oid) == before and ledger.history(oid) == history
    with pytest.raises(ValueError, match="hold"):
        ledger.set_order_state(oid, [OrderState.NEW], OrderState.HELD)
    with pytest.raises(KeyError):
        ledger.set_order_state("nope", [OrderState.NEW], OrderState.PLANNED)
    assert ledger.get_order(oid) == before


# -- hold / release ----------------------------------------------------------------------------------

def test_hold_release_round_trip(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    ledger.defer(oid, T0 + timedelta(days=1), "transient")
    ledger.hold(oid, "no_eligible_service", "no carrier serves US for 2 kg")
    record = ledger.get_order(oid)
    assert record.state is OrderState.HELD and record.held_from is OrderState.PLANNED
    assert record.hold_reason == "no_eligible_service"
    assert record.hold_message == "no carrier serves US for 2 kg"
    ledger.hold(oid, "unknown_sku", "SKU-RED")  # re-hold: the reason changes, the origin stays
    record = ledger.get_order(oid)
    assert record.held_from is OrderState.PLANNED and record.hold_reason == "unknown_sku"
    assert ledger.held_reasons() == {"unknown_sku": 1}

    assert ledger.release(oid) is OrderState.PLANNED
    record = ledger.get_order(oid)
    assert record.state is OrderState.PLANNED
    assert (record.hold_reason, record.hold_message, record.held_from) == ("", "", None)
    assert record.attempts == 0 and record.next_attempt_at is None
    assert ledger.held_reasons() == {}
    order_rows = [(h["from"], h["to"]) for h in ledger.history(oid) if h["package_id"] is None]
    assert order_rows[-3:] == [("PLANNED", "HELD"), ("HELD", "HELD"), ("HELD", "PLANNED")]
    with pytest.raises(StaleStateError, match="not HELD"):
        ledger.release(oid)


def test_holding_a_held_order_again_for_the_same_reason_changes_nothing(ledger: SqlLedger) -> None:
    """An ERP retrying its hold request (or five at once) gets one hold and one order.held event."""
    oid = planned(ledger).order_id
    for _ in range(3):
        ledger.hold(oid, "manual", "check the box")
    assert [e.type for e in ledger.events(order_id=oid)].count("order.held") == 1
    order_rows = [(h["from"], h["to"]) for h in ledger.history(oid) if h["package_id"] is None]
    assert order_rows[-1] == ("PLANNED", "HELD")
    ledger.hold(oid, "manual", "check the label too")  # a new message is news
    assert [e.type for e in ledger.events(order_id=oid)].count("order.held") == 2


def test_release_without_origin_returns_to_new(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    ledger.hold(oid, "manual", "")
    raw(ledger, "UPDATE orders SET held_from = NULL")
    assert ledger.release(oid) is OrderState.NEW


@pytest.mark.parametrize("final", [OrderState.VOIDED, OrderState.CANCELLED])
def test_finished_orders_cannot_be_held(ledger: SqlLedger, final: OrderState) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    ledger.set_order_state(oid, [OrderState.NEW], final)
    before = ledger.get_order(oid)
    with pytest.raises(ValueError, match=final.value):
        ledger.hold(oid, "manual", "")
    assert ledger.get_order(oid) == before
    with pytest.raises(ValueError, match="reason"):
        ledger.hold(oid, " ", "")
    with pytest.raises(KeyError):
        ledger.hold("nope", "manual", "")


def test_a_finished_order_is_not_held_and_its_step_hears_a_stale_state(ledger: SqlLedger) -> None:
    """A step about to hold an order that ended meanwhile (an operator's void in another process)
    lost a race: StaleStateError, which ends its drive quietly. A person asking hears why (ValueError)."""
    from connector.ledger.base import OrderFinishedError, StaleStateError

    oid = "111-0000000-0000001"
    ledger.upsert_order(make_order(oid))
    ledger.set_order_state(oid, [OrderState.NEW], OrderState.CANCELLED, note="cancelled on Amazon")
    told = len(ledger.history(oid))
    refused = f"order {oid} is CANCELLED: a finished order cannot be held"
    with pytest.raises(OrderFinishedError, match=refused) as err:
        ledger.hold(oid, "unknown_sku", "SKU X is not in the catalog")
    assert isinstance(err.value, StaleStateError) and isinstance(err.value, ValueError)
    record = ledger.get_order(oid)
    assert record.state is OrderState.CANCELLED and record.hold_reason == ""
    assert len(ledger.history(oid)) == told


def test_held_reasons_counts_only_held_orders(ledger: SqlLedger) -> None:
    for n, reason in enumerate(["unknown_sku", "unknown_sku", "address_incomplete", None]):
        oid = f"111-0000000-000000{n}"
        ledger.upsert_order(make_order(oid))
        if reason:
            ledger.hold(oid, reason, "")
    assert ledger.held_reasons() == {"unknown_sku": 2, "address_incomplete": 1}
    assert ledger.counts() == {"HELD": 3, "NEW": 1}


# -- defer / clear_deferral ----------------------------------------------------------------------

def test_defer_counts_attempts_and_clear_deferral_makes_it_due(ledger: SqlLedger, clock: Clock) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    until = T0 + timedelta(minutes=5)
    assert ledger.defer(oid, until, "HTTP 503 from carrier") == 1
    assert ledger.defer(oid, until + timedelta(minutes=5), "HTTP 503 again") == 2
    record = ledger.get_order(oid)
    assert record.attempts == 2 and record.next_attempt_at == until + timedelta(minutes=5)
    assert ledger.last_error(oid) == "HTTP 503 again"
    assert ledger.orders(due_before=clock.now) == []
    ledger.clear_deferral(oid)
    record = ledger.get_order(oid)
    assert record.attempts == 0 and record.next_attempt_at is None
    assert [r.order_id for r in ledger.orders(due_before=clock.now)] == [oid]
    with pytest.raises(KeyError):
        ledger.defer("nope", until, "x")
    with pytest.raises(KeyError):
        ledger.clear_deferral("nope")


def test_snooze_counts_no_attempt_and_notes_what_the_order_waits_for(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    ledger.defer(oid, T0 + timedelta(minutes=1), "HTTP 503 from carrier")
    ledger.snooze(oid, T0 + timedelta(minutes=5))  # no note: the last error stays
    record = ledger.get_order(oid)
    assert record.attempts == 1 and record.next_attempt_at == T0 + timedelta(minutes=5)
    assert ledger.last_error(oid) == "HTTP 503 from carrier"
    ledger.snooze(oid, T0 + timedelta(minutes=9), note="carrier has not assigned a tracking number yet")
    record = ledger.get_order(oid)
    assert record.attempts == 1 and record.next_attempt_at == T0 + timedelta(minutes=9)
    assert ledger.last_error(oid) == "carrier has not assigned a tracking number yet"


# -- plan_package / packages / open_package --------------------------------------------------------

def test_plan_package_inserts_and_moves_the_order_atomically(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order())
    package = ledger.plan_package(oid, "1", "MFN-K-1", "yunexpress", "AYPZXR", ITEMS)
    assert (package.order_id, package.package_ref, package.idempotency_key) == (oid, "1", "MFN-K-1")
    assert package.state is PackageState.PLANNED and package.items == ITEMS
    assert package.carrier == "yunexpress" and package.service == "AYPZXR"
    assert package.created_at is not None and package.id > 0
    assert ledger.get_order(oid).state is OrderState.PLANNED
    assert ledger.packages(oid) == [package] and ledger.open_package(oid) == package
    assert ledger.get_package(package.id) == package
    rows = [(h["from"], h["to"], h["package_id"]) for h in ledger.history(oid)]
    assert rows[1:] == [(None, "PLANNED", package.id), ("NEW", "PLANNED", None)]


def test_plan_package_needs_a_new_order_and_changes_nothing_otherwise(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    history = ledger.history(oid)
    with pytest.raises(StaleStateError, match="is PLANNED, expected NEW"):
        ledger.plan_package(oid, "2", "MFN-K-2", "yanwen", "S", ITEMS)
    # Someone wrongly sends the order back to NEW while the package is still open.
    ledger.set_order_state(oid, [OrderState.PLANNED], OrderState.NEW)
    with pytest.raises(StaleStateError, match="already has package 1"):
        ledger.plan_package(oid, "2", "MFN-K-2", "yanwen", "S", ITEMS)
    assert raw(ledger, "SELECT COUNT(*) FROM packages") == [(1,)]
    assert ledger.history(oid)[: len(history)] == history
    with pytest.raises(KeyError):
        ledger.plan_package("nope", "1", "K", "c", "s", ITEMS)


@pytest.mark.parametrize("ref", ["0", "01", "-1", "1a", "", " 1", "１"])
def test_plan_package_rejects_non_numeric_references(ledger: SqlLedger, ref: str) -> None:
    ledger.upsert_order(make_order())
    with pytest.raises(ValueError, match="package_ref"):
        ledger.plan_package("111-0000001-0000001", ref, "K", "c", "s", ITEMS)
    assert ledger.get_order("111-0000001-0000001").state is OrderState.NEW


def test_idempotency_keys_are_unique_forever(ledger: SqlLedger) -> None:
    first = planned(ledger, "111-0000000-0000001")
    ledger.upsert_order(make_order("111-0000000-0000002"))
    with pytest.raises(ValueError, match="already"):
        ledger.plan_package("111-0000000-0000002", "1", first.idempotency_key, "c", "s", ITEMS)
    assert ledger.get_order("111-0000000-0000002").state is OrderState.NEW
    # A failed package keeps its key; the replacement needs a new key and a new reference.
    ledger.advance(first, PackageState.PLANNED, PackageState.FAILED, OrderState.NEW, error="refused")
    assert ledger.open_package(first.order_id) is None
    with pytest.raises(ValueError, match="already"):
        ledger.plan_package(first.order_id, "2", first.idempotency_key, "c", "s", ITEMS)
    with pytest.raises(ValueError, match="reference 1"):
        ledger.plan_package(first.order_id, "1", "MFN-new", "c", "s", ITEMS)
    second = ledger.plan_package(first.order_id, "2", "MFN-new", "yanwen", "S", ITEMS)
    assert [p.package_ref for p in ledger.packages(first.order_id)] == ["1", "2"]
    assert ledger.open_package(first.order_id) == second


# -- advance ----------------------------------------------------------------------------------------

def test_advance_walks_the_whole_chain(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    ship_date = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    package = claim(ledger, package)
    package = ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED,
                             carrier_shipment_id="YT2412345678")
    assert ledger.get_order(oid).state is OrderState.LABEL_CLAIMED
    package = ledger.advance(package, PackageState.LABEL_CREATED, PackageState.LABELED, OrderState.LABELED,
                             tracking_number="YT2412345678901", label_path=Path("/labels/1.pdf"))
    package = ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING,
                             shipped_at=ship_date, confirm_attempts=1)
    package = ledger.advance(package, PackageState.CONFIRMING, PackageState.CONFIRMED, OrderState.CONFIRMED)
    package = ledger.advance(package, PackageState.CONFIRMED, PackageState.VERIFIED, OrderState.VERIFIED)

    fresh = ledger.packages(oid)[0]
    assert fresh == package and fresh.state is PackageState.VERIFIED
    assert (fresh.carrier_shipment_id, fresh.tracking_number, fresh.label_path) == (
        "YT2412345678", "YT2412345678901", "/labels/1.pdf")
    assert fresh.shipped_at == ship_date and fresh.confirm_attempts == 1
    assert ledger.get_order(oid).state is OrderState.VERIFIED
    assert ledger.open_package(oid) is None
    package_rows = [(h["from"], h["to"]) for h in ledger.history(oid) if h["package_id"] == package.id]
    assert package_rows == [(None, "PLANNED"), ("PLANNED", "LABEL_CLAIMED"),
                            ("LABEL_CLAIMED", "LABEL_CREATED"), ("LABEL_CREATED", "LABELED"),
                            ("LABELED", "CONFIRMING"),
                            ("CONFIRMING", "CONFIRMED"), ("CONFIRMED", "VERIFIED")]
    order_rows = [h["to"] for h in ledger.history(oid) if h["package_id"] is None]
    assert order_rows == ["NEW", "PLANNED", "LABEL_CLAIMED", "LABELED", "CONFIRMING", "CONFIRMED", "VERIFIED"]
    assert "tracking_number" in [h for h in ledger.history(oid) if h["to"] == "LABELED"][0]["note"]


def test_the_carrier_amazon_filed_a_package_under_is_recorded_as_it_is_verified(ledger: SqlLedger) -> None:
    """``filed_as``: Amazon's carrier name when its read-back shows the package under another than
    the code sent. Written by the advance() that verifies it, read back by every package read, and
    named (never its value) in the history; None, and '' given, is no carrier of Amazon's."""
    package = claim(ledger, planned(ledger))
    oid = package.order_id
    assert package.filed_as is None  # not judged yet
    package = ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.CONFIRMED,
                             OrderState.CONFIRMED, tracking_number="YT1", filed_as=None)
    assert package.filed_as is None and ledger.get_package(package.id).filed_as is None
    verified = ledger.advance(package, PackageState.CONFIRMED, PackageState.VERIFIED, OrderState.VERIFIED,
                              filed_as=" Other ")
    assert verified.filed_as == "Other"
    assert ledger.get_package(package.id) == verified == ledger.packages(oid)[0]
    (row,) = [h for h in ledger.history(oid) if h["package_id"] == package.id and h["to"] == "VERIFIED"]
    assert row["note"] == "package 1; set filed_as"
    history = ledger.history(oid)
    again = ledger.advance(verified, PackageState.VERIFIED, PackageState.VERIFIED, filed_as="Other")
    assert again.filed_as == "Other" and ledger.history(oid) == history  # the same value: no change
    cleared = ledger.advance(again, PackageState.VERIFIED, PackageState.VERIFIED, filed_as="")
    assert cleared.filed_as is None and ledger.get_package(package.id).filed_as is None


def test_advance_can_update_fields_without_moving_state(ledger: SqlLedger) -> None:
    package = planned(ledger)
    package = ledger.advance(package, PackageState.PLANNED, PackageState.PLANNED, service="ZXR2")
    assert ledger.packages(package.order_id)[0].service == "ZXR2"
    history = ledger.history(package.order_id)
    ledger.advance(package, PackageState.PLANNED, PackageState.PLANNED)  # nothing at all
    assert ledger.history(package.order_id) == history


def test_advance_records_only_real_changes_and_bookkeeping_alone_writes_no_transition(ledger: SqlLedger
                                                                                       ) -> None:
    """A tracking poll hands advance() every field it follows. Values that are already stored are
    no change (the note never claims them), and a same-state change of only the polling
    bookkeeping (next_track_at, track_failures) is stored without a history row."""
    package = planned(ledger)
    oid = package.order_id
    history = ledger.history(oid)
    due = T0 + timedelta(hours=6)
    package = ledger.advance(package, PackageState.PLANNED, PackageState.PLANNED, first_scan_at=None,
                             last_scan_at=None, delivered_at=None, scans=0, next_track_at=due,
                             track_failures=0)
    assert package.next_track_at == due and ledger.get_package(package.id).next_track_at == due
    assert ledger.history(oid) == history  # nothing but the next poll's time changed
    package = ledger.advance(package, PackageState.PLANNED, PackageState.PLANNED, track_failures=1)
    assert package.track_failures == 1 and ledger.history(oid) == history

    scan = T0 + timedelta(hours=1)
    package = ledger.advance(package, PackageState.PLANNED, PackageState.PLANNED, first_scan_at=scan,
                             last_scan_at=scan, delivered_at=None, scans=1, next_track_at=due,
                             track_failures=0)
    rows = ledger.history(oid)[len(history):]
    assert [(r["from"], r["to"], r["note"]) for r in rows] == [
        ("PLANNED", "PLANNED", "package 1; set first_scan_at, last_scan_at, scans, track_failures")]
    assert (package.first_scan_at, package.scans, package.track_failures) == (scan, 1, 0)
    history = ledger.history(oid)
    ledger.advance(package, PackageState.PLANNED, PackageState.PLANNED, first_scan_at=scan,
                   last_scan_at=scan, scans=1)  # the same values again: no change
    assert ledger.history(oid) == history


def test_advance_can_leave_the_moved_order_resting_in_the_same_transaction(ledger: SqlLedger,
                                                                           clock: Clock) -> None:
    package = claim(ledger, planned(ledger))
    oid = package.order_id
    package = ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.CONFIRMED,
                             OrderState.CONFIRMED, order_rests_for=timedelta(minutes=30))
    record = ledger.get_order(oid)
    assert record.state is OrderState.CONFIRMED and record.attempts == 0
    assert record.next_attempt_at == package.updated_at + timedelta(minutes=30)  # as snooze() leaves it
    assert ledger.orders(due_before=clock.now) == []
    assert [r.order_id for r in ledger.orders(due_before=clock.now + timedelta(minutes=30))] == [oid]
    # without it, the moved order is due at once (a new step starts)
    ledger.advance(package, PackageState.CONFIRMED, PackageState.CONFIRMING, OrderState.CONFIRMING)
    assert ledger.get_order(oid).next_attempt_at is None


def test_stale_advance_raises_and_changes_nothing(ledger: SqlLedger) -> None:
    package = planned(ledger)
    claimed = claim(ledger, package)
    snapshot = (ledger.packages(package.order_id), ledger.get_order(package.order_id),
                ledger.history(package.order_id))
    with pytest.raises(StaleStateError, match="is LABEL_CLAIMED, expected PLANNED"):
        ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABELED,
                       tracking_number="X1", error="second buyer")
    assert (ledger.packages(package.order_id), ledger.get_order(package.order_id),
            ledger.history(package.order_id)) == snapshot
    assert ledger.packages(package.order_id) == [claimed]


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-then-read"])
def test_advance_hands_back_the_row_as_written_with_or_without_returning(ledger: SqlLedger,
                                                                          returning: bool) -> None:
    """``UPDATE ... RETURNING`` where the store has it (PostgreSQL, SQLite 3.35 and later), a read
    after the update where it does not: the same package back, the same refusal of a stale one."""
    ledger.returning = returning
    package = claim(ledger, planned(ledger))
    assert package.state is PackageState.LABEL_CLAIMED and ledger.packages(package.order_id) == [package]
    labeled = ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                             tracking_number="YT1")
    assert labeled.tracking_number == "YT1" and labeled.state is PackageState.LABELED
    assert ledger.packages(package.order_id) == [labeled]
    with pytest.raises(StaleStateError, match="is LABELED, expected LABEL_CLAIMED"):
        ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED, tracking_number="YT2")
    with pytest.raises(KeyError, match="unknown package"):
        ledger.advance(dataclasses.replace(package, id=package.id + 1000), PackageState.LABEL_CLAIMED,
                       PackageState.LABELED)
    assert ledger.packages(package.order_id) == [labeled]


def test_advance_of_a_package_not_in_the_ledger_raises_and_writes_nothing(ledger: SqlLedger) -> None:
    package = planned(ledger)
    history = ledger.history(package.order_id)
    ghost = dataclasses.replace(package, id=package.id + 1000)
    with pytest.raises(KeyError, match=f"unknown package {ghost.id}"):
        ledger.advance(ghost, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    assert ledger.history(package.order_id) == history and ledger.packages(package.order_id) == [package]


@pytest.mark.parametrize("fields, message", [
    ({"tracking": "X"}, "unknown package field 'tracking'"),
    ({"idempotency_key": "other"}, "cannot be changed"),
    ({"order_id": "other"}, "cannot be changed"),
    ({"state": "LABELED"}, "cannot be changed"),
    ({"carrier": "yanwen"}, "only change while the package is PLANNED"),
    ({"confirm_attempts": -1}, "non-negative"),
    ({"tracking_number": 42}, "must be a string"),
    ({"shipped_at": "2026-03-01"}, "datetime"),
    ({"filed_as": 7}, "filed_as must be a string or None"),
])
def test_advance_rejects_bad_fields_before_touching_anything(ledger: SqlLedger, fields, message) -> None:
    package = planned(ledger)
    claimed = claim(ledger, package)
    history = ledger.history(package.order_id)
    with pytest.raises(ValueError, match=re.escape(message)):
        ledger.advance(claimed, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                       **fields)
    assert ledger.packages(package.order_id) == [claimed]
    assert ledger.get_order(package.order_id).state is OrderState.LABEL_CLAIMED
    assert ledger.history(package.order_id) == history


def test_advance_cannot_hold_an_order(ledger: SqlLedger) -> None:
    package = planned(ledger)
    with pytest.raises(ValueError, match="hold"):
        ledger.advance(package, PackageState.PLANNED, PackageState.FAILED, OrderState.HELD)
    assert ledger.packages(package.order_id)[0].state is PackageState.PLANNED


def test_a_label_bought_while_the_order_was_held_is_recorded_and_the_hold_stays(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    claimed = claim(ledger, package)
    ledger.hold(oid, "manual", "operator is checking the address")  # meanwhile, a human holds it
    labeled = ledger.advance(claimed, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                             tracking_number="YT1", label_path="/labels/1.pdf")
    assert labeled.state is PackageState.LABELED and labeled.tracking_number == "YT1"
    record = ledger.get_order(oid)
    assert record.state is OrderState.HELD and record.held_from is OrderState.LABELED
    assert ledger.release(oid) is OrderState.LABELED


# -- a package change and the order's hold, in one transaction ---------------------------------------

def _audit(ledger: SqlLedger, oid: str) -> tuple[list, list]:
    """The order's history and events, without their times and ids (two orders compared)."""
    history = [(h["from"], h["to"], h["note"], h["package_id"] is not None) for h in ledger.history(oid)]
    events = [(e.type, {k: v for k, v in e.data.items() if k != "order_id"})
              for e in ledger.events(order_id=oid)]
    return history, events


def _everything(ledger: SqlLedger, oid: str) -> tuple:
    return ledger.get_order(oid), ledger.packages(oid), ledger.history(oid), ledger.events(order_id=oid)


REFUSED = dict(expect=PackageState.LABEL_CLAIMED, new=PackageState.FAILED, order_state=OrderState.NEW,
               fields={"error": "postcode not served"})
FOUND = dict(expect=PackageState.LABEL_CLAIMED, new=PackageState.LABEL_CREATED,
             fields={"carrier_shipment_id": "W1", "tracking_number": "YT1"})


@pytest.mark.parametrize("change, reason", [(REFUSED, "carrier_rejected"), (FOUND, "shipped_elsewhere")],
                         ids=["refused", "found"])
def test_hold_with_a_package_change_writes_what_advance_then_hold_did(ledger: SqlLedger, change,
                                                                      reason) -> None:
    """The label step's two decisions that record the package and hold the order (a first create
    refused; a label found for an order shipped elsewhere) leave the history and the events that
    advance() then hold() left, in one transaction."""
    one, two = (claim(ledger, planned(ledger, oid)) for oid in ("111-0000001-0000001", "111-0000001-0000002"))
    message = "what the label step says"
    ledger.advance(one, change["expect"], change["new"], change.get("order_state"), **change["fields"])
    assert ledger.hold(one.order_id, reason, message) is True
    told = len(ledger.history(two.order_id))
    assert ledger.hold(two.order_id, reason, message, change=PackageChange(two, **change)) is True
    record, (package,) = ledger.get_order(two.order_id), ledger.packages(two.order_id)
    assert (record.state, record.hold_reason, record.hold_message) == (OrderState.HELD, reason, message)
    assert record.held_from is (change.get("order_state") or OrderState.LABEL_CLAIMED)
    assert package.state is change["new"]
    assert all(getattr(package, name) == value for name, value in change["fields"].items())
    assert _audit(ledger, two.order_id) == _audit(ledger, one.order_id)
    assert len({h["at"] for h in ledger.history(two.order_id)[told:]}) == 1  # one transaction, one time


def test_hold_with_a_package_change_writes_nothing_when_either_write_fails(
        ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    package = claim(ledger, planned(ledger))
    oid = package.order_id
    before = _everything(ledger, oid)

    def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(SqlLedger, "_hold_order", broken)  # the package written, then the hold fails
    with pytest.raises(OSError):
        ledger.hold(oid, "carrier_rejected", "refused", change=PackageChange(package, **REFUSED))
    monkeypatch.undo()
    assert _everything(ledger, oid) == before
    stale = dataclasses.replace(package, state=PackageState.PLANNED)  # its compare-and-set fails
    with pytest.raises(StaleStateError, match="LABEL_CLAIMED, expected PLANNED"):
        ledger.hold(oid, "carrier_rejected", "refused",
                    change=PackageChange(stale, PackageState.PLANNED, PackageState.FAILED, OrderState.NEW))
    assert _everything(ledger, oid) == before
    another = dataclasses.replace(package, order_id="111-0000001-0000002")
    with pytest.raises(ValueError, match="order 111-0000001-0000002's"):
        ledger.hold(oid, "carrier_rejected", "refused", change=PackageChange(another, **REFUSED))
    assert _everything(ledger, oid) == before


def test_hold_with_a_package_change_keeps_a_hold_made_meanwhile_and_records_the_package(ledger: SqlLedger
                                                                                          ) -> None:
    package = claim(ledger, planned(ledger))
    oid = package.order_id
    ledger.hold(oid, "manual", "checking the address")  # a person held it while the step ran
    assert ledger.hold(oid, "shipped_elsewhere", "void it", keep_held=True,
                       change=PackageChange(package, **FOUND)) is False
    record = ledger.get_order(oid)
    assert (record.state, record.hold_reason, record.held_from) == (OrderState.HELD, "manual",
                                                                    OrderState.LABEL_CLAIMED)
    assert record.hold_message == "checking the address; shipped_elsewhere: void it"
    assert ledger.packages(oid)[0].state is PackageState.LABEL_CREATED


def test_hold_with_a_package_change_of_a_finished_order_records_the_package_alone(ledger: SqlLedger) -> None:
    """As with advance(), the package change (a label paid for) is never refused for its order's
    state; the order, ended meanwhile, is not held: OrderFinishedError once the change is committed."""
    from connector.ledger.base import OrderFinishedError

    package = claim(ledger, planned(ledger))
    oid = package.order_id
    ledger.set_order_state(oid, [OrderState.LABEL_CLAIMED], OrderState.CANCELLED, note="Amazon cancelled")
    with pytest.raises(OrderFinishedError, match="CANCELLED"):
        ledger.hold(oid, "shipped_elsewhere", "void it", change=PackageChange(package, **FOUND))
    record, (found,) = ledger.get_order(oid), ledger.packages(oid)
    assert record.state is OrderState.CANCELLED and record.hold_reason == ""
    assert found.state is PackageState.LABEL_CREATED and found.tracking_number == "YT1"


def test_giving_a_label_claim_up_fails_it_and_releases_the_order_to_new_at_once(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    claim(ledger, package)
    ledger.hold(oid, "manual", "looking")
    with pytest.raises(ValueError, match="held manual"):  # maybe caught mid-step: never
        ledger.give_up_claims(oid, "none at the carrier")
    ledger.hold(oid, "label_uncertain", "a call lost its answer")
    assert ledger.give_up_claims(oid, "none at the carrier") == (OrderState.NEW, [package.idempotency_key])
    record, (failed,) = ledger.get_order(oid), ledger.packages(oid)
    assert record.state is OrderState.NEW and not record.hold_reason and record.held_from is None
    assert failed.state is PackageState.FAILED and failed.error == "none at the carrier"
    assert [(h["from"], h["to"]) for h in ledger.history(oid)][-2:] == [("LABEL_CLAIMED", "FAILED"),
                                                                         ("HELD", "NEW")]
    with pytest.raises(StaleStateError, match="not HELD"):
        ledger.give_up_claims(oid, "again")
    ledger.hold(oid, "label_uncertain", "again")
    with pytest.raises(ValueError, match="no label claim to give up"):
        ledger.give_up_claims(oid, "again")


def test_a_label_voided_while_the_order_is_held_ends_the_order_and_its_hold(ledger: SqlLedger) -> None:
    """An operator voids a held order's label: nothing is left to ship, so it is not left HELD."""
    package = planned(ledger)
    oid = package.order_id
    labeled = ledger.advance(claim(ledger, package), PackageState.LABEL_CLAIMED, PackageState.LABELED,
                             OrderState.LABELED, tracking_number="YT1")
    ledger.hold(oid, "tracking_number_late", "no number yet")
    voiding = ledger.advance(labeled, PackageState.LABELED, PackageState.VOIDING, OrderState.VOIDING)
    assert ledger.get_order(oid).held_from is OrderState.VOIDING  # a claim alone does not end the hold
    ledger.advance(voiding, PackageState.VOIDING, PackageState.VOIDED, OrderState.VOIDED)
    record = ledger.get_order(oid)
    assert record.state is OrderState.VOIDED
    assert (record.hold_reason, record.hold_message, record.held_from) == ("", "", None)
    order_rows = [(h["from"], h["to"]) for h in ledger.history(oid) if h["package_id"] is None]
    assert order_rows[-2:] == [("HELD", "HELD"), ("HELD", "VOIDED")]


def test_a_shipped_order_can_be_held_and_its_parcel_is_still_followed(ledger: SqlLedger) -> None:
    """A void the carrier refused holds a shipped order; tracking moves its package, not the hold."""
    package = planned(ledger)
    oid = package.order_id
    for old_state, new_state in ((PackageState.PLANNED, PackageState.LABEL_CLAIMED),
                                 (PackageState.LABEL_CLAIMED, PackageState.LABELED),
                                 (PackageState.LABELED, PackageState.CONFIRMING),
                                 (PackageState.CONFIRMING, PackageState.CONFIRMED),
                                 (PackageState.CONFIRMED, PackageState.VERIFIED)):
        package = ledger.advance(package, old_state, new_state, OrderState(new_state.value),
                                 **({"tracking_number": "YT1"} if new_state is PackageState.LABELED else {}))
    ledger.hold(oid, "void_refused", "the carrier has scanned the parcel")
    moved = ledger.advance(package, PackageState.VERIFIED, PackageState.IN_TRANSIT, OrderState.IN_TRANSIT)
    assert moved.state is PackageState.IN_TRANSIT
    record = ledger.get_order(oid)
    assert record.state is OrderState.HELD and record.held_from is OrderState.IN_TRANSIT
    assert ledger.release(oid) is OrderState.IN_TRANSIT


def test_a_cancelled_order_is_not_resurrected_by_its_package(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    claimed = claim(ledger, package)
    ledger.set_order_state(oid, [OrderState.LABEL_CLAIMED], OrderState.CANCELLED, note="Amazon cancelled")
    labeled = ledger.advance(claimed, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                             tracking_number="YT1")
    assert labeled.tracking_number == "YT1"  # the paid label is known, so it can be voided
    assert ledger.get_order(oid).state is OrderState.CANCELLED
    assert "stays CANCELLED" in ledger.history(oid)[-1]["note"]


def test_unknown_package_is_a_key_error(ledger: SqlLedger) -> None:
    package = planned(ledger)
    ghost = Package(id=package.id + 100, order_id=package.order_id, package_ref="9", idempotency_key="G",
                    carrier="c", service="s", state=PackageState.PLANNED)
    with pytest.raises(KeyError):
        ledger.advance(ghost, PackageState.PLANNED, PackageState.LABEL_CLAIMED)


# -- watermarks, counts, history ---------------------------------------------------------------------

def test_watermarks_per_account(ledger: SqlLedger) -> None:
    assert ledger.get_watermark("acme") is None
    ledger.set_watermark("acme", T0)
    ledger.set_watermark("globex", T0 + timedelta(hours=1))
    ledger.set_watermark("acme", T0 + timedelta(minutes=2, microseconds=7))
    assert ledger.get_watermark("acme") == T0 + timedelta(minutes=2, microseconds=7)
    assert ledger.get_watermark("globex") == T0 + timedelta(hours=1)
    assert ledger.get_watermark("acme").tzinfo is not None


def test_counts_per_state(ledger: SqlLedger) -> None:
    assert ledger.counts() == {}
    planned(ledger, "111-0000000-0000001")
    ledger.upsert_order(make_order("111-0000000-0000002"))
    ledger.upsert_order(make_order("111-0000000-0000003"))
    ledger.set_order_state("111-0000000-0000003", [OrderState.NEW], OrderState.CANCELLED)
    assert ledger.counts() == {"PLANNED": 1, "NEW": 1, "CANCELLED": 1}


def test_every_state_change_leaves_an_audit_row_in_the_same_transaction(ledger: SqlLedger) -> None:
    package = planned(ledger)
    oid = package.order_id
    ledger.hold(oid, "unknown_sku", "SKU-RED")
    ledger.release(oid)
    ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    # Every order row's state is explained by its last order-level transition ...
    last = raw(ledger, "SELECT to_state FROM transitions WHERE order_id = ? AND package_id IS NULL"
                        " ORDER BY id DESC LIMIT 1", oid)
    assert last == [("LABEL_CLAIMED",)] == raw(ledger, "SELECT state FROM orders")
    # ... and each package's by its own.
    assert raw(ledger, "SELECT to_state FROM transitions WHERE package_id = ? ORDER BY id DESC LIMIT 1",
               package.id) == raw(ledger, "SELECT state FROM packages")
    history = ledger.history(oid)
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)
    assert history[3]["to"] == "HELD" and history[3]["note"] == "unknown_sku: SKU-RED"
    assert ledger.history("nope") == []


def test_a_failed_write_leaves_neither_state_nor_audit_row(ledger: SqlLedger,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    package = planned(ledger)

    def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(SqlLedger, "_transition", staticmethod(broken))
    with pytest.raises(OSError):
        ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    monkeypatch.undo()
    assert ledger.packages(package.order_id)[0].state is PackageState.PLANNED
    assert ledger.get_order(package.order_id).state is OrderState.PLANNED
    ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED)  # no transaction left open


# -- buyer PII at rest -----------------------------------------------------------------------------

def _files_bytes(db_path: Path) -> dict[str, bytes]:
    out = {}
    for suffix in ("", "-wal"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            out[p.name] = p.read_bytes()
    return out


def test_buyer_pii_is_not_readable_in_the_database_or_wal(ledger: SqlLedger, db_path: Path) -> None:
    for n in range(5):
        ledger.upsert_order(make_order(f"111-0000000-000000{n}"))
        ledger.hold(f"111-0000000-000000{n}", "address_incomplete", "missing: line2")
        ledger.upsert_order(make_order(f"111-0000000-000000{n}", ship_to=address(line2="Apt 5")))
    files = _files_bytes(db_path)
    assert set(files) == {"ledger.db", "ledger.db-wal"} and files["ledger.db-wal"]
    everything = b"".join(files.values())
    assert b"111-0000000-0000003" in everything  # the check can see what is stored in clear
    assert b"SKU-RED" in everything
    for secret in (BUYER_NAME, BUYER_STREET, BUYER_PHONE, "Apt 5", "Springfield"):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in everything, (secret, encoding)
    # ... also once the WAL has been folded into the main file.
    ledger.close()
    main = db_path.read_bytes()
    assert b"SKU-RED" in main
    assert BUYER_NAME.encode() not in main and BUYER_STREET.encode() not in main


def test_the_raw_pii_column_is_a_fernet_token(ledger: SqlLedger, key: bytes) -> None:
    ledger.upsert_order(make_order())
    (blob, data), = raw(ledger, "SELECT pii, data FROM orders")
    assert isinstance(blob, bytes) and blob.startswith(b"gAAAAA")
    assert BUYER_NAME not in data and "ship_to" not in data
    assert PiiCipher([key]).decrypt(blob)["address"]["name"] == BUYER_NAME


def test_purge_pii(ledger: SqlLedger) -> None:
    ids = [f"111-0000000-000000{n}" for n in range(3)]
    for oid in ids:
        ledger.upsert_order(make_order(oid))
    assert ledger.purge_pii([ids[0], ids[1], ids[1], "unknown"]) == 2
    for oid in ids[:2]:
        record = ledger.get_order(oid)
        assert record.pii_purged and record.order.ship_to is None
        assert record.order.total == Money(Decimal("19.98"), "USD")  # non-PII data stays
        assert ledger.history(oid)[-1]["note"] == "pii purged"
    assert raw(ledger, "SELECT COUNT(*) FROM orders"
                        " WHERE pii IS NULL AND pii_purged_at IS NOT NULL") == [(2,)]
    assert ledger.get_order(ids[2]).order.ship_to == address()
    assert ledger.purge_pii(ids[:2]) == 0  # already purged
    assert ledger.purge_pii([]) == 0
    ledger.upsert_order(make_order(ids[0]))  # Amazon sends it again: it is not stored again
    assert ledger.get_order(ids[0]).order.ship_to is None


def test_key_rotation_with_rotate_pii(db_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    led = SqliteLedger(db_path, PiiCipher([old]))
    led.migrate()
    led.upsert_order(make_order())
    led.close()

    led = SqliteLedger(db_path, PiiCipher([new, old]))
    assert led.get_order("111-0000001-0000001").order.ship_to == address()
    assert led.rotate_pii() == 1
    led.close()

    only_new = SqliteLedger(db_path, PiiCipher([new]))
    only_new.check_key()
    assert only_new.get_order("111-0000001-0000001").order.ship_to == address()
    only_new.close()
    only_old = SqliteLedger(db_path, PiiCipher([old]))
    with pytest.raises(PiiDecryptError, match="restore the original key") as err:
        only_old.check_key()
    assert BUYER_NAME not in str(err.value)
    with pytest.raises(PiiDecryptError, match="111-0000001-0000001"):
        only_old.get_order("111-0000001-0000001")
    only_old.close()


def test_a_blob_moved_to_another_order_is_detected(ledger: SqlLedger) -> None:
    ledger.upsert_order(make_order("111-0000000-0000001"))
    ledger.upsert_order(make_order("111-0000000-0000002", ship_to=Address()))
    raw(ledger, "UPDATE orders SET pii = (SELECT pii FROM orders WHERE order_id = '111-0000000-0000001')"
                 " WHERE order_id = '111-0000000-0000002'")
    with pytest.raises(PiiDecryptError, match="another order"):
        ledger.get_order("111-0000000-0000002")


# -- connections, concurrency ---------------------------------------------------------------------------

def test_every_connection_is_wal_full_sync_with_foreign_keys(ledger: SqlLedger, db_path: Path) -> None:
    def pragmas() -> tuple:
        conn = ledger._conn()
        return tuple(conn.execute(f"PRAGMA {p}").fetchone()[0]
                     for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"))

    with ThreadPoolExecutor(3) as pool:
        seen = list(pool.map(lambda _: pragmas(), range(6)))
    assert set(seen) == {pragmas()} == {("wal", 2, 1, 10000)}


def test_threads_advancing_different_packages(ledger: SqlLedger) -> None:
    ids = [f"111-0000000-{n:07d}" for n in range(24)]
    packages = [planned(ledger, oid) for oid in ids]
    chain = [(PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED),
             (PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED),
             (PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING),
             (PackageState.CONFIRMING, PackageState.CONFIRMED, OrderState.CONFIRMED),
             (PackageState.CONFIRMED, PackageState.VERIFIED, OrderState.VERIFIED)]

    def ship(package: Package) -> str:
        for expect, new, order_state in chain:
            fields = {"tracking_number": f"YT{package.id:010d}"} if new is PackageState.LABELED else {}
            package = ledger.advance(package, expect, new, order_state, **fields)
        return package.tracking_number

    with ThreadPoolExecutor(8) as pool:
        tracking = list(pool.map(ship, packages))
    assert tracking == [f"YT{p.id:010d}" for p in packages]
    assert ledger.counts() == {"VERIFIED": len(ids)}
    for oid in ids:
        assert [h["to"] for h in ledger.history(oid)].count("VERIFIED") == 2  # package + order


def test_two_threads_racing_to_claim_one_package_exactly_one_wins(ledger: SqlLedger) -> None:
    for round_ in range(15):
        package = planned(ledger, f"111-0000000-{round_:07d}")
        outcomes = race(*(
            lambda worker=worker, package=package: ledger.advance(
                package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED,
                carrier_shipment_id=worker)
            for worker in ("a", "b")))
        assert outcomes == ["stale", "won"]
        claims = [h for h in ledger.history(package.order_id)
                  if h["to"] == "LABEL_CLAIMED" and h["package_id"] == package.id]
        assert len(claims) == 1


def test_two_threads_racing_to_plan_one_order_make_one_package(ledger: SqlLedger) -> None:
    ledger.upsert_order(make_order())
    outcomes = race(*(
        lambda n=n: ledger.plan_package("111-0000001-0000001", str(n), f"K-{n}", "c", "s", ITEMS)
        for n in (1, 2)))
    assert outcomes == ["stale", "won"]
    assert len(ledger.packages("111-0000001-0000001")) == 1


def test_closed_ledger_refuses_work(db_path: Path, key: bytes) -> None:
    led = SqliteLedger(db_path, PiiCipher([key]))
    led.migrate()
    led.close()
    with pytest.raises(RuntimeError, match="closed"):
        led.counts()


@pytest.mark.skipif(not sqlite_store.KEY_LOCKS, reason="open file description locks are Linux's (64-bit)")
def test_a_key_held_through_one_ledger_is_refused_through_another(db_path: Path, key: bytes) -> None:
    """As the daemon and a command beside it (``orders void``) each open the file: one may work
    on a key (an order, a feed) while the other may not. A lock owned by the process would let
    both through here, and be dropped when either closed a descriptor."""
    daemon, command = SqliteLedger(db_path, PiiCipher([key])), SqliteLedger(db_path, PiiCipher([key]))
    try:
        with daemon.exclusive("order:111-0000001-0000001") as mine:
            assert mine
            with command.exclusive("order:111-0000001-0000001") as theirs:
                assert not theirs
            with command.exclusive("order:111-0000001-0000002") as other, command.exclusive("feed:1") as feed:
                assert other and feed
            with daemon.exclusive("feed:1") as again:  # its own descriptor too
                assert again
        with command.exclusive("order:111-0000001-0000001") as theirs:
            assert theirs
    finally:
        daemon.close()
        command.close()


@pytest.mark.skipif(not sqlite_store.KEY_LOCKS, reason="open file description locks are Linux's (64-bit)")
def test_a_key_lock_file_that_cannot_be_used_stops_the_ledger_opening(db_path: Path, key: bytes) -> None:
    """Not the daemon's first order step, later: made by another user (here a directory, which
    root cannot open either), the file is named when the ledger opens."""
    os.mkdir(str(db_path) + ".keys.lock")
    with pytest.raises(ConnectionError, match=r"cannot open: cannot open .*ledger\.db\.keys\.lock"):
        SqliteLedger(db_path, PiiCipher([key]))


@pytest.mark.skipif(not sqlite_store.KEY_LOCKS, reason="open file description locks are Linux's (64-bit)")
def test_a_key_held_by_a_killed_process_is_free_at_once(db_path: Path, key: bytes) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from connector.ledger.crypto import PiiCipher
            from connector.ledger.sqlite import SqliteLedger
            led = SqliteLedger(sys.argv[1], PiiCipher([sys.argv[2].encode()]))
            with led.exclusive("order:111-0000001-0000001") as mine:
                print("held" if mine else "refused", flush=True)
                time.sleep(60)
        """), str(db_path), key.decode()], stdout=subprocess.PIPE, text=True, cwd=REPO)
    led = SqliteLedger(db_path, PiiCipher([key]))
    try:
        assert holder.stdout.readline().strip() == "held"
        with led.exclusive("order:111-0000001-0000001") as mine:
            assert not mine
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with led.exclusive("order:111-0000001-0000001") as mine:
            assert mine
    finally:
        holder.kill()
        holder.wait(10)
        led.close()


# -- crash durability --------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import os, signal, sys
    from connector.ledger.crypto import PiiCipher
    from connector.ledger.sqlite import SqliteLedger
    from connector.ledger.base import OrderState, PackageState

    led = SqliteLedger(sys.argv[1], PiiCipher([os.environ["TEST_PII_KEY"].encode()]))
    package = led.open_package("111-0000001-0000001")
    how = sys.argv[2]
    if how == "uncommitted":
        conn = led._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE packages SET state = 'LABELED', tracking_number = 'GHOST'")
        conn.execute("UPDATE orders SET state = 'LABELED'")
    else:
        led.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    if how == "exit":
        os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _run_child(db_path: Path, key: bytes, how: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TEST_PII_KEY=key.decode(),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", CHILD, str(db_path), how], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["exit", pytest.param("sigkill", marks=pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="no SIGKILL"))])
def test_a_committed_claim_survives_the_process_dying(db_path: Path, key: bytes, how: str) -> None:
    led = SqliteLedger(db_path, PiiCipher([key]))
    led.migrate()
    planned(led)
    led.close()

    result = _run_child(db_path, key, how)
    assert result.stdout == "ready\n", result.stderr
    assert result.returncode == (1 if how == "exit" else -signal.SIGKILL)

    reopened = SqliteLedger(db_path, PiiCipher([key]))
    assert reopened.migrate() > 0
    package = reopened.open_package("111-0000001-0000001")
    assert package.state is PackageState.LABEL_CLAIMED
    assert reopened.get_order("111-0000001-0000001").state is OrderState.LABEL_CLAIMED
    assert reopened.history("111-0000001-0000001")[-1]["to"] == "LABEL_CLAIMED"
    reopened.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL")
def test_an_uncommitted_change_vanishes_and_the_lock_is_released(db_path: Path, key: bytes) -> None:
    led = SqliteLedger(db_path, PiiCipher([key]))
    led.migrate()
    package = planned(led)
    led.close()

    result = _run_child(db_path, key, "uncommitted")
    assert result.stdout == "ready\n" and result.returncode == -signal.SIGKILL, result.stderr

    reopened = SqliteLedger(db_path, PiiCipher([key]))
    assert reopened.packages(package.order_id) == [package]
    assert reopened.get_order(package.order_id).state is OrderState.PLANNED
    reopened.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED)  # not locked
    reopened.close()


# -- open_ledger ------------------------------------------------------------------------------------------

@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def test_open_ledger_relative_url_creates_the_directory_and_key(tmp_path, monkeypatch, no_env_key) -> None:
    monkeypatch.chdir(tmp_path)
    led = open_ledger("sqlite:///state/nested/ledger.db", key_file="keys/pii.key", create_key=True)
    try:
        assert isinstance(led, SqliteLedger) and led.schema_version() > 0
        led.upsert_order(make_order())
        assert led.get_order("111-0000001-0000001").order.ship_to == address()
    finally:
        led.close()
    assert (tmp_path / "state" / "nested" / "ledger.db").is_file()
    if os.name == "posix":
        assert (tmp_path / "keys" / "pii.key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "state" / "nested" / "ledger.db").stat().st_mode & 0o077 == 0


def test_open_ledger_absolute_url_and_env_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV, Fernet.generate_key().decode())
    path = tmp_path / "abs" / "ledger.db"
    led = open_ledger(f"sqlite:///{path}", key_file=None, create_key=False)
    led.upsert_order(make_order())
    led.close()
    assert path.is_file() and path.is_absolute()


def test_open_ledger_refuses_a_key_that_cannot_read_the_stored_data(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv(ENV, Fernet.generate_key().decode())
    led = open_ledger(url, key_file=None, create_key=False)
    led.upsert_order(make_order())
    led.close()
    monkeypatch.setenv(ENV, Fernet.generate_key().decode())  # e.g. a regenerated key file
    with pytest.raises(PiiDecryptError, match="cannot read buyer data"):
        open_ledger(url, key_file=None, create_key=False)


def test_a_key_is_created_only_for_a_ledger_without_buyer_data(tmp_path, no_env_key) -> None:
    """create_pii_key (the sandbox's) made a fresh key for a ledger whose key file had gone; every
    stored address was then unreadable and even a read-only command left that new key behind."""
    url, key = f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "pii.key"
    open_ledger(url, key_file=str(key), create_key=True).close()  # a new ledger: made, no data yet
    key.unlink()
    with pytest.raises(PiiKeyError, match="was started with a key"):  # it knows its key: no new one
        open_ledger(url, key_file=str(key), create_key=True)
    led = open_ledger(url, key_file=str(key), create_key=True, key_check=False)  # pii adopt-key
    assert led.adopt_key()  # still no buyer data: the new key is the ledger's, on purpose
    led.upsert_order(make_order())
    led.close()
    key.unlink()  # the key is lost
    with pytest.raises(PiiKeyError, match="does not exist, but the ledger .* holds buyer data") as caught:
        open_ledger(url, key_file=str(key), create_key=True)
    assert "put that key file back" in str(caught.value) and not key.exists()


def test_open_ledger_without_a_key_fails_clearly(tmp_path, no_env_key) -> None:
    with pytest.raises(PiiKeyError, match="does not exist"):
        open_ledger(f"sqlite:///{tmp_path / 'l.db'}", key_file=str(tmp_path / "pii.key"), create_key=False)


def test_an_unreachable_postgresql_ledger_is_named_without_its_password(tmp_path) -> None:
    with pytest.raises(ConnectionError) as caught:
        open_ledger("postgresql://mfn:s3cret@127.0.0.1:1/mfn", key_file=str(tmp_path / "pii.key"),
                    create_key=True)
    assert "postgresql://127.0.0.1:1/mfn: cannot connect" in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("url", [
    "postgresql://mfn:s3cret@[::1/mfn",         # an IPv6 address without its ']'
    "postgresql://mfn:s3cret%zz@127.0.0.1/mfn",  # a '%' not percent-encoded
    'postgresql://mfn:a"s3cret%zz@127.0.0.1/mfn',  # ... after a quote, as libpq's message has them
])
def test_an_unreadable_postgresql_url_is_refused_without_its_password(tmp_path, url: str) -> None:
    """libpq quotes the part it cannot read, the password included: never shown."""
    from connector.ledger import LedgerUrlError

    with pytest.raises(LedgerUrlError, match="libpq cannot read it") as caught:
        open_ledger(url, key_file=str(tmp_path / "pii.key"), create_key=True)
    assert "s3cret" not in str(caught.value)
    assert not (tmp_path / "pii.key").exists()


@pytest.mark.parametrize("password", ["s3c@ret", "s3c@r?et"])  # libpq reads on past a '?' to the '@'
def test_a_password_with_an_at_sign_is_neither_shown_nor_taken_for_the_host(tmp_path, password) -> None:
    """libpq splits at the first '@': the password's tail became the host, named in every message."""
    with pytest.raises(ConnectionError) as caught:
        open_ledger(f"postgresql://mfn:{password}@127.0.0.1:1/mfn", key_file=str(tmp_path / "pii.key"),
                    create_key=True)
    assert "postgresql://127.0.0.1:1/mfn: cannot connect" in str(caught.value)
    assert "et@" not in str(caught.value) and "s3c" not in str(caught.value)


def test_a_password_with_a_slash_is_refused_without_showing_it(tmp_path) -> None:
    """libpq ends the user info at a '/': user and password became host and port, the password's
    rest the database name, and the location named in every message was the whole password."""
    from connector.ledger import LedgerUrlError

    with pytest.raises(LedgerUrlError, match="percent-encode") as caught:
        open_ledger("postgresql://mfn:s3c/ret@127.0.0.1:1/mfn", key_file=str(tmp_path / "pii.key"),
                    create_key=True)
    assert "s3c" not in str(caught.value) and "ret" not in str(caught.value)


@pytest.mark.parametrize("url, message", [
    ("mysql://x/y", "unsupported ledger URL"),
    ("ledger.db", "unsupported ledger URL"),
    ("sqlite:///:memory:", "must name a database file"),
    ("sqlite:///", "must name a database file"),
    ("sqlite://relative.db", "not a SQLite ledger URL"),
    ("sqlite:///x.db?mode=ro", "query strings"),
])
def test_open_ledger_rejects_unsupported_urls(tmp_path, url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        open_ledger(url, key_file=str(tmp_path / "pii.key"), create_key=True)
    assert not (tmp_path / "pii.key").exists()


def test_a_release_from_a_waivable_hold_is_remembered_and_no_other(ledger: SqlLedger) -> None:
    oid = "111-0000001-0000001"
    ledger.upsert_order(make_order(cancel=True))
    assert ledger.get_order(oid).cancel_request_stands
    ledger.hold(oid, "manual", "")
    ledger.release(oid)
    assert ledger.get_order(oid).waived == frozenset()  # a manual hold waives nothing
    ledger.hold(oid, "buyer_cancel_requested", "the buyer asked to cancel")
    ledger.release(oid)
    record = ledger.get_order(oid)
    assert record.waived == {"buyer_cancel_requested"} and not record.cancel_request_stands
    ledger.hold(oid, "unknown_sku", "SKU-RED")
    ledger.release(oid)
    assert ledger.get_order(oid).waived == {"buyer_cancel_requested"}  # kept across later holds


def test_a_print_batch_of_first_prints_is_refused_when_another_marked_a_label_first(ledger):
    """Two clerks print the unprinted labels at once: the second batch records nothing."""
    a, b = (labeled(ledger, f"111-0000000-000003{n}") for n in range(2))
    ledger.record_print_batch("/print/1.pdf", [a.id], pages=2, first_prints=True)
    with pytest.raises(StaleStateError, match="printed by another batch meanwhile"):
        ledger.record_print_batch("/print/2.pdf", [b.id, a.id], pages=3, first_prints=True)
    marks = ledger.label_marks([a.id, b.id])
    assert (marks[a.id].print_count, marks[b.id].print_count) == (1, 0)  # b's mark rolled back too
    again = ledger.record_print_batch("/print/3.pdf", [a.id], pages=2)  # a reprint, asked for
    assert again.reprints == 1 and ledger.label_marks([a.id])[a.id].print_count == 2


def test_a_print_batch_holding_a_label_voided_or_erased_meanwhile_records_nothing(ledger):
    """A label voided (or erased with its buyer's data) after the batch chose it must not be
    marked printed: the batch is refused whole, like one another batch overtook."""
    live, dead = (labeled(ledger, f"111-0000000-000005{n}") for n in range(2))
    ledger.purge_pii([dead.order_id])
    with pytest.raises(StaleStateError, match="voided or erased meanwhile"):
        ledger.record_print_batch("/print/1.pdf", [live.id, dead.id], pages=3, first_prints=True)
    marks = ledger.label_marks([live.id, dead.id])
    assert (marks[live.id].print_count, marks[dead.id].print_count) == (0, 0)
    assert ledger.print_batches() == []


def labeled(ledger: SqlLedger, order_id: str, ref: str = "1") -> Package:
    package = claim(ledger, planned(ledger, order_id, ref))
    return ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                          tracking_number=f"YT{order_id[-4:]}{ref}",
                          label_path=f"/labels/{order_id}-{ref}.pdf")


def test_a_purge_erases_the_orders_labels_and_names_the_batches_holding_one(ledger: SqlLedger) -> None:
    """The address goes, and the labels showing it with it: marked erased in the same transaction
    (never printed or served again); the print batches holding one are named for deletion."""
    gone, kept, unprinted = (labeled(ledger, f"111-0000000-000004{n}") for n in range(3))
    no_label = planned(ledger, "111-0000000-0000043")
    both = ledger.record_print_batch("/print/1.pdf", [gone.id, kept.id], pages=3, first_prints=True)
    only_kept = ledger.record_print_batch("/print/2.pdf", [kept.id], pages=2)
    assert ledger.print_batch_paths() == [(both.id, "/print/1.pdf"), (only_kept.id, "/print/2.pdf")]
    assert ledger.print_batches_with_erased_labels([both.id, only_kept.id]) == set()
    assert ledger.purged_orders([gone.order_id, kept.order_id]) == set()

    assert ledger.purge_pii([gone.order_id, unprinted.order_id, no_label.order_id]) == 3

    erased = ledger.get_package(gone.id)
    assert erased.label_erased_at is not None and erased.label_path  # where it was stays on record
    assert ledger.get_package(no_label.id).label_erased_at is None  # it never had a label
    assert ledger.get_package(kept.id).label_erased_at is None
    assert ledger.purged_orders([gone.order_id, kept.order_id, "no-such-order"]) == {gone.order_id}
    assert ledger.print_batches_with_erased_labels([both.id, only_kept.id]) == {both.id}
    assert ledger.print_batches_with_erased_labels([]) == set()
    assert unprinted.id not in {p.id for p in ledger.unprinted_packages()}  # never printed after
    assert ledger.purge_pii([gone.order_id]) == 0
    assert ledger.get_package(gone.id).label_erased_at == erased.label_erased_at  # the first purge's time


def test_alerts_are_read_by_kind_open_or_all(ledger: SqlLedger) -> None:
    """A worker keeping track of one kind of open alert reads only that kind, not every parcel's."""
    assert ledger.raise_alert("parcel_late", "111-0000001-0000001", "late", {})
    assert ledger.raise_alert("carrier_filed_differently", "US:YunExpress", "filed as Other", {})
    assert ledger.raise_alert("carrier_filed_differently", "DE:Yanwen", "filed as Other", {})
    assert ledger.resolve_alert("carrier_filed_differently", "DE:Yanwen")
    assert [a.subject for a in ledger.alerts(kind="carrier_filed_differently")] == ["US:YunExpress"]
    assert [a.subject for a in ledger.alerts(kind="carrier_filed_differently", open_only=False)] == [
        "US:YunExpress", "DE:Yanwen"]
    assert len(ledger.alerts()) == 2 and len(ledger.alerts(open_only=False)) == 3


def test_a_confirmation_claim_counts_from_the_attempts_it_read(ledger: SqlLedger) -> None:
    """A feed that claimed the package and gave it back (a retry code, a cancelled feed) since a
    worker read it leaves it LABELED as read, one claim later: the worker's claim from its stale
    read is refused, and nothing changes."""
    package = claim(ledger, planned(ledger))
    read = ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                          tracking_number="YT1", carrier_shipment_id="W1")
    fed = ledger.advance(read, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING,
                         confirm_attempts=read.confirm_attempts + 1)
    ledger.advance(fed, PackageState.CONFIRMING, PackageState.LABELED, OrderState.LABELED)
    with pytest.raises(StaleStateError, match="claimed 1 time"):
        ledger.advance(read, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING,
                       confirm_attempts=read.confirm_attempts + 1)
    now = ledger.get_package(read.id)
    assert (now.state, now.confirm_attempts) == (PackageState.LABELED, 1)
    assert ledger.get_order(read.order_id).state is OrderState.LABELED
    again = ledger.advance(now, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING,
                           confirm_attempts=now.confirm_attempts + 1)
    assert again.confirm_attempts == 2
