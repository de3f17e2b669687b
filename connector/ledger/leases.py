"""Workers and account leases in the ledger: which daemon owns which seller account now.

Several daemons share a PostgreSQL ledger. Each seller account (the unit of Amazon's quotas) is
leased to one worker at a time, so the account's token buckets live in one process and stay
exact. A worker renews its leases with every heartbeat; a lease not renewed within the lease time
expires and the next heartbeat of another worker takes it over. Each heartbeat also rebalances: a
worker holds at most its fair share (accounts / live workers: rounded up for as many workers as
the division leaves accounts over, down for the rest, see :func:`fair_share`) and gives back the
rest, so a worker that joins gets accounts within a few seconds: between heartbeats each worker takes a
cheap :meth:`LeaseStore.lease_census` and beats at once when it would move an account (see
:mod:`connector.engine.workers`).

A store that can see whether a worker's process is still there (PostgreSQL: each worker holds a
session advisory lock for its lifetime, which the server drops when the process dies) frees a dead
worker's leases before their expiry: at once when a worker on the same host finds its process
gone (its lock file in the state directory is free), else once it has missed a heartbeat (half
the lease). Not on the free lock alone: the server also drops the lock of a worker that runs on,
when its session ends (a server restart, a failover, an idle-session timeout), and until its next
heartbeat takes the lock again two workers would act for its accounts. Nor on a heartbeat missed
before the server's last start: a worker whose heartbeats failed while the server restarted is
judged by its lease's expiry alone.

Each heartbeat is one write transaction, and write transactions are serialised by the ledger's
write lock (see :mod:`connector.ledger.postgres`), so two workers never take the same account.
Keys starting with ``@`` are jobs that one worker at a time runs for everyone (``@leader``: the
hourly purge, alerts, hooks and webhooks); they are taken like accounts but not counted in the share.
Leases are judged by one clock for all workers: the database server's on PostgreSQL (see
:meth:`LeaseStore.lease_now`), so worker hosts whose clocks disagree neither take a live worker's
accounts (a clock ahead) nor hold a dead one's past its lease (a clock behind).

Mixed into the SQL ledger stores; uses their ``_conn``/``_write``/``_clock``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .timestamps import from_text as _dt
from .timestamps import to_text as _ts

OVERDUE_FRACTION = 0.5  # of the lease: a worker beats every third, so this one missed a heartbeat
# A heartbeat or a release waits at most this share of the lease for the write lock: blocked (by a
# frozen worker's transaction, until the server ends it) it fails and is tried again, instead of
# hanging while every lease runs out, or holding a stopping worker.
LOCK_WAIT_SHARE = 1 / 6


@dataclass(frozen=True)
class WorkerRow:
    worker_id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    serves: tuple[str, ...] = ()  # the accounts it is configured for
    ended: str = ""  # how its run ended: "stopped" (by itself), "died" (found dead), "" (running)

    def alive(self, now: datetime, lease_seconds: float) -> bool:
        """Running, with a heartbeat within a lease of ``now`` (the leases' clock)."""
        return self.stopped_at is None and (now - self.heartbeat_at).total_seconds() <= lease_seconds


@dataclass(frozen=True)
class LeaseRow:
    key: str
    worker_id: str | None
    acquired_at: datetime
    expires_at: datetime | None
    handovers: int  # how often the key changed hands: taken from a dead, stopping or over-share worker


@dataclass(frozen=True)
class LeaseCensus:
    """What decides whether a heartbeat now would move a lease: the workers alive by their
    heartbeats, the keys nobody holds, how many of those workers hold more accounts than the even
    split (``accounts // live_workers``, see :func:`fair_share`), and how many of them the next
    heartbeat would find dead (their process gone, a heartbeat missed)."""

    live_workers: int
    free_accounts: int
    free_jobs: int
    fuller_workers: int = 0
    dead_workers: int = 0  # workers the next heartbeat finds dead (their leases then free)


def fair_share(accounts: int, workers: int, fuller_others: int) -> int:
    """How many of ``accounts`` one of ``workers`` live workers (itself counted) may hold:
    ``accounts // workers``, and one more while fewer than ``accounts % workers`` of the others
    (``fuller_others``) hold more than that. So six accounts among four workers are held 2, 2, 1
    and 1; each keeping the share rounded up (2), three workers took all six and the fourth stood idle."""
    base, extra = divmod(accounts, max(workers, 1))
    return base + 1 if fuller_others < extra else base


def _listed(accounts: Sequence[str]) -> str:
    """A worker's accounts as recorded: sorted, comma-separated (names cannot hold a comma)."""
    return ",".join(sorted(set(accounts)))


def _held(rows: Sequence[Any], now: str, accounts: Sequence[str], workers: set[str]) -> Counter[str]:
    """How many of ``accounts`` each of ``workers`` holds now, by the lease rows."""
    keys = set(accounts)
    return Counter(r["worker_id"] for r in rows if r["account_key"] in keys and r["worker_id"] in workers
                   and r["expires_at"] > now)


class LeaseStore:
    def lease_now(self, conn: Any = None) -> datetime:
        """The time leases and heartbeats are written and judged by. The ledger's clock here; a
        store shared by several hosts answers with its server's clock instead."""
        return self._clock()

    def lease_census(self, lease_seconds: float, *, accounts: Sequence[str],
                     jobs: Sequence[str] = ()) -> LeaseCensus:
        """A read (no write lock): live workers and free leases as the next heartbeat would see them,
        but for the dead-process check only the heartbeat makes. Only the leases of ``accounts``
        and ``jobs`` (what the heartbeat takes) count: a free one of an account no longer
        configured stays free for ever, and would have a worker under its share beat at every look.
        Only the workers serving the same accounts count (see :meth:`worker_heartbeat`)."""
        conn = self._conn()
        moment = self.lease_now(conn)
        now, alive_since = _ts(moment), _ts(moment - timedelta(seconds=lease_seconds))
        live = {r["worker_id"] for r in conn.execute(
            "SELECT worker_id FROM workers WHERE stopped_at IS NULL AND heartbeat_at > ? AND accounts = ?",
            (alive_since, _listed(accounts)))}
        wanted = set(accounts) | set(jobs)
        rows = [r for r in conn.execute("SELECT account_key, worker_id, expires_at FROM account_leases")
                if r["account_key"] in wanted]
        free = [r["account_key"] for r in rows if r["worker_id"] is None or r["expires_at"] <= now]
        free_jobs = sum(1 for key in free if key.startswith("@"))
        held = _held(rows, now, accounts, live)
        base = len(accounts) // max(len(live), 1)
        # Those that missed a heartbeat, of every list (a dead leader frees the @leader job): only
        # theirs are looked at, so a census asks the store about no worker on time.
        overdue = {r["worker_id"]: r["heartbeat_at"] for r in conn.execute(
            "SELECT worker_id, heartbeat_at FROM workers WHERE stopped_at IS NULL AND heartbeat_at > ?"
            " AND heartbeat_at <= ?", (alive_since, _ts(moment - timedelta(seconds=lease_seconds
                                                                             * OVERDUE_FRACTION))))}
        dead = self._dead(conn, moment, lease_seconds, overdue, gone=lambda worker_id: False)
        return LeaseCensus(len(live), len(free) - free_jobs, free_jobs,
                           sum(1 for n in held.values() if n > base), len(dead))

    def worker_heartbeat(self, worker_id: str, *, host: str, pid: int, accounts: Sequence[str],
                         jobs: Sequence[str] = (), lease_seconds: float,
                         gone: Callable[[str], bool] = lambda worker_id: False,
                         serves: Sequence[str] | None = None) -> set[str]:
        """Register or refresh ``worker_id``, renew its leases, take its fair share of
        ``accounts`` (and any free ``jobs``) and give back what is over the share. Returns the keys
        it owns until the next heartbeat is due. ``gone(other)``: True when this host knows that
        worker's process has ended (see :class:`connector.engine.workers.LocalPresence`).
        ``serves``: the accounts it is configured for, recorded (default ``accounts``; a worker
        registering before it takes anything passes none to take and its list here).

        The share is counted among the live workers serving the same accounts: workers whose
        configurations disagree (a rolling deploy adding a seller, a host with a stale file) each
        still cover their whole list, instead of each keeping a share of all the workers and
        leaving accounts only the others list without an owner."""
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds!r}")
        with self._write(lock_wait=lease_seconds * LOCK_WAIT_SHARE) as conn:
            moment = self.lease_now(conn)
            now, until = _ts(moment), _ts(moment + timedelta(seconds=lease_seconds))
            alive_since = _ts(moment - timedelta(seconds=lease_seconds))
            listed = _listed(accounts if serves is None else serves)
            conn.execute("INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, accounts)"
                         " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at ="
                         " excluded.heartbeat_at, stopped_at = NULL, ended = '',"
                         " accounts = excluded.accounts",
                         (worker_id, host, pid, now, now, listed))
            for key in (*accounts, *jobs):
                conn.execute("INSERT INTO account_leases (account_key, worker_id, acquired_at, expires_at)"
                             " VALUES (?, NULL, ?, ?) ON CONFLICT (account_key) DO NOTHING", (key, now, now))
            recent, peers = {}, set()
            for r in conn.execute("SELECT worker_id, heartbeat_at, accounts FROM workers WHERE stopped_at IS"
                                  " NULL AND heartbeat_at > ? AND worker_id <> ?", (alive_since, worker_id)):
                recent[r["worker_id"]] = r["heartbeat_at"]
                if r["accounts"] == listed:
                    peers.add(r["worker_id"])
            # Dead: its liveness lock is free, and it missed a heartbeat or its own host says its
            # process ended. The lock alone is not proof: a server restart or an idle-session
            # timeout drops the session of a worker still running, possibly in the middle of
            # buying a label; it takes the lock again at its next heartbeat, within a third of the lease.
            # Nor is a missed heartbeat when the server started after it: the restart dropped every
            # lock, and a worker whose heartbeats failed while it was down runs on (its lease decides).
            dead = self._dead(conn, moment, lease_seconds, recent, gone)
            for other in dead:  # its process is gone: its leases are free now, not at their expiry
                conn.execute("UPDATE workers SET stopped_at = ?, ended = 'died' WHERE worker_id = ?",
                             (now, other))
                # (ended here, in the same transaction: once stopped it is no longer looked at, and
                # a worker with no room for them would otherwise leave them held until they expire)
                conn.execute("UPDATE account_leases SET expires_at = ? WHERE worker_id = ?"
                             " AND expires_at > ?", (now, other, now))
            # Silent for a whole lease and its process gone (or nothing tells): it died unseen, while
            # no other worker ran to find it (the only worker killed, its host lost). Its leases ran
            # out already; ended here, `workers` lists it as died for a day, not as dead for ever.
            # One whose liveness lock is still held (a frozen process) stays as it is.
            for r in conn.execute("SELECT worker_id FROM workers WHERE stopped_at IS NULL AND heartbeat_at"
                                  " <= ? AND worker_id <> ?", (alive_since, worker_id)).fetchall():
                if self._worker_alive(conn, r["worker_id"]) is not True:
                    conn.execute("UPDATE workers SET stopped_at = ?, ended = 'died' WHERE worker_id = ?",
                                 (now, r["worker_id"]))
            rows = conn.execute("SELECT account_key, worker_id, expires_at FROM account_leases"
                                " ORDER BY account_key").fetchall()
            workers = 1 + len(peers - dead)
            held = _held(rows, now, accounts, peers - dead)
            share = fair_share(len(accounts), workers,
                               sum(1 for n in held.values() if n > len(accounts) // workers))
            wanted = set(accounts) | set(jobs)
            mine = [r["account_key"] for r in rows if r["worker_id"] == worker_id and r["expires_at"] > now
                    and r["account_key"] in wanted]
            free = [r for r in rows if r["account_key"] in wanted and r["account_key"] not in mine
                    and (r["worker_id"] is None or r["expires_at"] <= now or r["worker_id"] in dead)]
            owned_accounts = [k for k in mine if not k.startswith("@")]
            for key in owned_accounts[share:]:  # over the share: give back for a newer worker
                # (ended, the owner kept: whoever takes it next counts a handover)
                conn.execute("UPDATE account_leases SET expires_at = ? WHERE account_key = ?", (now, key))
                mine.remove(key)
            room = share - min(len(owned_accounts), share)
            for r in free:
                key = r["account_key"]
                if not key.startswith("@"):
                    if room <= 0:
                        continue
                    room -= 1
                moved = 1 if r["worker_id"] not in (None, worker_id) else 0
                conn.execute("UPDATE account_leases SET worker_id = ?, acquired_at = ?, handovers ="
                             " handovers + ? WHERE account_key = ?", (worker_id, now, moved, key))
                mine.append(key)
            if mine:
                marks = ", ".join("?" * len(mine))
                conn.execute(f"UPDATE account_leases SET expires_at = ? WHERE account_key IN ({marks})",
                             (until, *mine))
            return set(mine)

    def _dead(self, conn: Any, moment: datetime, lease_seconds: float, recent: dict[str, str],
              gone: Callable[[str], bool]) -> set[str]:
        """Of ``recent`` (worker -> its last heartbeat, within a lease), those whose process is gone
        (see :meth:`worker_heartbeat`)."""
        overdue = _ts(moment - timedelta(seconds=lease_seconds * OVERDUE_FRACTION))
        unlocked = {w: beat for w, beat in recent.items() if self._worker_alive(conn, w) is False}
        started = self._locks_held_since(conn) if unlocked else None
        judged_since = _ts(started) if started is not None else ""
        return {w for w, beat in unlocked.items() if gone(w) or judged_since <= beat <= overdue}

    def _worker_alive(self, conn: Any, worker_id: str) -> bool | None:
        """Whether another worker's process is still there (None: the store cannot tell, and the
        heartbeat's age decides)."""
        return None

    def _locks_held_since(self, conn: Any) -> datetime | None:
        """Since when the workers' liveness locks can have been held without a break, on the
        leases' clock: the server's start (None: the store has no such locks, or cannot tell)."""
        return None

    def release_worker(self, worker_id: str, *, lease_seconds: float) -> None:
        """A worker stopping: its leases end now (the others' next census sees them free)."""
        with self._write(lock_wait=lease_seconds * LOCK_WAIT_SHARE) as conn:
            now = _ts(self.lease_now(conn))
            conn.execute("UPDATE account_leases SET expires_at = ? WHERE worker_id = ? AND expires_at > ?",
                         (now, worker_id, now))  # the owner kept: the next to take one counts a handover
            conn.execute("UPDATE workers SET stopped_at = ?, ended = 'stopped' WHERE worker_id = ?",
                         (now, worker_id))

    def workers(self) -> list[WorkerRow]:
        rows = self._conn().execute("SELECT * FROM workers ORDER BY started_at, worker_id").fetchall()
        return [WorkerRow(r["worker_id"], r["host"], int(r["pid"]), _dt(r["started_at"]),
                          _dt(r["heartbeat_at"]), _dt(r["stopped_at"]),
                          tuple(a for a in r["accounts"].split(",") if a), r["ended"]) for r in rows]

    def leases(self) -> list[LeaseRow]:
        rows = self._conn().execute("SELECT * FROM account_leases ORDER BY account_key").fetchall()
        return [LeaseRow(r["account_key"], r["worker_id"], _dt(r["acquired_at"]), _dt(r["expires_at"]),
                         int(r["handovers"])) for r in rows]
