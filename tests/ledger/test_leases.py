"""Workers and account leases: a fair share each, a dead worker's accounts move after the lease."""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import psycopg
import pytest
from cryptography.fernet import Fernet

from connector.engine.runtime import Runtime
from connector.engine.workers import LocalPresence, Membership, would_rebalance
from connector.ledger import LedgerUnreachable, postgres
from connector.ledger.crypto import PiiCipher
from connector.ledger.leases import OVERDUE_FRACTION, LeaseCensus
from connector.ledger.postgres import WRITE_LOCK_KEY, PostgresLedger
from connector.ratelimit import RateLimiter

ACCOUNTS = [f"acct-{n}" for n in range(6)]
LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(make_store, clock: Clock):
    return make_store(PiiCipher([Fernet.generate_key()]), clock=clock)


_LIVENESS: dict[str, object] = {}  # worker -> its liveness lock (PostgreSQL), as a running worker holds


@pytest.fixture(autouse=True)
def _forget_liveness():
    yield
    _LIVENESS.clear()


def beat(ledger, worker: str, **kwargs) -> set[str]:
    hold = getattr(ledger, "hold_worker_lock", None)
    if hold is not None and worker not in _LIVENESS:
        _LIVENESS[worker] = hold(worker)
    return ledger.worker_heartbeat(worker, host="h", pid=1, accounts=ACCOUNTS, jobs=("@leader",),
                                   lease_seconds=LEASE, **kwargs)


def census(ledger) -> LeaseCensus:
    return ledger.lease_census(LEASE, accounts=ACCOUNTS, jobs=("@leader",))


def accounts(keys: set[str]) -> set[str]:
    return {k for k in keys if not k.startswith("@")}


def test_a_lone_worker_owns_every_account_and_leads(ledger) -> None:
    assert beat(ledger, "w1") == {*ACCOUNTS, "@leader"}
    assert beat(ledger, "w1") == {*ACCOUNTS, "@leader"}  # renewing changes nothing


def test_a_new_worker_gets_a_fair_share_and_no_account_has_two_owners(ledger, clock: Clock) -> None:
    beat(ledger, "w1")
    assert accounts(beat(ledger, "w2")) == set()  # w1's leases are still running
    clock.advance(1)
    w1 = beat(ledger, "w1")  # two live workers now: w1 keeps 3 and gives 3 back
    w2 = beat(ledger, "w2")
    assert len(accounts(w1)) == 3 and len(accounts(w2)) == 3 and not (w1 & w2)
    assert "@leader" in w1 and "@leader" not in w2
    clock.advance(1)
    w3 = beat(ledger, "w3")
    w1, w2 = beat(ledger, "w1"), beat(ledger, "w2")
    w3 = beat(ledger, "w3")
    owners = [accounts(w1), accounts(w2), accounts(w3)]
    assert sorted(len(o) for o in owners) == [2, 2, 2]
    assert set().union(*owners) == set(ACCOUNTS)


def test_workers_that_cannot_split_the_accounts_evenly_leave_none_of_them_idle(ledger, clock: Clock) -> None:
    """Six accounts among four workers: two hold 2, two hold 1. Each taking the rounded-up share
    (2), the first three took all six and the fourth stood idle for as long as they ran."""
    workers = ("w1", "w2", "w3", "w4")
    for worker in workers:  # all registered: each takes its share of what is free
        beat(ledger, worker)
    for _ in range(3):
        clock.advance(1)
        held = {worker: accounts(beat(ledger, worker)) for worker in workers}
    assert sorted(len(keys) for keys in held.values()) == [1, 1, 2, 2]
    assert set().union(*held.values()) == set(ACCOUNTS)
    for worker, keys in held.items():  # settled: the census moves nobody to beat early
        mine = keys | ({"@leader"} if worker == "w1" else set())
        assert not would_rebalance(census(ledger), len(ACCOUNTS), mine), worker


def test_workers_whose_configurations_disagree_still_cover_every_account(ledger, clock: Clock) -> None:
    """A rolling deploy or a stale file: a third worker serves one account only. Counted among all
    three, the other two kept 2 each and left two accounts nobody else lists without an owner;
    counted among the workers with the same list, they cover all six between them."""
    beat(ledger, "w1")
    clock.advance(1)
    beat(ledger, "w2")
    lone = ledger.worker_heartbeat("w3", host="h", pid=3, accounts=ACCOUNTS[:1], jobs=("@leader",),
                                   lease_seconds=LEASE)
    for _ in range(3):
        clock.advance(1)
        w1, w2 = beat(ledger, "w1"), beat(ledger, "w2")
        lone = ledger.worker_heartbeat("w3", host="h", pid=3, accounts=ACCOUNTS[:1], jobs=("@leader",),
                                       lease_seconds=LEASE)
    assert accounts(w1) | accounts(w2) | accounts(lone) == set(ACCOUNTS)
    assert len(accounts(w1)) == len(accounts(w2)) == 3 and not accounts(w1) & accounts(w2)
    assert {w.worker_id: w.serves for w in ledger.workers()}["w3"] == (ACCOUNTS[0],)
    assert census(ledger).live_workers == 2  # the workers serving ACCOUNTS


def test_a_dead_workers_accounts_move_after_the_lease_time(ledger, clock: Clock) -> None:
    beat(ledger, "w1")
    clock.advance(1)
    beat(ledger, "w2")
    w1 = beat(ledger, "w1")
    w2 = beat(ledger, "w2")
    assert w1 and w2
    # w1 dies: no more heartbeats. Before the lease runs out its accounts stay put...
    clock.advance(LEASE - 5)
    assert beat(ledger, "w2") == w2
    # ...after it, w2 takes them all over (w1 no longer counts as alive), the leader job too.
    clock.advance(6)
    assert beat(ledger, "w2") == {*ACCOUNTS, "@leader"}
    moved = {lease.key: lease.handovers for lease in ledger.leases()}
    # Each key changed hands once: w2's when w1 gave them back over its share, w1's at its death.
    assert moved == dict.fromkeys((*ACCOUNTS, "@leader"), 1)


def test_a_clean_stop_hands_the_leases_back_at_once(ledger, clock: Clock) -> None:
    beat(ledger, "w1")
    clock.advance(1)
    beat(ledger, "w2")
    beat(ledger, "w1")
    ledger.release_worker("w1", lease_seconds=LEASE)
    assert beat(ledger, "w2") == {*ACCOUNTS, "@leader"}
    stopped = {w.worker_id: (w.stopped_at is not None, w.ended) for w in ledger.workers()}
    assert stopped == {"w1": (True, "stopped"), "w2": (False, "")}
    # Every key changed hands once, from w1 to w2: half given back over w1's share when w2 came,
    # the rest at w1's stop.
    assert {lease.key: lease.handovers for lease in ledger.leases()} == dict.fromkeys(
        (*ACCOUNTS, "@leader"), 1)


def test_the_lease_time_must_be_positive(ledger) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        ledger.worker_heartbeat("w1", host="h", pid=1, accounts=ACCOUNTS, lease_seconds=0)


@pytest.fixture
def two_processes(postgres_server, clock):
    """Two workers' ledgers on one fresh PostgreSQL database (closing one is its process dying)."""
    postgres_server.require()
    url, key = postgres_server.fresh_url(), Fernet.generate_key()
    first = PostgresLedger(url, PiiCipher([key]), clock=clock)
    second = PostgresLedger(url, PiiCipher([key]), clock=clock)
    first.migrate()
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def die(ledger: PostgresLedger, observer: PostgresLedger) -> None:
    """``ledger``'s process dies: its connections close. The server ends their backends (and drops
    their locks) a moment after the socket closes, not with it, so wait until ``observer`` no longer
    sees them -- as a real survivor's next heartbeat, seconds later, would."""
    pids = [h.conn.raw.info.backend_pid for h in list(ledger._handles) if h.conn is not None]
    ledger.close()
    conn = observer._conn()
    deadline = time.monotonic() + 5
    while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(?)",
                       (pids,)).fetchone()[0]:
        assert time.monotonic() < deadline, f"the server still runs the closed backends {pids}"
        time.sleep(0.01)


def test_a_killed_workers_leases_are_free_once_it_misses_a_heartbeat_on_postgresql(two_processes,
                                                                                   clock) -> None:
    """PostgreSQL sees a worker's process die (its liveness lock goes with its connection): once
    it has missed a heartbeat, a restarted daemon takes the accounts instead of after the lease."""
    first, second = two_processes
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    assert beat(second, "w2") == set()  # w1 is alive: its leases stand
    die(first, second)  # w1's process dies
    clock.advance(LEASE / 3)  # its next heartbeat was due now
    assert beat(second, "w2") == set()
    clock.advance(LEASE / 6)  # half the lease: missed
    assert beat(second, "w2") == {*ACCOUNTS, "@leader"}
    found = {w.worker_id: (w.stopped_at is not None, w.ended) for w in second.workers()}
    assert found["w1"] == (True, "died")  # `workers` tells the crash from a clean stop


def test_a_worker_gone_for_a_whole_lease_is_ended_as_died_by_the_next_heartbeat(ledger, clock: Clock) -> None:
    """The only worker is killed (its host lost) and started again: the new one never judged the old,
    as only the workers whose heartbeat is within a lease were looked at, and `mfn-connector
    workers` listed it as dead for ever -- one more row each such crash, though a worker had looked."""
    ledger.worker_heartbeat("w1", host="h", pid=1, accounts=ACCOUNTS, jobs=("@leader",),
                            lease_seconds=LEASE)  # (no liveness lock held: its process is gone)
    clock.advance(LEASE + 1)
    assert beat(ledger, "w2") == {*ACCOUNTS, "@leader"}
    found = {w.worker_id: (w.stopped_at, w.ended) for w in ledger.workers()}
    assert found == {"w1": (clock.now, "died"), "w2": (None, "")}
    if hasattr(ledger, "hold_worker_lock"):  # PostgreSQL: a frozen process still holds its lock
        beat(ledger, "frozen")
        clock.advance(LEASE + 1)
        beat(ledger, "w2")
        assert {w.worker_id: w.stopped_at for w in ledger.workers()}["frozen"] is None


def test_the_census_sees_a_killed_worker_once_it_missed_a_heartbeat(two_processes, clock) -> None:
    """A killed worker is dead to the others once it has missed a heartbeat (half the lease), but only
    a heartbeat judged it so: a worker at its share, with nothing free, waited for its next one, up
    to a third of the lease more. Its census now sees the dead worker and it beats at once."""
    first, second = two_processes
    beat(first, "w1")
    owned = beat(second, "w2")
    assert owned == set()
    die(first, second)
    clock.advance(LEASE / 3)  # its next heartbeat was due: not missed yet
    assert not would_rebalance(census(second), len(ACCOUNTS), owned)
    clock.advance(LEASE / 6)  # missed
    assert would_rebalance(census(second), len(ACCOUNTS), owned)
    assert census(second).dead_workers == 1
    assert beat(second, "w2") == {*ACCOUNTS, "@leader"}
    assert census(second).dead_workers == 0  # ended as died: no more early heartbeats for it


def test_a_worker_marked_ended_that_beats_again_is_running_again(ledger, clock: Clock) -> None:
    """A worker taken for dead while only frozen (its session dropped, its host paused) registers
    afresh at its next heartbeat: it is listed as running again, not as died or stopped."""
    beat(ledger, "w1")
    ledger.release_worker("w1", lease_seconds=LEASE)  # (marks it ended, as finding it dead does)
    clock.advance(1)
    assert beat(ledger, "w1") == {*ACCOUNTS, "@leader"}
    assert {w.worker_id: (w.stopped_at, w.ended) for w in ledger.workers()}["w1"] == (None, "")


def test_a_liveness_lock_whose_connection_the_server_dropped_is_taken_again(two_processes) -> None:
    """A server restart, a failover or an idle-connection timeout ends the liveness lock's session
    while the client's connection, idle, still says it is fine. The worker's next heartbeat must
    see it and take the lock again: otherwise every other worker finds it dead at each heartbeat
    and takes its accounts, and both act for them."""
    first, second = two_processes
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    backend = end_liveness_session(first, second)
    assert _LIVENESS["w1"]() is True  # as each heartbeat of a worker does first: the lock again ...
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    assert liveness_backend(first) != backend
    assert beat(second, "w2") == set()  # ... so w1 is alive to the others, and keeps its accounts
    assert {w.worker_id: w.stopped_at is None for w in second.workers()}["w1"]


def test_a_running_worker_whose_liveness_session_was_dropped_keeps_its_accounts(two_processes,
                                                                                clock) -> None:
    """The server ends w1's liveness session (a restart, a failover) while w1 runs on, maybe in
    the middle of buying a label, and w2's heartbeat comes before w1's next one. The free lock is
    not taken for w1's death while w1's heartbeats are on time: else w2 would act for w1's
    accounts, and drive an order w1 has claimed, until w1's next heartbeat."""
    first, second = two_processes
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    assert beat(second, "w2") == set()
    end_liveness_session(first, second)
    clock.advance(LEASE / 3 - 1)  # w1's next heartbeat is not due yet
    assert beat(second, "w2") == set()
    assert {w.worker_id: w.stopped_at is None for w in second.workers()}["w1"]
    assert _LIVENESS["w1"]() is True  # w1's next heartbeat takes the lock again
    mine = beat(first, "w1")  # and hands w2 its share, now that w2 is seen alive
    theirs = beat(second, "w2")
    assert "@leader" in mine and not mine & theirs and accounts(mine | theirs) == set(ACCOUNTS)


def test_a_worker_whose_heartbeats_failed_while_the_server_restarted_keeps_its_accounts(two_processes,
                                                                                     clock) -> None:
    """The server restarts for longer than a sixth of the lease: every liveness lock is gone and
    w1's heartbeats fail meanwhile, so after the restart its last one is over half a lease old
    while w1 runs on, maybe buying a label. w2's heartbeat comes first. A heartbeat missed before
    the server's start is no sign of death: w1's accounts move only when its leases run out."""
    first, second = two_processes
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    assert beat(second, "w2") == set()
    clock.advance(LEASE / 3 - 1)  # the server goes down just before w1's next heartbeat
    end_liveness_session(first, second)
    clock.advance(LEASE / 6 + 2)  # and starts again
    restarted = clock.now
    second._locks_held_since = lambda conn: restarted  # (as pg_postmaster_start_time() says)
    assert beat(second, "w2") == set()  # w1's lock is free and its heartbeat overdue: not dead
    assert {w.worker_id: w.stopped_at is None for w in second.workers()}["w1"]
    assert _LIVENESS["w1"]() is True  # w1's next heartbeat takes the lock again ...
    mine = beat(first, "w1")  # ... and hands w2 its share
    assert "@leader" in mine and not mine & beat(second, "w2")
    die(first, second)  # w1 dies after a heartbeat in the server's new life: judged as before
    clock.advance(LEASE / 2)
    assert beat(second, "w2") == {*ACCOUNTS, "@leader"}
    assert {w.worker_id: w.ended for w in second.workers()}["w1"] == "died"


def test_a_worker_gone_since_before_the_servers_restart_is_free_when_its_lease_ends(two_processes,
                                                                                   clock) -> None:
    """A worker that died while the server was down cannot be told from one whose heartbeats
    failed: its accounts wait for its leases to run out (the lease time), no longer."""
    first, second = two_processes
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    assert beat(second, "w2") == set()
    die(first, second)
    clock.advance(LEASE / 3)
    restarted = clock.now
    second._locks_held_since = lambda conn: restarted
    clock.advance(LEASE / 2)
    assert beat(second, "w2") == set()
    clock.advance(LEASE / 6)  # w1's leases run out
    assert beat(second, "w2") == {*ACCOUNTS, "@leader"}


def test_the_servers_start_is_when_the_liveness_locks_began(postgres_server) -> None:
    """On the server's clock (no clock injected): the postmaster's start, before now."""
    postgres_server.require()
    ledger = PostgresLedger(postgres_server.fresh_url(), PiiCipher([Fernet.generate_key()]))
    try:
        conn = ledger._conn()
        started = ledger._locks_held_since(conn)
        assert started is not None and started <= ledger.lease_now(conn)
        assert started == conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    finally:
        ledger.close()


def test_a_worker_on_the_same_host_sees_a_killed_ones_process_gone_at_once(two_processes, tmp_path) -> None:
    """A restart on the same host: the dead worker's lock file in the state directory is free (the
    kernel dropped its flock with the process), so its accounts move at once, not after half the
    lease. A running worker whose database session was dropped still holds its file."""
    first, second = two_processes
    here = LocalPresence(tmp_path / "workers", "w2")
    dying = LocalPresence(tmp_path / "workers", "w1")
    dying.hold()
    assert beat(first, "w1") == {*ACCOUNTS, "@leader"}
    end_liveness_session(first, second)  # w1 runs on: its file is held
    assert beat(second, "w2", gone=here.gone) == set()
    assert _LIVENESS["w1"]() is True
    die(first, second)
    os.close(dying._fd)  # as the process's end does: the lock goes, the file stays
    assert beat(second, "w2", gone=here.gone) == {*ACCOUNTS, "@leader"}
    assert not (tmp_path / "workers" / "w1.lock").exists()  # cleared by the one that found it
    assert not here.gone("w1") and not here.gone("w9")  # no file: nothing known


def end_liveness_session(ledger: PostgresLedger, observer: PostgresLedger) -> int:
    """The server ends ``ledger``'s liveness session (its process runs on); returns its backend
    pid, once ``observer`` no longer sees it."""
    backend = liveness_backend(ledger)
    conn = observer._conn()
    assert conn.execute("SELECT pg_terminate_backend(?)", (backend,)).fetchone()[0]
    deadline = time.monotonic() + 5
    while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", (backend,)).fetchone()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return backend


def liveness_backend(ledger: PostgresLedger) -> int:
    """The backend pid of the worker's liveness connection (the one holding a worker: lock)."""
    pids = [h.conn.raw.info.backend_pid for h in list(ledger._handles) if h.conn is not None]
    conn = ledger._conn()
    held = conn.execute("SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = ANY(?)", (pids,)).fetchall()
    assert len(held) == 1, held
    return next(iter(held[0].values())) if isinstance(held[0], dict) else held[0][0]


def test_a_dead_workers_leases_end_when_it_is_found_dead_even_by_one_with_no_room(two_processes,
                                                                                  clock) -> None:
    """The worker that finds a dead one stops it; it may have no room for its accounts (it only
    registered, as a starting daemon does, or it is at its share). The leases end then all the
    same: once stopped, the dead worker is not looked at again, so they would stand to expiry."""
    first, second = two_processes
    assert beat(first, "w3") == {*ACCOUNTS, "@leader"}
    die(first, second)  # w3's process dies
    clock.advance(LEASE / 2)  # and misses its heartbeat
    _LIVENESS["w4"] = second.hold_worker_lock("w4")
    assert second.worker_heartbeat("w4", host="h", pid=2, accounts=(), lease_seconds=LEASE) == set()
    assert {w.worker_id: w.stopped_at is not None for w in second.workers()}["w3"]
    assert beat(second, "w4") == {*ACCOUNTS, "@leader"}


def within(seconds: float, call) -> list:
    """What ``call()`` returned or raised, or nothing when it was still waiting after ``seconds``."""
    out: list = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:  # noqa: BLE001 - the caller looks at it
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return list(out)


def test_a_heartbeat_or_a_stop_blocked_by_a_frozen_worker_gives_up_in_time(postgres_server) -> None:
    """A worker frozen inside a step's transaction (SIGSTOP, a suspended VM, a partition) holds the
    write lock shared, and a heartbeat takes it exclusive. The heartbeat must give up within its
    share of the lease, to be tried again, instead of waiting while every lease runs out; and a
    stop must not hang handing the leases back (they expire by themselves)."""
    postgres_server.require()
    url = postgres_server.fresh_url()
    ledger = PostgresLedger(url, PiiCipher([Fernet.generate_key()]))
    ledger.migrate()
    member = Membership(ledger, ACCOUNTS, lease_seconds=3)
    frozen = psycopg.connect(url, autocommit=True)  # not the ledger's: the server never ends it
    try:
        member.start()
        assert member.owned() == {*ACCOUNTS, "@leader"}
        frozen.execute(f"BEGIN; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK_KEY})")
        beat = within(2, member.heartbeat)
        assert beat and isinstance(beat[0], psycopg.errors.LockNotAvailable), beat
        assert within(3, member.stop) == [None]
    finally:
        frozen.execute("ROLLBACK")
        frozen.close()
        ledger.close()


def test_the_server_ends_a_worker_frozen_inside_a_transaction(postgres_server, monkeypatch) -> None:
    """Every ledger connection has the server end a session idle inside a transaction: the write
    lock a frozen worker held is free again in seconds (not when TCP gives up on its host, hours
    later), and the others' heartbeats go through."""
    monkeypatch.setattr(postgres, "IDLE_IN_TRANSACTION_S", 1, raising=False)  # (more in production)
    postgres_server.require()
    url, key = postgres_server.fresh_url(), Fernet.generate_key()
    frozen, other = PostgresLedger(url, PiiCipher([key])), PostgresLedger(url, PiiCipher([key]))
    frozen.migrate()
    try:
        conn = frozen._conn()
        assert conn.raw.info.get_parameters().get("keepalives") == "1"
        frozen._begin_write(conn, "111-0000000-0000001")  # a step begun, and not a statement more
        _LIVENESS["w2"] = other.hold_worker_lock("w2")

        def beat_until_it_goes_through() -> set[str]:
            while True:
                try:
                    return other.worker_heartbeat("w2", host="h", pid=2, accounts=ACCOUNTS, jobs=("@leader",),
                                                  lease_seconds=3)
                except psycopg.errors.LockNotAvailable:
                    pass  # as the heartbeat thread tries again

        assert within(4, beat_until_it_goes_through) == [{*ACCOUNTS, "@leader"}]
        with pytest.raises(psycopg.Error, match="idle-in-transaction"):
            conn.execute("SELECT 1")
    finally:
        frozen.close()
        other.close()


@pytest.mark.parametrize("skew", [LEASE + 1, -(LEASE + 1)], ids=["ahead", "behind"])
def test_leases_on_postgresql_are_judged_by_the_servers_clock_not_the_hosts(
        postgres_server, monkeypatch, skew: float) -> None:
    """Worker hosts whose clocks disagree: one running ahead by more than the lease time must not
    take a live worker's accounts, and one running behind must not keep its leases for ever in the
    others' eyes. Both ledgers use the real clock (none injected), and the second 'host' has its
    own clock moved by ``skew``: the server's clock is the one both must judge by."""
    from connector import clock as daemon_clock

    postgres_server.require()
    url, key = postgres_server.fresh_url(), Fernet.generate_key()
    first, second = PostgresLedger(url, PiiCipher([key])), PostgresLedger(url, PiiCipher([key]))
    first.migrate()
    try:
        host_now, second_host = daemon_clock.now, threading.local()
        monkeypatch.setattr(daemon_clock, "now", lambda: host_now() + timedelta(
            seconds=skew if getattr(second_host, "on", False) else 0))

        def on_its_host(ledger, call):  # the second ledger's host has its clock off by skew
            second_host.on = ledger is second
            try:
                return call(ledger)
            finally:
                second_host.on = False

        def beat_as(ledger, worker: str) -> set[str]:
            return on_its_host(ledger, lambda store: store.worker_heartbeat(
                worker, host=worker, pid=1, accounts=ACCOUNTS, jobs=("@leader",), lease_seconds=LEASE))

        alive = [first.hold_worker_lock("w1")]  # held as long as a reference is
        assert beat_as(first, "w1") == {*ACCOUNTS, "@leader"}
        seen = on_its_host(second, census)
        assert (seen.live_workers, seen.free_accounts, seen.free_jobs) == (1, 0, 0)
        alive.append(second.hold_worker_lock("w2"))
        assert beat_as(second, "w2") == set()  # w1 is alive and its leases run: nothing to take yet
        kept = beat_as(first, "w1")  # w1 sees w2 alive and gives back what is over its share
        assert len(accounts(kept)) == 3 and "@leader" in kept
        taken = beat_as(second, "w2")
        assert accounts(taken) == set(ACCOUNTS) - kept and "@leader" not in taken
        assert beat_as(first, "w1") == kept  # neither sees the other's leases run out
        assert beat_as(second, "w2") == taken
        seen = {w.worker_id: w.heartbeat_at for w in first.workers()}
        assert abs((seen["w2"] - seen["w1"]).total_seconds()) < 5  # both written on the server's clock
    finally:
        first.close()
        second.close()


def test_the_census_counts_live_workers_and_free_leases(ledger, clock: Clock) -> None:
    assert census(ledger) == LeaseCensus(0, 0, 0)  # nobody has registered a key yet
    beat(ledger, "w1")
    assert census(ledger) == LeaseCensus(1, 0, 0)
    clock.advance(1)
    beat(ledger, "w2")  # nothing free for it: w1 holds all
    assert census(ledger) == LeaseCensus(2, 0, 0, fuller_workers=1)  # w1: more than 6 // 2
    beat(ledger, "w1")  # gives 3 back
    assert census(ledger) == LeaseCensus(2, 3, 0)
    ledger.release_worker("w1", lease_seconds=LEASE)  # its 3 accounts and the leader job are free; it is gone
    assert census(ledger) == LeaseCensus(1, 6, 1)
    clock.advance(LEASE + 1)  # w2's heartbeat is too old: nobody is alive, nothing is held
    assert census(ledger) == LeaseCensus(0, 6, 1)


def test_a_free_lease_of_an_account_no_longer_configured_moves_no_worker_to_beat(ledger) -> None:
    """An account removed from the configuration keeps its lease row, free for ever: no heartbeat
    takes it. The census must not count it, or a worker under its share would beat (the write
    lock alone) at every census, every 2 s, instead of every third of the lease."""
    ledger.worker_heartbeat("w1", host="h", pid=1, accounts=[*ACCOUNTS, "gone"], jobs=("@leader",),
                            lease_seconds=LEASE)
    ledger.release_worker("w1", lease_seconds=LEASE)  # stopped, and restarted without 'gone'
    member = Membership(ledger, ACCOUNTS, lease_seconds=LEASE)
    member.shared = True  # (as with PostgreSQL: the lease logic is the same on both stores)
    hold = getattr(ledger, "hold_worker_lock", None)
    member._liveness = hold(member.worker_id) if hold else None  # as start() takes it
    for _ in range(2):  # all register, then w1 gives back what the others take: 2, 2, 1 and 1
        owned = [beat(ledger, w) for w in ("w1", "w2", "w3")]
        member.heartbeat()
    assert [len(accounts(keys)) for keys in owned] == [2, 2, 1] and len(member.owned()) == 1
    assert not member._shares_moved()  # at its share, and nothing it could take is free
    assert census(ledger) == LeaseCensus(4, 0, 0, fuller_workers=2)  # 'gone' is free, nobody takes it


def test_a_worker_beats_early_exactly_when_a_heartbeat_would_move_a_lease() -> None:
    six = {f"acct-{n}" for n in range(6)}
    two = {"acct-0", "acct-1"}
    assert not would_rebalance(LeaseCensus(1, 0, 0), 6, six | {"@leader"})  # alone, holding all
    assert would_rebalance(LeaseCensus(3, 0, 0), 6, six)  # others joined: over its share of 2
    assert not would_rebalance(LeaseCensus(3, 4, 0), 6, two)  # at its share, whatever is free
    assert would_rebalance(LeaseCensus(3, 2, 0), 6, {"acct-0"})  # under its share, one free
    assert not would_rebalance(LeaseCensus(3, 0, 0), 6, {"acct-0"})  # under, but nothing to take
    assert would_rebalance(LeaseCensus(3, 0, 1), 6, two)  # the leader job is free: anyone takes it


def test_heartbeats_come_every_third_of_the_lease_whatever_the_census_interval(monkeypatch) -> None:
    """The heartbeat thread woke at every census and beat at the first wake past its due time: with
    a lease of 7 s (a third: 2.3 s) and a census every 2 s it beat every 4 s, more than half the lease
    -- the age at which a worker whose liveness session was dropped is taken for dead while it runs."""
    monkeypatch.setattr("connector.engine.workers.CENSUS_SECONDS", 0.2)  # (scaled down ten times)
    beats: list[float] = []

    class Ledger:
        shared = True

        def worker_heartbeat(self, worker_id: str, **kwargs) -> set[str]:
            beats.append(time.monotonic())
            return {"acct-0"}

        def lease_census(self, lease_seconds: float, **kwargs) -> LeaseCensus:
            return LeaseCensus(1, 0, 0)

        def release_worker(self, worker_id: str, **kwargs) -> None:
            pass

    member = Membership(Ledger(), ["acct-0"], lease_seconds=0.7)
    member.start()
    try:
        time.sleep(2.0)
    finally:
        member.stop()
    gaps = [later - earlier for earlier, later in zip(beats, beats[1:], strict=False)]
    assert len(gaps) >= 5 and max(gaps) < 0.7 * OVERDUE_FRACTION, gaps


def test_workers_started_together_each_take_a_fair_share_at_once(ledger) -> None:
    members = [Membership(ledger, ACCOUNTS, lease_seconds=LEASE) for _ in range(3)]
    for member in members:
        member.shared = True  # (as with PostgreSQL: the lease logic is the same on both stores)
    starts = [threading.Thread(target=member.start, kwargs={"join": True}) for member in members]
    try:
        for thread in starts:
            thread.start()
        for thread in starts:
            thread.join()
        owned = [member.owned() for member in members]
        assert sorted(len(keys - {"@leader"}) for keys in owned) == [2, 2, 2]  # before any census
        assert sum("@leader" in keys for keys in owned) == 1
    finally:
        for member in members:
            member.stop()


def test_keys_lost_after_the_leases_ran_out_hand_no_stale_quota_over(ledger, clock: Clock) -> None:
    """A worker paused past its lease (or cut off from the ledger) finds, at its next heartbeat,
    that another took its accounts meanwhile: the quota state it kept is stale and must not be
    saved over the new owner's. A share given back in time is handed over as before."""
    heard: list[tuple[set[str], set[str], set[str]]] = []
    member = Membership(ledger, ACCOUNTS, lease_seconds=LEASE,
                        on_change=lambda gained, lost, stale: heard.append((gained, lost, stale)))
    member.shared = True  # (as with PostgreSQL: the lease logic is the same on both stores)
    hold = getattr(ledger, "hold_worker_lock", None)
    member._liveness = hold(member.worker_id) if hold else None  # as start() takes it
    assert member.heartbeat() == {*ACCOUNTS, "@leader"}
    clock.advance(1)
    beat(ledger, "other")  # joins: w/ two workers the share is 3
    heard.clear()
    kept = member.heartbeat()
    assert len(kept - {"@leader"}) == 3  # over its share: gives 3 back, in time
    assert [(len(lost), stale) for _, lost, stale in heard] == [(3, set())]
    clock.advance(LEASE + 1)  # this worker is paused past its lease ...
    member._valid_until = 0.0  # (as its monotonic clock would say)
    assert beat(ledger, "other") == {*ACCOUNTS, "@leader"}  # ... and the other takes everything
    heard.clear()
    assert member.heartbeat() == set()
    assert heard == [(set(), set(), kept)]  # nothing saved for the keys lost while it was away


def paused_worker(ledger, *, lease: float = LEASE) -> tuple[Runtime, RateLimiter]:
    """A runtime whose worker owns every account, with a change to acct-0's quota not saved yet."""
    limiter = RateLimiter()
    limiter.attach_store(ledger)
    rt = Runtime(config=None, host=None, ledger=ledger, catalog=None, carrier_specs={}, carriers={},
                 amazon={a: SimpleNamespace(account=a, limiter=limiter) for a in ACCOUNTS}, site_rules={},
                 fx=None, policy=None)
    rt.membership = Membership(ledger, ACCOUNTS, lease_seconds=lease, on_change=rt.hand_over_quotas)
    rt.membership.shared = True  # (as with PostgreSQL: the lease logic is the same on both stores)
    rt.membership.start()
    assert rt.membership.owned() == {*ACCOUNTS, "@leader"}
    bucket = limiter.bucket("acct-0", "confirmShipment")
    bucket.acquire()
    bucket.acquire()  # within save_every of the first: not saved yet
    return rt, limiter


def taken_over_while_paused(rt: Runtime, ledger, clock: Clock) -> dict:
    """The worker is paused past its lease; another takes every account and gets a 429 on acct-0
    (the quota state it saved, returned)."""
    rt.membership._stop.set()  # paused: its heartbeat thread renews nothing more
    rt.membership._thread.join(10)
    clock.advance(LEASE + 1)
    rt.membership._valid_until = 0.0  # (as its monotonic clock would say)
    assert beat(ledger, "other") == {*ACCOUNTS, "@leader"}
    theirs = {"confirmShipment": {"at": 1.8e9, "tokens": 0.0, "penalized_until": 1.8e9 + 120}}
    ledger.save_quota_state("acct-0", theirs)
    return theirs


@pytest.mark.parametrize("noticed", [True, False], ids=["heartbeat-first", "stopped-at-once"])
def test_a_worker_that_lost_its_accounts_while_paused_saves_no_stale_quota_when_it_stops(
        make_store, ledger, clock: Clock, noticed: bool) -> None:
    """A worker paused past its lease: another takes its accounts and gets a 429 on one. Whether
    the paused worker's next heartbeat finds them gone first or it stops at once, what it had not
    saved of their quota is stale, and must not be saved over the new owner's at its stop."""
    rt, limiter = paused_worker(ledger)
    theirs = taken_over_while_paused(rt, ledger, clock)
    if noticed:
        assert rt.membership.heartbeat() == set()
        limiter.save()  # nothing of the accounts it lost is left to save
        assert ledger.load_quota_state("acct-0") == theirs
    rt.close()
    assert make_store(PiiCipher([Fernet.generate_key()])).load_quota_state("acct-0") == theirs


def test_the_periodic_quota_flush_saves_the_accounts_owned_and_none_lost_while_paused(ledger, clock) -> None:
    """The daemon saves every tick the quota changes a burst left unsaved (a crash would lose them),
    but only of the accounts it holds: a worker paused past its lease must not write its stale state
    over the new owner's when it wakes, before its heartbeat finds the accounts gone."""
    rt, limiter = paused_worker(ledger)
    limiter.save_every = 0.0  # (the last save is old enough: the flush is due)
    rt.save_quotas()
    tokens = ledger.load_quota_state("acct-0")["confirmShipment"]["tokens"]
    assert tokens == pytest.approx(limiter.states("acct-0")["confirmShipment"]["tokens"], abs=0.5)
    limiter.bucket("acct-0", "confirmShipment").acquire()  # saved at once: save_every is 0 here
    limiter.save_every = 3600.0
    limiter.bucket("acct-0", "confirmShipment").acquire()  # left unsaved, as a burst's last takes
    theirs = taken_over_while_paused(rt, ledger, clock)
    limiter.save_every = 0.0
    rt.save_quotas()
    assert ledger.load_quota_state("acct-0") == theirs
    rt.close()


def test_a_worker_stopping_saves_its_quota_before_it_hands_its_accounts_back(ledger) -> None:
    """The next owner reads an account's quota state when it takes the account over, so it must be
    saved before the lease is handed back."""
    rt, limiter = paused_worker(ledger)
    saved_at_release = []
    release = ledger.release_worker

    def release_worker(worker_id: str, **kwargs) -> None:
        saved_at_release.append(ledger.load_quota_state("acct-0"))
        release(worker_id, **kwargs)

    ledger.release_worker = release_worker
    expected = limiter.states("acct-0")["confirmShipment"]["tokens"]  # a token less than saved
    rt.close()
    (state,) = saved_at_release
    assert state["confirmShipment"]["tokens"] == pytest.approx(expected, abs=0.5)


def test_a_worker_starting_while_the_server_drops_its_sessions_runs_on_and_takes_its_share(
        postgres_server, monkeypatch) -> None:
    """systemd restarts the workers after the database's own restart, and the server may still drop
    sessions as they start: the first heartbeat failing is a moment lost, not the worker (it was
    a traceback and exit 1), and the error logged is the server's, not a ROLLBACK's."""
    monkeypatch.setattr("connector.engine.workers.CENSUS_SECONDS", 0.2)
    postgres_server.require()
    url = postgres_server.fresh_url()
    ledger = PostgresLedger(url, PiiCipher([Fernet.generate_key()]))
    ledger.migrate()
    admin = psycopg.connect(url, autocommit=True)
    real = ledger.worker_heartbeat
    dropped: list[BaseException] = []

    def first_one_dropped(*args, **kwargs):
        if not dropped:  # every other session of this database ended, as a restarting server does
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
                          " current_database() AND pid <> pg_backend_pid()")
            try:
                return real(*args, **kwargs)
            except psycopg.Error as exc:
                dropped.append(exc)
                raise
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "worker_heartbeat", first_one_dropped)
    member = Membership(ledger, ACCOUNTS, lease_seconds=LEASE)
    try:
        member.start()  # does not raise
        assert dropped and "the connection is closed" not in str(dropped[0]), dropped
        assert member.owned() == set()
        deadline = time.monotonic() + 10
        while member.owned() != {*ACCOUNTS, "@leader"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert member.owned() == {*ACCOUNTS, "@leader"}
    finally:
        member.stop()
        admin.close()
        ledger.close()


def test_only_a_lost_session_is_taken_for_the_server_gone() -> None:
    """An order whose step failed because the server went away rests without an attempt counted;
    a statement that failed (a lock timeout, a full disk) is the order's retry as before."""
    gone = [psycopg.errors.AdminShutdown("terminating connection"),
            psycopg.errors.ConnectionFailure("no route"),
            psycopg.OperationalError("the connection is closed"), LedgerUnreachable("refused")]
    # (a carrier plugin's raw socket error is not the ledger's: before, any ConnectionError was)
    failed = [psycopg.errors.LockNotAvailable("lock timeout"), psycopg.errors.DiskFull("disk full"),
              psycopg.errors.UniqueViolation("duplicate"), RuntimeError("a bug"),
              ConnectionResetError("carrier reset the connection"), ConnectionError("refused")]
    assert all(PostgresLedger.lost_connection(None, exc) for exc in gone)
    assert not any(PostgresLedger.lost_connection(None, exc) for exc in failed)


def test_keys_taken_back_after_the_leases_ran_out_are_read_afresh(make_store, ledger, clock: Clock) -> None:
    """A worker paused past its lease: another takes its accounts, gets a 429 on one, and stops
    (a deploy) before the paused worker's next heartbeat, which takes them all back. They are the
    same keys it held before, but what it knew of their quota is as stale as if it had lost them:
    their buckets are read again from the ledger, not carried on (and later saved over the 429)."""
    rt, limiter = paused_worker(ledger)
    taken_over_while_paused(rt, ledger, clock)
    ledger.release_worker("other", lease_seconds=LEASE)
    clock.advance(1)
    assert rt.membership.heartbeat() == {*ACCOUNTS, "@leader"}  # every key back, as before the pause
    assert limiter.bucket("acct-0", "confirmShipment").available == 0.0  # the other's 429 holds
    rt.close()  # (what it saves of acct-0 is the other's state read back, not its own from before)
    saved = make_store(PiiCipher([Fernet.generate_key()])).load_quota_state("acct-0")["confirmShipment"]
    assert saved.get("penalized_until") == pytest.approx(1.8e9 + 120, abs=0.01)


def test_a_worker_stopped_while_it_starts_is_not_counted_by_the_others(ledger) -> None:
    """A stop request while a worker starts (SIGTERM during the second it waits for workers
    started with it to register) exits at once: its registration must end with it. Left running,
    the others counted it for half a lease and gave its share back to nobody."""
    assert beat(ledger, "w1") == {*ACCOUNTS, "@leader"}
    member = Membership(ledger, ACCOUNTS, lease_seconds=LEASE)
    member.shared = True  # (as with PostgreSQL: the lease logic is the same on both stores)

    def signalled(seconds: float) -> bool:
        raise SystemExit(0)  # as StopRequests does for a signal before the start-up is over

    member._stop.wait = signalled
    with pytest.raises(SystemExit):
        member.start(join=True)
    member.stop()  # as the command's rt.close() does
    assert beat(ledger, "w1") == {*ACCOUNTS, "@leader"}  # nothing given back for a worker gone
    assert {w.worker_id: w.ended for w in ledger.workers()}[member.worker_id] == "stopped"


def test_forget_addresses_refuses_while_a_worker_is_alive_and_not_after_it_stopped(ledger, clock):
    """Erasing addresses while a worker runs would let it seal new ones with its own key meanwhile;
    the CLI asks the workers' table, by the same rule `mfn-connector workers` shows "alive" by."""
    import click

    from connector.cli.pii import _refuse_while_workers_run

    beat(ledger, "w1")
    if not ledger.shared:  # SQLite: one daemon, whose lock the command takes instead
        _refuse_while_workers_run(ledger, LEASE)
        return
    with pytest.raises(click.ClickException, match="w1 still run"):
        _refuse_while_workers_run(ledger, LEASE)
    ledger.release_worker("w1", lease_seconds=LEASE)
    _refuse_while_workers_run(ledger, LEASE)
