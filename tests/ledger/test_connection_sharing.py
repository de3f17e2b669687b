"""Threads that share connections (one poll thread per seller account) hold a bounded number of
them, whatever their number; a thread gives its connection back before it waits, but never
inside a write transaction or while it holds a lock that lives on its session."""
from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography.fernet import Fernet

from connector.ledger.crypto import PiiCipher
from connector.ledger.sql import SHARED_TURNS, SqlLedger

THREADS = 40


def _opened(store: SqlLedger) -> int:
    return sum(1 for handle in list(store._handles) if handle.conn is not None)


def test_threads_sharing_connections_hold_at_most_their_turns(make_store: Callable[..., SqlLedger]) -> None:
    store = make_store(PiiCipher([Fernet.generate_key()]))
    start, done = threading.Barrier(THREADS), []
    errors: list[BaseException] = []

    def poll(n: int) -> None:
        try:
            with store.sharing_connections():
                start.wait(10)
                for _ in range(5):  # a poll: ledger work, then a wait for Amazon with nothing held
                    store.set_watermark(f"acct-{n}", store._clock())
                    assert store.get_watermark(f"acct-{n}") is not None
                    store.release_connection()
            done.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(done) == THREADS
    # one each, before: THREADS connections; now the turns, plus the one opened at the start
    assert _opened(store) <= SHARED_TURNS + 1


def test_a_released_connection_is_taken_by_the_next_thread(make_store: Callable[..., SqlLedger]) -> None:
    store = make_store(PiiCipher([Fernet.generate_key()]))
    seen: list[object] = []

    def work() -> None:
        store.get_watermark("acct")
        seen.append(store._conn())
        store.release_connection()

    for _ in range(3):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(10)
    assert len(seen) == 3 and seen[0] is seen[1] is seen[2]


def test_no_connection_is_given_back_inside_a_write_transaction(make_store: Callable[..., SqlLedger]) -> None:
    store = make_store(PiiCipher([Fernet.generate_key()]))
    with store._write() as transaction:
        store.release_connection()  # e.g. a hook that waits, called by mistake inside the transaction
        assert store._conn() is transaction.conn
        assert not store._idle
    store.release_connection()
    assert store._idle  # given back once the transaction is over


def test_no_connection_is_given_back_while_a_session_lock_is_held(
        make_store: Callable[..., SqlLedger]) -> None:
    store = make_store(PiiCipher([Fernet.generate_key()]))
    with store.exclusive("order-1") as ours:
        assert ours
        conn = store._conn()
        store.release_connection()  # a quota wait inside an order's drive
        assert store._conn() is conn and not store._idle
    # the lock still held by this thread's connection: another thread cannot take it meanwhile
    store.release_connection()
    taken: list[bool] = []

    def other() -> None:
        with store.exclusive("order-1") as got:
            taken.append(got)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert taken == [True]  # released with the block, on the connection that took it
