"""The daemon's scheduler: every order driven as soon as it is due, earliest ship-by first.

``run --once`` works in passes (poll, then drive everything, then the periodic jobs). The daemon
proper (:meth:`connector.engine.loop.Engine.run_forever`) must not: a pass waits for its slowest
order, and an account's poll waiting ~3 minutes for its searchOrders token would hold every
order already in the ledger. So four loops run side by side until a stop request:

* the **dispatcher** (the calling thread) keeps the pool of order workers busy: whenever a worker
  is free it asks the ledger for the due orders (indexed queries, nothing decrypted), earliest
  ship-by first, and hands out the next ones not in flight -- at most a fair share per seller
  account while other accounts have work, so one account waiting on its quota never takes every
  worker; and an account's orders waiting to be confirmed are handed out only as far as its
  confirm lane has room (two confirmations in flight keep its confirmShipment bucket busy), so
  workers buy the next labels instead of queueing for the bucket or being turned away by it (a
  window one account's backlog fills is read again past it, at most once a second);
* the **poller** polls each account on its own thread every ``poll_interval_seconds``; a poll
  waiting for quota holds nothing else;
* the **periodic** thread verifies confirmations from pages of shipped orders, sends and reads
  the bulk-confirmation feeds, and hourly deletes purged buyers' label files from this disk;
* the **leader** thread (on the worker that leads) tracks parcels, raises alerts, purges, runs the
  hooks and the webhooks.

Each loop on its own thread, so one slow job (a carrier's tracking call) holds no other. A stop
request ends every wait; the steps in flight finish and commit.
"""
from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..ledger import ACTIVE_ORDER_STATES, LedgerUnreachable, OrderState
from ..ledger.queries import OrderKey
from ..model import utcnow
from ..ratelimit import fence
from .confirm import confirm_lane
from .outcome import Outcome

if TYPE_CHECKING:
    from ..config import Account
    from .loop import Engine
    from .runtime import Runtime

log = logging.getLogger("connector.engine")

DISPATCH_TICK_S = 0.5   # how often the dispatcher looks again when no worker finished
DUE_WINDOW = 4          # orders read per free worker (room to skip those in flight or over share)
READ_PAST_EVERY_S = 1.0  # at most this often, a full window is read again past its accounts (_due)
REST_S = 2.0            # an order that came back REST (e.g. locked elsewhere) waits this long
LEDGER_PAUSE_MAX_S = 60.0  # the longest the dispatcher pauses while the ledger refuses its writes


def fair_pick(due: list, in_flight: set[str], per_account: Counter, free: int, workers: int) -> list:
    """The next ``free`` orders of ``due`` (earliest ship-by first) that are not in flight, at most
    a fair share of ``workers`` per account while several accounts have work."""
    accounts = {d.account for d in due if d.order_id not in in_flight}
    accounts |= {a for a, n in per_account.items() if n}
    share = max(1, math.ceil(workers / max(1, len(accounts))))
    picked = []
    for d in due:
        if len(picked) >= free:
            break
        if d.order_id in in_flight or per_account[d.account] >= share:
            continue
        picked.append(d)
        per_account[d.account] += 1
    return picked


_CONFIRMING = (OrderState.LABELED, OrderState.CONFIRMING)  # next step: confirmShipment (a lane)
_NOT_CONFIRMING = tuple(s for s in ACTIVE_ORDER_STATES if s not in _CONFIRMING)
_LAST = datetime.max.replace(tzinfo=timezone.utc)


def _schedule_order(key: OrderKey) -> tuple:
    """The ledger's schedule order: ship-by (orders without one last), then order id."""
    return (key.ship_by is None, key.ship_by or _LAST, key.order_id)


class Scheduler:
    def __init__(self, engine: Engine, drive: Callable[..., object]) -> None:
        self.engine = engine
        self.rt = engine.rt
        self.stop = engine.stop_event
        self.drive = drive
        # The ledger's server restarting, failing over or dropping a session: the statement fails,
        # and the thread's next one opens a new connection.
        self._ledger_faults = (*getattr(self.rt.ledger, "db_errors", ()), LedgerUnreachable)
        self._ledger_lost = False  # the ledger failed a read or a step's write (logged once)
        # Steps that failed in a row on the ledger (a full disk: reads answer, writes do not), and
        # until when nothing new is handed out: each step would call a carrier or Amazon again and
        # fail to record it, every REST_S, for every order.
        self._write_faults = 0
        self._paused_until = 0.0
        self._read_past_at = 0.0  # (monotonic) when _due may next read past a full window's accounts

    def run(self, *, tick_seconds: float) -> None:
        self.rt.confirm_lanes = {}  # a worker finding an account's lane full moves on (engine/confirm.py)
        threads = [threading.Thread(target=self._poll_loop, name="order-poll", daemon=True),
                   threading.Thread(target=self._periodic_loop, args=(tick_seconds,), name="periodic",
                                    daemon=True),
                   threading.Thread(target=self._leader_loop, args=(tick_seconds,), name="leader-jobs",
                                    daemon=True)]
        for thread in threads:
            thread.start()
        try:
            self._dispatch()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()

    # -- the dispatcher ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        workers = self.rt.engine.workers
        in_flight: dict[str, tuple[str, Future]] = {}  # order id -> (account, its drive)
        confirming: set[str] = set()  # those of them handed out to be confirmed (headed for a lane)
        resting: dict[str, float] = {}  # order id -> monotonic time it may be dispatched again
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="order") as pool:
            while not self.stop.is_set():
                now = time.monotonic()
                for order_id in [o for o, (_, f) in in_flight.items() if f.done()]:
                    outcome = self._outcome(in_flight.pop(order_id)[1], order_id)
                    confirming.discard(order_id)
                    # Came back with nothing done and maybe still due (locked by another worker):
                    # rest, or it would be handed straight back. Not the others: a deferred order's
                    # retry time is in the ledger, which the schedule honours to the instant; one
                    # waiting for a confirm lane is handed out as soon as the lane has room.
                    if outcome is Outcome.REST:
                        resting[order_id] = now + REST_S
                for order_id in [o for o, until in resting.items() if until <= now]:
                    del resting[order_id]
                free = workers - len(in_flight)
                if free > 0 and now >= self._paused_until:
                    membership = self.rt.membership
                    owned = None
                    if membership is not None and membership.shared:  # accounts, not jobs (@leader)
                        owned = {key for key in membership.owned() if not key.startswith("@")}
                    skip = set(in_flight) | set(resting)
                    headed = Counter(in_flight[o][0] for o in confirming)
                    try:
                        due, to_confirm = self._due(owned, free * DUE_WINDOW + len(skip), skip, headed)
                    except self._ledger_faults as exc:  # read again at the next tick
                        self._ledger_failed(exc)
                        due, to_confirm = [], set()
                    else:
                        if self._ledger_lost and not self._write_faults:
                            log.info("the ledger answers again")
                            self._ledger_lost = False
                    busy = Counter(account for account, _ in in_flight.values())
                    for d in fair_pick(due, skip, busy, free, workers):
                        in_flight[d.order_id] = (d.account, pool.submit(
                            drive_leased, self.rt, self.drive, d.order_id, d.account, self.stop.is_set))
                        if d.order_id in to_confirm:
                            confirming.add(d.order_id)
                waiting = [f for _, f in in_flight.values()]
                if waiting:  # wake when a worker finishes, or to look for newly due orders
                    _wait_any(waiting, DISPATCH_TICK_S, self.stop)
                else:
                    self.stop.wait(DISPATCH_TICK_S)
            for order_id, (_, future) in in_flight.items():  # a stop: the steps in flight finish, commit
                self._outcome(future, order_id)

    def _outcome(self, drive: Future, order_id: str) -> Outcome:
        """What a drive came back with. drive() handles its own errors, but not the ledger's going
        away mid-step: that order rests, and the others go on. Nor a bug outside its steps: logged,
        and that order rests too -- the dispatcher never dies of one order."""
        try:
            outcome = drive.result()
        except self._ledger_faults as exc:
            self._ledger_failed(exc)
            self._write_faults += 1
            pause = min(REST_S * 2 ** min(self._write_faults - 1, 16), LEDGER_PAUSE_MAX_S)  # (no overflow)
            self._paused_until = time.monotonic() + pause
            return Outcome.REST
        except Exception:  # noqa: BLE001 - one order's bug must never stop the others
            log.exception("order %s: its drive failed unexpectedly; it rests and is tried again", order_id)
            return Outcome.REST
        if self._write_faults or self._ledger_lost:  # a step went through: its writes too
            if self._ledger_lost:
                log.info("the ledger answers again")
            self._write_faults, self._ledger_lost = 0, False
        return outcome

    def _ledger_failed(self, exc: BaseException) -> None:
        if not self._ledger_lost:  # once, not at every tick until it answers again
            log.error("the ledger failed (%s): trying again until it answers (orders are handed out "
                      "again after a pause, doubling up to %g s)", exc, LEDGER_PAUSE_MAX_S)
            self._ledger_lost = True

    def _due(self, owned: set[str] | None, limit: int, skip: set[str],
             headed: Counter) -> tuple[list, set[str]]:
        """The orders due now, earliest ship-by first, and which of them are to be confirmed.

        Those whose next step is a confirmation come only as many per account as its confirm lane
        has room for: the places left once the confirmations inside it, or the orders already
        handed out to be confirmed (``headed``), are counted. More would only be turned away and
        come back. So the window read holds work a free worker can do, such as labels to buy.

        A window cut at ``limit`` may be one account's backlog (earlier ship-bys) hiding the other
        accounts' orders, and that account would take every worker (fair_pick sees no other). So
        it is read again past its accounts -- at most every :data:`READ_PAST_EVERY_S`, and while
        fewer accounts have been seen than the daemon acts for and than there are workers -- so
        that the others' orders are seen and get their share. A confirmation takes room in its
        lane only when it is in the window kept."""
        ledger, now = self.rt.ledger, utcnow()
        accounts = owned if owned is not None else {a.name for a in self.rt.config.accounts}
        room = {}
        for account in accounts:
            lane = confirm_lane(self.rt, account)
            if lane is not None:
                room[account] = lane.size - max(lane.busy, headed[account])
        no_room = {a for a, places in room.items() if places <= 0}
        merged: list = []
        to_confirm: set[str] = set()
        seen: set[str] = set()  # the accounts of the full windows read so far
        while True:
            others = ledger.schedule(_NOT_CONFIRMING, due_before=now, accounts=owned, except_accounts=seen,
                                     limit=limit)
            offered = [key for key in ledger.schedule(_CONFIRMING, due_before=now, accounts=owned,
                                                      except_accounts=no_room | seen, limit=limit)
                       if key.order_id not in skip]
            confirming = _within_room(offered, room)
            window = list(heapq.merge(others, confirming, key=_schedule_order))[:limit]
            merged = list(heapq.merge(merged, window, key=_schedule_order))
            kept = {key.order_id for key in confirming} & {key.order_id for key in window}
            for key in window:
                if key.order_id in kept and key.account in room:
                    room[key.account] -= 1
            to_confirm |= kept
            seen.update(key.account for key in window)
            if (len(window) < limit or len(seen) >= min(len(accounts), self.rt.engine.workers)
                    or time.monotonic() < self._read_past_at):
                return merged, to_confirm  # (every account seen: a read past them all finds nothing)
            self._read_past_at = time.monotonic() + READ_PAST_EVERY_S

    # -- the poller and the leader ---------------------------------------------------------------
    def _poll_loop(self) -> None:
        accounts = self.rt.config.accounts
        with ThreadPoolExecutor(max_workers=max(1, len(accounts)), thread_name_prefix="poll") as polls:
            for account in accounts:  # each on its own thread: one waiting for quota holds no other
                polls.submit(self._poll_account, account)

    def _poll_account(self, account: Account) -> None:
        """One account's polls, every ``poll_interval_seconds``, whatever the others' wait."""
        interval = self.rt.engine.poll_interval_seconds
        with self.rt.ledger.sharing_connections():  # a thread per account: not a connection each
            while not self.stop.is_set():
                started = time.monotonic()
                self._guarded(self.engine.poll_accounts, [account])
                self.rt.ledger.release_connection()  # asleep until the next poll: no connection held
                self.stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _periodic_loop(self, tick_seconds: float) -> None:
        """Every tick: confirmations verified from pages of shipped orders and bulk confirmation
        by feed (each paces itself per owned account), and the quota changes left unsaved saved;
        hourly, purged buyers' label files erased from this worker's disk."""
        from .feeds import run_feeds
        from .verify import verify_in_bulk

        while not self.stop.is_set():
            for job in (verify_in_bulk, run_feeds):
                if not self.stop.is_set():
                    self._guarded(job, self.rt, self.stop.is_set)
            if not self.stop.is_set():
                self._guarded(self.engine.erase_files)
            self._guarded(self.rt.save_quotas)  # a burst's last quota changes, before a crash loses them
            self.stop.wait(tick_seconds)

    def _leader_loop(self, tick_seconds: float) -> None:
        """The jobs done once for all workers; a slow carrier's tracking call holds nothing else."""
        while not self.stop.is_set():
            if self.rt.leads():
                self._guarded(self.engine._leader_jobs)
            self.stop.wait(tick_seconds)

    def _guarded(self, job: Callable[..., object], *args: object) -> None:
        try:
            job(*args)
        except Exception:  # noqa: BLE001 - a failing job is logged and tried again next time
            if not self.stop.is_set():
                log.exception("%s failed", getattr(job, "__name__", job))


def drive_leased(rt: Runtime, drive: Callable[..., object], order_id: str, account: str,
                 should_stop: Callable[[], bool]) -> object:
    """``drive(rt, order_id, should_stop)``; with a shared ledger, only while this worker holds
    ``account``'s lease. Once another worker takes the account over, a quota wait of the step in
    flight ends (nothing sent: no token of the new owner's spent) and the drive ends after that
    step, as at a stop (:func:`connector.ratelimit.fence`)."""
    membership = rt.membership
    if membership is None or not membership.shared:
        return drive(rt, order_id, should_stop)

    def lost() -> bool:
        return not rt.acts_for(account)

    with fence(lost):
        return drive(rt, order_id, lambda: should_stop() or lost())


def _within_room(keys: list, room: dict[str, int]) -> list:
    """``keys`` (orders to confirm, in schedule order) as far as their accounts' lanes have room
    (``room``: places left per account with a lane; it is not changed here)."""
    left = dict(room)
    out = []
    for key in keys:
        if key.account in left:
            if left[key.account] <= 0:
                continue
            left[key.account] -= 1
        out.append(key)
    return out


def _wait_any(futures: list[Future], timeout: float, stop: threading.Event) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait

    if not stop.is_set():
        wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
