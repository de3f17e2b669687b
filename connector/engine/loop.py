"""The sync loop: poll Amazon, then drive every due order through its stages in a bounded pool.

The spine, one module per stage, each step committing its transition before the next call::

    ingest.py   searchOrders -> ledger (NEW); the poll also verifies confirmations in bulk
    plan.py     NEW -> PLANNED (the label chosen, its plan stored) | HELD | CANCELLED
    buy.py      PLANNED -> LABEL_CLAIMED -> label created -> LABELED (PDF on disk)
    confirm.py  LABELED -> CONFIRMING -> CONFIRMED (confirmShipment)
    verify.py   CONFIRMED -> VERIFIED (read back)
    track.py    VERIFIED -> IN_TRANSIT -> ... -> DELIVERED (or LOST, RETURNED): the parcel followed
    void.py     a label Amazon no longer needs -> VOIDING -> VOIDED (cancelled at the carrier)
    watch.py    alerts: ship-by near, valid-tracking rate below the bar
    purge.py    buyer PII erased after the retention window (label files and print batches too)

The loop only schedules. Each order is driven by one worker at a time (:func:`drive`); Amazon
calls are paced by the shared token buckets, so confirmations never outrun the quota however
many workers run. A stop request (SIGTERM/SIGINT) lets every step in flight finish and commit.
"""
from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from .. import clock
from ..amazon.errors import SpApiError
from ..config import Account
from ..holds import HoldReason
from ..ledger import (
    ACTIVE_ORDER_STATES,
    CorruptRecordError,
    OrderRecord,
    OrderState,
    Package,
    PackageChange,
    PackageState,
    StaleStateError,
)
from ..ledger.crypto import PiiDecryptError
from ..model import FulfillmentStatus, utcnow
from ..ratelimit import QuotaWaitInterrupted, fence
from ..webhooks import deliver as deliver_webhooks
from .buy import buy, fetch_label
from .confirm import confirm
from .feeds import run_feeds
from .hooks import dispatch as dispatch_hooks
from .hooks import dispatch_after_step
from .host_clock import purge_wait_reason
from .ingest import ingest_account
from .outcome import Outcome, defer, hold, their_words
from .plan import plan
from .purge import delete_erased_files, purge_expired_pii
from .runtime import Runtime
from .scheduler import Scheduler, drive_leased
from .track import track_due
from .verify import verify, verify_in_bulk
from .void import FeedBeingSent, claim_void, void
from .watch import watch
from .workers import Membership

# Package states in which an order Amazon cancels has a label to void: not confirmed yet, or
# confirmed and not shown (Amazon does not cancel an order it shows shipped, so a cancellation
# says the confirmation did not land: a dropped one, or a feed's row that never went).
AMAZON_CANCELS = frozenset({PackageState.LABEL_CREATED, PackageState.LABELED, PackageState.CONFIRMING,
                            PackageState.CONFIRMED})

log = logging.getLogger("connector.engine")

AMAZON_RETENTION_DAYS = 30  # the Data Protection Policy: buyer data at most 30 days after delivery

PURGE_EVERY = timedelta(hours=1)  # the retention window is days long; hourly sweeps are plenty
WATCH_EVERY = timedelta(minutes=5)  # alerts on ship-by and on the valid-tracking rate


@dataclass
class PassResult:
    driven: int
    active_left: int
    ingest_errors: int
    tracked: int = 0
    deferred: int = 0  # orders whose drive ended put off (DEFER): a later pass may get through
    failed: int = 0  # orders whose drive failed outright (the ledger gone mid-step, a bug): logged each


class Engine:
    def __init__(self, rt: Runtime, *, poll_progress: Callable[[str], Callable[[int], None]] | None = None,
                 daemon: bool = False) -> None:
        """``poll_progress(account)``: a callback hearing each order a first poll reads (the CLI's
        progress line for a large backlog); only an account never polled before gets one.
        ``daemon``: this engine will run until stopped, so with a shared ledger it first lets
        workers started at the same moment register (a single pass takes what is free at once)."""
        self.rt = rt
        self.poll_progress = poll_progress
        self.stop_event = threading.Event()
        rt.watch_stop(self.stop_event)  # quota waits and back-offs end on a stop request
        if rt.membership is None:  # a shared (PostgreSQL) ledger: lease a fair share of the accounts
            rt.membership = Membership(rt.ledger, [a.name for a in rt.config.accounts],
                                       lease_seconds=rt.engine.lease_seconds, on_change=rt.hand_over_quotas,
                                       presence_dir=rt.config.state_dir / "workers")
            rt.membership.start(join=daemon)
        self._last: dict[str, float] = {}  # periodic jobs: when each last ran (clock.monotonic)
        self._purge_waits: str | None = None  # why the purge last waited (engine/host_clock.py)
        retention = rt.config.ledger.pii_retention_days
        if retention > AMAZON_RETENTION_DAYS:  # not refused: the seller answers for it; said
            log.warning("ledger.pii_retention_days is %d: Amazon's Data Protection Policy allows buyer data "
                        "for at most %d days after delivery", retention, AMAZON_RETENTION_DAYS)
        for endpoint in rt.config.webhooks.endpoints:  # a new endpoint hears everything from this start on
            rt.ledger.enqueue_webhooks(endpoint.name, endpoint.events)

    def stop(self) -> None:
        self.stop_event.set()

    def poll_accounts(self, accounts: list[Account] | None = None) -> int:
        """Poll each account this daemon acts for (one account's trouble never stops the others);
        returns how many polls failed."""
        errors = 0
        for account in self.rt.config.accounts if accounts is None else accounts:
            if self.stop_event.is_set():
                break
            if account.orders_owner == "erp":  # the ERP submits this account's orders itself
                continue
            if not self.rt.acts_for(account.name):  # another worker holds its lease
                continue
            first = self.poll_progress is not None and self.rt.ledger.get_watermark(account.name) is None
            progress = self.poll_progress(account.name) if first else None
            try:
                with fence(lambda name=account.name: not self.rt.acts_for(name)):
                    ingest_account(self.rt, account, progress)  # (its lease may go while it waits)
            except SpApiError as exc:  # one account's trouble never stops the others
                errors += 1
                log.error("account %s: order poll failed: %s", account.name, exc)
            except Exception:  # a bug, or a ledger fault: still not the other accounts' trouble
                errors += 1
                log.exception("account %s: order poll failed unexpectedly (its watermark stays; the "
                              "next poll reads the same orders again)", account.name)
            finally:
                getattr(progress, "close", lambda: None)()  # end the progress line
        return errors

    def run_pass(self, *, ingest: bool = True, only_due: bool = False) -> PassResult:
        """Ingest (optionally), then drive the active orders; ``only_due`` respects deferrals."""
        errors = self.poll_accounts() if ingest else 0
        if not self.stop_event.is_set():
            verify_in_bulk(self.rt, self.stop_event.is_set)  # from pages of shipped orders; never waits
        if not self.stop_event.is_set():
            run_feeds(self.rt, self.stop_event.is_set)  # bulk confirmation by feed (engine/feeds.py)
        due_before = utcnow() if only_due else None
        # earliest ship-by first, nothing decrypted to choose them
        due = [k for k in self.rt.ledger.schedule(ACTIVE_ORDER_STATES, due_before=due_before)
               if self.rt.acts_for(k.account)]
        workers = self.rt.engine.workers
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="order") as pool:
            futures = [pool.submit(drive_leased, self.rt, drive, r.order_id, r.account,
                                   self.stop_event.is_set) for r in due]
            deferred = failed = 0
            try:
                for r, future in zip(due, futures, strict=True):
                    try:
                        deferred += future.result() is Outcome.DEFER
                    except Exception:  # noqa: BLE001 - its ledger gone mid-step, a bug outside its steps:
                        failed += 1  # that order waits for the next pass, the others are driven still
                        log.exception("order %s: its drive failed; it is tried again at the next pass",
                                      r.order_id)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        tracked = 0
        if self.rt.leads():  # once for all workers sharing the ledger
            tracked = self._leader_jobs()
        self.erase_files()
        left = self.rt.ledger.count_orders(ACTIVE_ORDER_STATES)
        return PassResult(driven=len(due), active_left=left, ingest_errors=errors, tracked=tracked,
                          deferred=deferred, failed=failed)

    def erase_files(self) -> None:
        """Hourly, on every worker (each deletes what is on its own disk): the label files and
        print batches of orders whose buyer data is purged."""
        if self._due("erase_files", PURGE_EVERY):
            delete_erased_files(self.rt)

    def _leader_jobs(self) -> int:
        """Tracking, alerts, the purge, hooks and webhooks; returns the parcels tracked."""
        tracked = 0
        if not self.stop_event.is_set():
            tracked = track_due(self.rt, stopping=self.stop_event.is_set).polled  # bounded in time
        if self._due("watch", WATCH_EVERY):
            watch(self.rt)
        if self._due("purge", PURGE_EVERY):
            self._purge()
        dispatch_hooks(self.rt)  # the outbox's events to the in-process hooks, then to the endpoints
        if self.rt.config.webhooks.endpoints and not self.stop_event.is_set():
            deliver_webhooks(self.rt.ledger, self.rt.config.webhooks, self.rt.webhook_session,
                             should_stop=self.stop_event.is_set)
        return tracked

    def _purge(self) -> None:
        """The purge, when this host's clock can be trusted (engine/host_clock.py); otherwise it is
        tried again at the next round of the leader's jobs, and the reason logged once."""
        why = purge_wait_reason(self.rt)
        if why != self._purge_waits:
            if why is not None:
                log.warning("the purge of buyer data waits: %s", why)
            elif self._purge_waits is not None:
                log.info("the purge of buyer data runs again: this host's clock agrees with Amazon's")
            self._purge_waits = why
        if why is None:
            if purge_expired_pii(self.rt):  # the purged orders' label files go right after, not at
                delete_erased_files(self.rt)  # this disk's hourly sweep (which may just have run)
        else:
            self._last.pop("purge", None)

    def _due(self, job: str, every: timedelta) -> bool:
        """Whether a periodic job is due now (and mark it run), by the monotonic clock: a wall
        clock stepped back (NTP correcting a clock that ran ahead) would hold the watch, the
        purge and the file erasure for as long as the step."""
        now = clock.monotonic()
        last = self._last.get(job)
        if self.stop_event.is_set() or (last is not None and now - last < every.total_seconds()):
            return False
        self._last[job] = now
        return True

    def run_until_quiet(self, *, max_passes: int = 20, patience: int = 5) -> int:
        """Passes until no active order is left, or a pass changes nothing (the demo). A
        pass that changed nothing but put orders off for a transient failure (a fault, a carrier
        that did not answer) is not the end: the next pass may get through, so up to ``patience``
        such passes run in a row."""
        passes = unchanged = 0
        previous = None
        while passes < max_passes and not self.stop_event.is_set():
            result = self.run_pass(ingest=passes == 0)
            passes += 1
            counts = self.rt.ledger.counts()
            if result.active_left == 0:
                break
            unchanged = unchanged + 1 if counts == previous else 0
            if unchanged and (not result.deferred or unchanged >= patience):
                break
            previous = counts
        return passes

    def run_forever(self, *, tick_seconds: float = 2.0) -> None:
        """Until a stop request: every order driven as it becomes due, polls and the leader's
        jobs on their own threads (engine/scheduler.py)."""
        Scheduler(self, drive).run(tick_seconds=tick_seconds)
        log.info("stopped: every step in flight finished and was committed")


# -- one order -----------------------------------------------------------------------------------


def _owned_by_erp(rt: Runtime, account_name: str) -> bool:
    account = rt.config.account(account_name)
    return account is not None and account.orders_owner == "erp"


def step(rt: Runtime, record: OrderRecord) -> Outcome:
    """Do the next piece of work for one order, by its state and its open package's state."""
    if record.state is OrderState.HELD:
        # Stepped only by an operator's void (orders void), to finish it. By the time the command
        # has the order's lock the void may be over (refused: the label back where it started);
        # anything else would confirm, buy or re-hold an order a person is to decide on.
        package = rt.ledger.open_package(record.order_id)
        if package is None or package.state is not PackageState.VOIDING:
            return Outcome.REST
        return void(rt, record, package)
    if record.order.origin == "amazon" and _owned_by_erp(rt, record.order.account):
        return hold(rt, record.order_id, HoldReason.OWNED_BY_ERP,
                    f"order {record.order_id}: account {record.order.account}'s orders are shipped by the "
                    "ERP (accounts[].orders_owner: erp); the daemon neither buys nor confirms it")
    if record.state == OrderState.NEW:
        return plan(rt, record)
    package = rt.ledger.open_package(record.order_id)
    if package is None:
        return hold(rt, record.order_id, HoldReason.LEDGER_INCONSISTENT,
                    f"order {record.order_id} is {record.state.value} but has no open package")
    if package.state == PackageState.VOIDING:
        return void(rt, record, package)
    if (record.order.status == FulfillmentStatus.CANCELLED and package.state in AMAZON_CANCELS
            and not package.scans):  # a label for an order Amazon cancelled: void it
        try:
            return void(rt, record, claim_void(rt, package))
        except FeedBeingSent as exc:  # its feed is being created now: a look again later voids it
            log.info("%s; Amazon cancelled the order, its label is voided once the feed is created", exc)
            return Outcome.REST
    if package.state in (PackageState.PLANNED, PackageState.LABEL_CLAIMED):
        if record.order.status == FulfillmentStatus.CANCELLED and package.state == PackageState.PLANNED:
            rt.ledger.advance(package, PackageState.PLANNED, PackageState.FAILED,
                              order_state=OrderState.CANCELLED, error="order cancelled on Amazon")
            return Outcome.REST
        if record.order.status == FulfillmentStatus.SHIPPED and package.state == PackageState.PLANNED:
            given_up = PackageChange(package, PackageState.PLANNED, PackageState.FAILED,  # with the hold
                                     order_state=OrderState.NEW,
                                     fields={"error": "shipped outside the daemon"})
            return hold(rt, record.order_id, HoldReason.SHIPPED_ELSEWHERE,
                        f"order {record.order_id} was marked shipped on Amazon before a label was "
                        "bought here; nothing was bought", change=given_up)
        if package.state == PackageState.PLANNED and _plan_outdated(record, package):
            # part of it shipped outside the daemon since: a label for the plan would carry items
            # already shipped, and Amazon refuses to confirm more than is left to ship
            rt.ledger.advance(package, PackageState.PLANNED, PackageState.FAILED, order_state=OrderState.NEW,
                              error="Amazon shows part of the order shipped since it was planned; "
                                    "planned again")
            log.info("order %s: part of it was shipped outside the daemon since it was planned; planning "
                     "again for what is left", record.order_id)
            return Outcome.PROGRESS
        return buy(rt, record, package)
    if package.state == PackageState.LABEL_CREATED:
        return fetch_label(rt, record, package)
    if package.state in (PackageState.LABELED, PackageState.CONFIRMING):
        return confirm(rt, record, package)
    if package.state == PackageState.CONFIRMED:
        return verify(rt, record, package)
    return hold(rt, record.order_id, HoldReason.LEDGER_INCONSISTENT,
                f"order {record.order_id}: unexpected package state {package.state.value}")


def _plan_outdated(record: OrderRecord, package: Package) -> bool:
    """Amazon now shows less of an item left to ship than the package was planned with."""
    left: Counter[str] = Counter()
    for item in record.order.items:
        left[item.order_item_id] += item.quantity
    planned: Counter[str] = Counter()
    for line in package.items:
        planned[str(line.get("order_item_id"))] += int(line.get("quantity") or 0)
    return any(quantity > left[item_id] for item_id, quantity in planned.items())


def drive(rt: Runtime, order_id: str, should_stop: Callable[[], bool], max_steps: int = 12, *,
          wait: float = 0.0, states: Collection[OrderState] = ACTIVE_ORDER_STATES) -> Outcome:
    """Move one order as far as it goes now; stop early when asked (the step in flight finishes).

    Only an order in one of ``states`` is stepped (an operator's void also steps a HELD one).
    Holds the order's lock meanwhile; an order another thread is driving is left to it (REST),
    after waiting up to ``wait`` seconds for it."""
    with rt.driving(order_id, wait) as mine:
        return _drive(rt, order_id, should_stop, max_steps, states) if mine else Outcome.REST


def _drive(rt: Runtime, order_id: str, should_stop: Callable[[], bool], max_steps: int,
           states: Collection[OrderState]) -> Outcome:
    outcome = Outcome.REST
    for _ in range(max_steps):
        if should_stop():
            return outcome
        try:
            record = rt.ledger.get_order(order_id)
        except PiiDecryptError as exc:  # a key was removed too soon: this order waits, the others go on
            return hold(rt, order_id, HoldReason.LEDGER_INCONSISTENT,
                        f"{exc}; put the key it was sealed with back (after the newest), release the "
                        "order, and run 'mfn-connector pii rotate' before removing a key")
        except CorruptRecordError as exc:  # a hand edit gone wrong, say: this one waits, the others go on
            return hold(rt, order_id, HoldReason.LEDGER_INCONSISTENT, str(exc))
        if record is None or record.state not in states:
            return Outcome.REST
        try:
            outcome = step(rt, record)
        except StaleStateError:
            return Outcome.REST  # another worker moved it; it is theirs now
        except CorruptRecordError as exc:  # one of its packages' rows, say: this one waits, as above
            return hold(rt, order_id, HoldReason.LEDGER_INCONSISTENT, str(exc))
        except QuotaWaitInterrupted:
            return Outcome.REST  # stopping while it waited for quota: nothing was sent
        except Exception as exc:  # noqa: BLE001 - one order's bug must never stop the others
            if rt.ledger.lost_connection(exc):
                raise  # the ledger's server went away, not the order's fault: no attempt is counted
                # (a write to say so would fail too); the dispatcher logs it once, the order rests
            trace = "".join(traceback.format_exception(exc))  # a plugin's words may quote the address
            log.error("order %s: unexpected error in state %s\n%s", order_id, record.state.value,
                      their_words(record.order.ship_to, trace).rstrip())
            return defer(rt, record, f"internal error: {type(exc).__name__}: "
                                     f"{their_words(record.order.ship_to, exc)}"[:500])
        if rt.leads():
            dispatch_after_step(rt)  # a plugin hears of the step before the next one starts
        if outcome is not Outcome.PROGRESS:
            return outcome
    return outcome
