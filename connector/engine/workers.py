"""This daemon's place among the workers that share a PostgreSQL ledger.

With the embedded SQLite ledger one daemon does everything. With a PostgreSQL ledger any number of
``mfn-connector run`` processes, on one host or many, share the work: each holds leases on a fair
share of the seller accounts (:mod:`connector.ledger.leases`) and polls, plans, buys and confirms
only for those, so each account's quota buckets live in one process. One of them also holds the
``@leader`` lease and runs the jobs done once for everyone: tracking, alerts, the PII purge, the
plugin hooks and the webhooks. A heartbeat thread renews the leases every third of the lease time,
and every ``CENSUS_SECONDS`` in between reads who is alive and what is free: when that says a
heartbeat would move an account (a worker joined or left, this one is over or under its share
with an account free) it beats at once, so a share changes hands in seconds, not a lease time;
a worker that cannot renew (the database is gone) stops acting for its accounts once their lease
runs out, so two workers never act for one account longer than a heartbeat's overlap -- and even
then the ledger's claims and the per-order locks keep every label and confirmation single.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..ledger import Ledger
from ..ledger.leases import LeaseCensus, fair_share

try:
    import fcntl
except ImportError:  # not on this system: a dead worker's accounts wait for its heartbeat to age
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("connector.workers")

LEADER = "@leader"
CENSUS_SECONDS = 2.0  # between heartbeats: how often a worker looks whether the shares should move
JOIN_SECONDS = 1.0  # a starting worker registers, then waits this long before it takes accounts


def would_rebalance(census: LeaseCensus, accounts: int, owned: set[str]) -> bool:
    """Whether a heartbeat now would move a lease: this worker holds more than its fair share, or
    less while an account is free, or a job (``@leader``) is free, or a worker is dead (the
    heartbeat frees its leases)."""
    mine = sum(1 for key in owned if not key.startswith("@"))
    fuller_others = max(census.fuller_workers - (mine > accounts // max(census.live_workers, 1)), 0)
    share = fair_share(accounts, census.live_workers, fuller_others)
    return (mine > share or (mine < share and census.free_accounts > 0) or census.free_jobs > 0
            or census.dead_workers > 0)


class LocalPresence:
    """This worker's lock file in the state directory, locked (``flock``) for the process's life.
    The kernel drops the lock with the process and only then, unlike the database's liveness lock,
    which a server restart drops too: a worker sharing the directory (a restart on the same host)
    that can take it knows the process is gone, and takes its accounts at once."""

    def __init__(self, directory: Path, worker_id: str) -> None:
        self.directory = directory
        self._own = directory / _lock_name(worker_id)
        self._fd: int | None = None

    def hold(self) -> None:
        if fcntl is None:
            return  # no flock here: the heartbeats' age decides
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._own, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._fd is not None:
            self._own.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def gone(self, worker_id: str) -> bool:
        """True when ``worker_id``'s lock file is here and nobody holds it (its file is then
        removed); False when it is held, or not here (another host: nothing known)."""
        if fcntl is None:
            return False
        path = self.directory / _lock_name(worker_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its process runs
        else:
            path.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)


def _lock_name(worker_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in worker_id) + ".lock"


class Membership:
    """Which accounts this daemon acts for now; everything when the ledger is not shared."""

    def __init__(self, ledger: Ledger, accounts: list[str], *, lease_seconds: float,
                 on_change: Callable[[set[str], set[str], set[str]], None] | None = None,
                 presence_dir: Path | None = None) -> None:
        """``on_change(gained, lost, stale)`` hears every change of the keys owned (quota
        hand-over); ``stale``: keys held before the leases ran out (lost, or taken back since),
        see :meth:`heartbeat`.
        ``presence_dir``: where this host's workers keep their lock files (:class:`LocalPresence`)."""
        self.ledger = ledger
        self.on_change = on_change
        self.accounts = list(accounts)
        self.lease_seconds = float(lease_seconds)
        self.shared = bool(getattr(ledger, "shared", False))
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._owned: set[str] = set()
        self._valid_until = 0.0  # monotonic: the leases last renewed run out then
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False  # registered (or about to be): stop() hands everything back
        self._liveness: Callable[[], bool] | None = None
        self._presence = LocalPresence(presence_dir, self.worker_id) if presence_dir is not None else None

    # -- what this worker acts for ---------------------------------------------------------------
    def owns(self, account: str) -> bool:
        if not self.shared:
            return True
        with self._lock:
            return account in self._owned and time.monotonic() < self._valid_until

    @property
    def leads(self) -> bool:
        """Whether this worker runs the once-for-everyone jobs (always, with an unshared ledger)."""
        return self.owns(LEADER)

    def owned(self) -> set[str]:
        if not self.shared:
            return set(self.accounts)
        with self._lock:
            return set(self._owned) if time.monotonic() < self._valid_until else set()

    # -- heartbeats ----------------------------------------------------------------------------------
    def start(self, *, join: bool = False) -> None:
        """Take this worker's first leases now, then renew them in the background; with ``join``
        (a daemon), after giving workers started at the same moment time to register."""
        if not self.shared or self._thread is not None:
            return
        hold = getattr(self.ledger, "hold_worker_lock", None)  # others see when this one dies
        self._started = True  # (a stop request may end the start-up itself: see stop())
        if self._presence is not None:
            self._presence.hold()
        self._liveness = hold(self.worker_id) if hold is not None else None
        try:
            if join:
                self._join()
            self.heartbeat()
        except (*getattr(self.ledger, "db_errors", ()), ConnectionError) as exc:
            # The server restarting as this worker starts (systemd restarts the workers after the
            # database's own restart): own nothing for now; the background heartbeats try again.
            log.warning("worker %s: first lease heartbeat failed (%s); trying again every %g s",
                        self.worker_id, exc, CENSUS_SECONDS)
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _join(self) -> None:
        """Register without taking anything, then give workers started at the same moment (a
        deploy, a host's boot) time to register too: each then takes its fair share at once.
        Otherwise the first one took every account and handed them over only at the next census."""
        self.ledger.worker_heartbeat(self.worker_id, host=socket.gethostname(), pid=os.getpid(), accounts=(),
                                     jobs=(), lease_seconds=self.lease_seconds, serves=self.accounts)
        self._stop.wait(JOIN_SECONDS)

    def heartbeat(self) -> set[str]:
        started = time.monotonic()
        if self._liveness is not None:
            self._liveness()  # re-taken if its connection was lost
        owned = self.ledger.worker_heartbeat(
            self.worker_id, host=socket.gethostname(), pid=os.getpid(), accounts=self.accounts,
            jobs=(LEADER,), lease_seconds=self.lease_seconds,
            gone=self._presence.gone if self._presence is not None else lambda worker_id: False)
        with self._lock:
            previous, self._owned = self._owned, owned
            lapsed = time.monotonic() >= self._valid_until  # its leases ran out before this answer
            self._valid_until = started + self.lease_seconds
        if owned != previous:
            log.info("worker %s now acts for %s", self.worker_id, ", ".join(sorted(owned)) or "nothing")
        if self.on_change is not None and (owned != previous or (lapsed and previous)):
            # Keys held before the leases ran out (this process was paused, or could not reach the
            # ledger) may have been another worker's meanwhile, lost now or taken back since: what
            # this one knew of them (their quota state) is stale, and must not overwrite the other's.
            lost = previous - owned
            self.on_change(owned - previous, set() if lapsed else lost, previous if lapsed else set())
        return owned

    def _beat(self) -> None:
        every = self.lease_seconds / 3
        due = time.monotonic() + every
        failing = False
        # Woken at each census, and when the next heartbeat is due: waking only at the census,
        # it beat at the first census past its time, with a lease under about 8 s (a census
        # every 2 s) more than half the lease after the last -- the age at which a worker whose
        # liveness session was dropped is taken for dead (connector/ledger/leases.py).
        while not self._stop.wait(min(CENSUS_SECONDS, every) if failing
                                  else max(0.0, min(CENSUS_SECONDS, due - time.monotonic()))):
            try:
                lapsed = time.monotonic() >= self._valid_until  # (a failed heartbeat): again now
                if lapsed or time.monotonic() >= due or self._shares_moved():
                    self.heartbeat()
                    due = time.monotonic() + every
                if failing:
                    log.info("worker %s: lease heartbeats work again", self.worker_id)
                    failing = False
            except Exception as exc:  # noqa: BLE001 - the leases run out by themselves if this goes on
                # once, then quietly at every census until it works (an outage would fill the log)
                log.log(logging.DEBUG if failing else logging.WARNING,
                        "worker %s: lease heartbeat failed: %s", self.worker_id, exc)
                failing = True

    def _shares_moved(self) -> bool:
        census = self.ledger.lease_census(self.lease_seconds, accounts=self.accounts, jobs=(LEADER,))
        with self._lock:
            owned = set(self._owned)
        return would_rebalance(census, len(self.accounts), owned)

    def stop(self) -> None:
        """Stop renewing and hand the leases back at once (a clean stop; a killed worker's
        leases expire instead)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._started:  # also when a stop request ended start() before its thread ran
            self._started = False
            try:
                self.ledger.release_worker(self.worker_id, lease_seconds=self.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - they expire by themselves
                log.warning("worker %s: could not hand its leases back: %s", self.worker_id, exc)
            with self._lock:
                self._owned = set()
        if self._presence is not None:
            self._presence.release()
