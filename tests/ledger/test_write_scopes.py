"""PostgreSQL write transactions: one order's steps exclude each other, different orders' do not,
an unscoped transaction runs alone, and the event outbox is read only up to a settled id."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from connector.ledger.crypto import PiiCipher
from connector.ledger.postgres import PostgresLedger

WAIT = 0.5  # long enough for a transaction that is not blocked to finish on a loaded machine


@pytest.fixture
def ledger(postgres_server) -> Iterator[PostgresLedger]:
    postgres_server.require()
    store = PostgresLedger(postgres_server.fresh_url(), PiiCipher([Fernet.generate_key()]))
    store.migrate()
    yield store
    store.close()


class Holder:
    """A thread holding a write transaction open until :meth:`finish`."""

    def __init__(self, ledger: PostgresLedger, scope: str | None,
                 inside: Callable[[Any], None] = lambda conn: None) -> None:
        self.started, self._release = threading.Event(), threading.Event()

        def run() -> None:
            with ledger._write(scope) as conn:
                inside(conn)
                self.started.set()
                self._release.wait(10)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.started.wait(10)

    def finish(self) -> None:
        self._release.set()
        self.thread.join(10)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    return thread, result


def write(ledger: PostgresLedger, scope: str | None) -> Callable[[], str]:
    def run() -> str:
        with ledger._write(scope):
            return "done"
    return run


def test_different_orders_write_side_by_side_and_one_order_waits(ledger) -> None:
    holder = Holder(ledger, "order-1")
    try:
        other, done = in_thread(write(ledger, "order-2"))
        other.join(WAIT * 4)
        assert done == ["done"]  # not held up by order-1's open transaction
        same, same_done = in_thread(write(ledger, "order-1"))
        unscoped, unscoped_done = in_thread(write(ledger, None))
        same.join(WAIT)
        unscoped.join(WAIT)
        assert same_done == [] and unscoped_done == []  # both wait for order-1's transaction
    finally:
        holder.finish()
    same.join(10)
    unscoped.join(10)
    assert same_done == ["done"] and unscoped_done == ["done"]


def test_an_unscoped_transaction_keeps_every_order_out(ledger) -> None:
    holder = Holder(ledger, None)
    try:
        scoped, done = in_thread(write(ledger, "order-1"))
        scoped.join(WAIT)
        assert done == []
    finally:
        holder.finish()
    scoped.join(10)
    assert done == ["done"]


def test_an_event_committed_early_is_not_read_past_an_older_one_still_in_flight(ledger) -> None:
    now = "2026-03-01T08:00:00+00:00"
    # order-1's transaction takes event id 1 and stays open; order-2's takes id 2 and commits.
    holder = Holder(ledger, "order-1", lambda conn: ledger._emit(conn, "order.test", "order-1", now, {}))
    with ledger._write("order-2") as conn:
        ledger._emit(conn, "order.test", "order-2", now, {})
    reader, read = in_thread(lambda: [e.order_id for e in ledger.events()])
    reader.join(WAIT)
    try:
        # A cursor that read [order-2] now would move past id 1 and never see order-1's event.
        assert read in ([], [["order-1", "order-2"]])
    finally:
        holder.finish()
    reader.join(10)
    assert read == [["order-1", "order-2"]]


def test_a_cursor_moved_past_unread_events_stops_before_one_still_in_flight(ledger) -> None:
    """skip_events (the hooks' cursor while no plugin listens) moves only past settled ids: an
    event committed later with a smaller id is still ahead of the cursor."""
    now = "2026-03-01T08:00:00+00:00"
    holder = Holder(ledger, "order-1", lambda conn: ledger._emit(conn, "order.test", "order-1", now, {}))
    with ledger._write("order-2") as conn:
        ledger._emit(conn, "order.test", "order-2", now, {})
    skipper, skipped = in_thread(lambda: ledger.skip_events("hooks"))
    skipper.join(WAIT)
    try:
        assert skipped == [] and ledger.event_cursor("hooks") is None  # waits for order-1's commit
    finally:
        holder.finish()
    skipper.join(10)
    assert skipped == [None] and ledger.event_cursor("hooks") == max(e.id for e in ledger.events())
    ledger.set_event_cursor("hooks", 1)  # never backwards
    assert ledger.event_cursor("hooks") == max(e.id for e in ledger.events())
    holder = Holder(ledger, None)  # another writer runs alone
    try:
        idle, done = in_thread(lambda: ledger.skip_events("hooks"))
        idle.join(WAIT * 4)
        assert done == [None]  # nothing new: answered at once, no write lock asked for
    finally:
        holder.finish()


def test_clearing_an_alert_that_is_not_open_takes_no_write_lock(ledger) -> None:
    """Tracking clears a parcel's alerts at every update, nearly always with none open: that must
    not wait for (or hold up) the writers of every worker."""
    holder = Holder(ledger, None)  # another writer runs alone
    try:
        clearing, cleared = in_thread(lambda: ledger.resolve_alert("parcel_lost", "111-0000001-0000001"))
        clearing.join(WAIT * 4)
        assert cleared == [False]  # answered at once, nothing to resolve
    finally:
        holder.finish()
    assert ledger.raise_alert("parcel_lost", "111-0000001-0000001", "lost", {})
    assert ledger.resolve_alert("parcel_lost", "111-0000001-0000001")
    assert ledger.alerts() == []


def test_a_quota_save_waits_for_no_order_and_no_order_waits_for_it(ledger) -> None:
    """Quota state is saved every few seconds per account while its buckets are in use: scoped to
    the account, not a transaction that stops every other writer."""
    holder = Holder(ledger, "order-1")
    try:
        saver, saved = in_thread(
            lambda: ledger.save_quota_state("acct-a", {"confirmShipment": {"tokens": 1.0}}))
        saver.join(WAIT * 4)
        assert saved == [None]  # not held up by order-1's open transaction
    finally:
        holder.finish()
    assert ledger.load_quota_state("acct-a") == {"confirmShipment": {"tokens": 1.0}}
    holder = Holder(ledger, "quota:acct-a")  # a save of acct-a in flight: the same account's waits
    try:
        same, same_done = in_thread(lambda: ledger.save_quota_state("acct-a", {"getOrder": {"tokens": 2.0}}))
        order, order_done = in_thread(write(ledger, "order-1"))
        order.join(WAIT * 4)
        same.join(WAIT)
        assert order_done == ["done"] and same_done == []
    finally:
        holder.finish()
    same.join(10)
    assert same_done == [None]


def drop(ledger: PostgresLedger) -> None:
    """The server ends this thread's session (a restart, a failover); the client is not told."""
    pid = ledger._conn().raw.info.backend_pid
    with psycopg.connect(ledger.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            time.sleep(0.01)


def test_an_orders_lock_on_a_dropped_connection_is_not_had_and_the_next_try_connects_again(ledger) -> None:
    """Taking an order's lock on a connection the server dropped says 'not now' (the order rests)
    instead of raising into the dispatcher, and the thread's next try is on a new connection.
    Giving back a lock whose connection dropped meanwhile raises nothing: the server ended the
    session, and its locks with it."""
    drop(ledger)
    with ledger.exclusive("order:111-0000000-0000001") as ours:
        assert ours is False
    with ledger.exclusive("order:111-0000000-0000001") as ours:
        assert ours is True
        drop(ledger)
    with ledger.exclusive("order:111-0000000-0000001") as ours:
        assert ours is True
