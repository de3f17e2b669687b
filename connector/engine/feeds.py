"""Shipment confirmation in bulk: the Feeds API when confirmShipment cannot clear the backlog in time.

confirmShipment confirms one package per request at 2/s (burst 10): 10,000 orders take about 83
minutes. A ``POST_FLAT_FILE_FULFILLMENT_DATA`` feed carries thousands of packages per request,
and createFeed allows one feed every two minutes after a burst of 15. Once per pass and account,
:func:`confirm_by_feed`

1. follows the account's open feeds: a feed claimed or uploaded but not created (a crash, an
   error) is submitted again with a new document (after a failure, at most every
   ``amazon.feeds.poll_seconds``); a created one is polled with getFeed (at most
   every ``amazon.feeds.poll_seconds``) until DONE, FATAL or CANCELLED, and its processing report
   settles its packages (:func:`_settle`);
2. decides whether the account confirms by feed (``amazon.feeds.mode``: ``always``, ``never``, or
   ``auto`` -- the orders waiting to be confirmed, at confirmShipment's rate, would not be done
   ``ship_by_margin_seconds`` before the earliest ship-by among them). While it does, and has
   fewer than ``max_open_feeds`` feeds open (else no new feed can start: confirmShipment takes
   them), :func:`leaves_to_feed` tells the single-confirmation path to leave LABELED packages alone;
3. claims a batch (earliest ship-by first, one marketplace, up to ``max_rows`` document lines)
   LABELED -> CONFIRMING in one transaction with its feed membership (``ledger/feeds.py``),
   uploads the document and creates the feed -- only when createFeedDocument and createFeed have a
   token now: a pass never waits two minutes for createFeed.

Results. An accepted package is CONFIRMED and read back by the verify step like any other (by
its tracking number: Amazon numbers a feed's packages itself). A refused one goes back to LABELED
and its order is held (``amazon_rejected``, the report's error in the message), as a refused
confirmShipment is; an error code listed in ``retry_error_codes`` sends it back to LABELED to be
tried again. Where the outcome is unknown -- a FATAL feed, a feed without a report, a package
the report does not mention, a refusal saying it is shipped already, any refusal in a feed that
was submitted again after a createFeed whose answer was lost, or such a feed ending CANCELLED (the
earlier one may have been processed) -- the package is CONFIRMED and the verify step decides:
shown on the order -> VERIFIED; not shown -> sent again, a bounded number of times, through
confirmShipment (which refuses to ship more than is left). A feed Amazon has not finished
``max_processing_seconds`` after its createFeed is given up (:func:`_overdue`): cancelled first
while it is still IN_QUEUE (its packages back to LABELED once getFeed shows it CANCELLED, read
back if it was submitted again), otherwise its outcome is unknown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..amazon.errors import SpApiError, looks_already_shipped
from ..amazon.feeds import (
    FULFILLMENT_FEED_TYPE,
    FeedRow,
    FeedsClient,
    ProcessingReport,
    build_flat_file,
    parse_processing_report,
)
from ..config import Account
from ..holds import HoldReason
from ..ledger import OrderState, Package, PackageState, StaleStateError
from ..ledger.feeds import OPEN_FEED_STATES, UNSUBMITTED_FEED_STATES, FeedOutcome, FeedRecord
from ..model import FulfillmentStatus, Order, utcnow
from ..ratelimit import QuotaWaitInterrupted
from ..transparency import enrolled_items
from .crashpoints import FEED_CANCEL_POINT, crashpoint
from .runtime import Runtime

log = logging.getLogger("connector.engine")

# Orders that still need a confirmation (those upstream will be LABELED within the pass).
BACKLOG_STATES = (OrderState.NEW, OrderState.PLANNED, OrderState.LABEL_CLAIMED, OrderState.LABELED)
# How long an order whose package is in an open feed rests. The feed's end (its report applied, the
# feed given up or cancelled) moves every member on in one transaction, and that makes its order due
# at once: looking at the order meanwhile would only find the feed still open. So this is a safety
# net, not the way it wakes (a feed can stay open for hours: at the old 60 s, each of a 5,000-row
# feed's orders was driven again every minute).
IN_FEED_REST = timedelta(minutes=10)


@dataclass
class _FeedsState:
    """What the engine keeps between passes (in memory; the ledger holds everything that matters)."""

    feeding: set[str] = field(default_factory=set)  # accounts confirming by feed this pass
    decided: set[str] = field(default_factory=set)  # accounts a feeds pass has looked at
    checked: dict[int, float] = field(default_factory=dict)  # feed row -> monotonic time of the last getFeed
    failures: dict[int, int] = field(default_factory=dict)  # feed row -> failed submissions/reads here
    cancels: dict[int, int] = field(default_factory=dict)  # feed row -> cancels Amazon accepted here
    paused: dict[str, datetime] = field(default_factory=dict)  # account -> no new feed before then
    clients: dict[str, FeedsClient] = field(default_factory=dict)


_STATE_LOCK = threading.Lock()


def _state(rt: Runtime) -> _FeedsState:
    state = getattr(rt, "_feeds_state", None)
    if state is None:
        with _STATE_LOCK:
            state = getattr(rt, "_feeds_state", None)
            if state is None:
                state = _FeedsState()
                rt._feeds_state = state  # type: ignore[attr-defined]
    return state


def _client(rt: Runtime, account: str) -> FeedsClient:
    state = _state(rt)
    if account not in state.clients:
        state.clients[account] = FeedsClient(rt.amazon[account])
    return state.clients[account]


# -- what the single-confirmation path and the verify step ask -------------------------------------


def leaves_to_feed(rt: Runtime, order: Order, package: Package) -> bool:
    """Whether confirm() leaves this order's LABELED package to a feed (its account confirms by
    feed now, and a feed can carry it); if so the order is parked a few seconds (a feed claims it
    whether due or not)."""
    if not feedable(rt, order, package):
        return False
    state = _state(rt)
    if order.account not in state.decided:  # before the first feeds pass (they run on another thread)
        if order.account not in rt.amazon or not wants_feeds(rt, rt.config.account(order.account)):
            return False
        state.feeding.add(order.account)
        state.decided.add(order.account)
    if order.account not in state.feeding:
        return False
    park_for_feed(rt, order.order_id)
    return True


def park_for_feed(rt: Runtime, order_id: str) -> None:
    """Leave the LABELED order until about the next feeds pass, so the dispatcher does not spin on
    it (the feed claims it whether due or not; if the account stops confirming by feed meanwhile,
    confirmShipment takes it when it is due again)."""
    park = max(5.0, min(rt.config.amazon.feeds.batch_wait_seconds, 60.0))
    rt.ledger.park_for_feed(order_id, utcnow() + timedelta(seconds=park))


def rest_in_feed(rt: Runtime, order_id: str) -> None:
    """Leave the order whose package an open feed holds until the feed ends (:data:`IN_FEED_REST`)."""
    rt.ledger.park_for_feed(order_id, utcnow() + IN_FEED_REST)


def in_open_feed(rt: Runtime, package: Package) -> bool:
    """Whether a feed in flight holds this package's CONFIRMING claim (confirm() must not send)."""
    check = getattr(rt.ledger, "in_open_feed", None)
    return bool(check and package.state == PackageState.CONFIRMING and check(package.id))


def unsubmitted_feed_of(rt: Runtime, package: Package) -> int | None:
    """The feed claimed with this CONFIRMING package and not created on Amazon yet, if any."""
    find = getattr(rt.ledger, "open_feed_of", None)
    if find is None or package.state != PackageState.CONFIRMING:
        return None
    return find(package.id, UNSUBMITTED_FEED_STATES)


def confirmed_by_feed(rt: Runtime, package: Package) -> datetime | None:
    """When a feed confirmed the package (None: none did), so the order read back shows it under a
    package id Amazon chose: only the tracking number identifies it."""
    check = getattr(rt.ledger, "confirmed_by_feed", None)
    return check(package.id) if check else None


def accepted_by_feed(rt: Runtime, package: Package) -> datetime | None:
    """When a feed's processing report accepted the package's line (None: none did; a line in
    doubt -- a FATAL feed, one given up -- does not count: it may never have been applied)."""
    check = getattr(rt.ledger, "confirmed_by_feed", None)
    return check(package.id, accepted_only=True) if check else None


# -- once per pass ---------------------------------------------------------------------------------


def run_feeds(rt: Runtime, should_stop: Callable[[], bool] = lambda: False) -> int:
    """:func:`confirm_by_feed` for every account this daemon acts for; packages claimed or
    settled. One account's trouble never stops the others; nothing here waits for quota."""
    done = 0
    quiet = _quiet_accounts(rt)
    for account in rt.config.accounts:
        if should_stop():
            break
        if account.name not in rt.amazon or not rt.acts_for(account.name) or account.orders_owner == "erp":
            _state(rt).feeding.discard(account.name)
            continue
        if account.name in quiet:  # decided without a read of its own: no feed now
            _state(rt).decided.add(account.name)
            _state(rt).feeding.discard(account.name)
            continue
        try:
            done += confirm_by_feed(rt, account)
        except QuotaWaitInterrupted:
            break
        except SpApiError as exc:
            log.warning("account %s: feeds: %s (the next pass tries again)", account.name, exc)
        except Exception:  # a bug, or a ledger fault: still not the other accounts' trouble
            log.exception("account %s: feeds failed unexpectedly (the next pass tries again)", account.name)
    return done


def _quiet_accounts(rt: Runtime) -> set[str]:
    """The accounts with nothing to do by feed this pass, found with two reads for all of them: no
    feed open, and (``amazon.feeds.mode`` ``auto``) fewer orders waiting for a confirmation than
    ``min_backlog``, or (``never``) none to start. Asking each account in turn cost a worker acting
    for 300 accounts 600 reads every tick, most of its CPU while it had no order to drive."""
    settings = rt.config.amazon.feeds
    if settings.mode == "always":
        return set()
    busy = {feed.account for feed in rt.ledger.feeds(open_only=True)}
    backlog = rt.ledger.feed_backlogs(BACKLOG_STATES) if settings.mode == "auto" else {}
    return {account.name for account in rt.config.accounts
            if account.name not in busy and backlog.get(account.name, 0) < settings.min_backlog}


def confirm_by_feed(rt: Runtime, account: Account) -> int:
    """Follow the account's open feeds, decide, and start a new feed if it should; returns the
    packages claimed or settled (see the module docstring)."""
    settings = rt.config.amazon.feeds
    feeds = _client(rt, account.name)
    moved = _follow(rt, feeds, account)
    state = _state(rt)
    state.decided.add(account.name)
    paused = state.paused.get(account.name)
    if (paused is not None and utcnow() < paused) or not wants_feeds(rt, account):
        state.feeding.discard(account.name)
        return moved
    if len(rt.ledger.feeds(account.name, open_only=True)) >= settings.max_open_feeds:
        # no new feed can start (stuck feeds may keep their slots for max_processing_seconds):
        # confirmShipment takes the LABELED packages meanwhile, not a feed that may never come
        state.feeding.discard(account.name)
        return moved
    state.feeding.add(account.name)
    if feeds.available("createFeedDocument") < 1 or feeds.available("createFeed") < 1:
        return moved  # the next pass; the LABELED packages wait for the feed
    batch = _batch(rt, account)
    if not batch or not _worth_a_feed(rt, account, batch):
        return moved
    marketplace = batch[0][0].marketplace_id
    feed_row_id, members = rt.ledger.claim_feed(
        account.name,
        FULFILLMENT_FEED_TYPE,
        [marketplace],
        [(package, len(package.items)) for _, package in batch],
        shipped_at=utcnow(),
        members_rest=IN_FEED_REST,
    )
    if not feed_row_id:
        return moved
    log.info(
        "account %s: %d package(s) claimed for feed %d (%d row(s))",
        account.name,
        len(members),
        feed_row_id,
        members[-1].last_row,
    )
    crashpoint("after_feed_claim")
    _submit(rt, feeds, rt.ledger.get_feed_record(feed_row_id))
    return moved + len(members)


def wants_feeds(rt: Runtime, account: Account) -> bool:
    """``amazon.feeds.mode``; for ``auto``: would confirmShipment, at its rate, confirm every order
    still waiting for it ``ship_by_margin_seconds`` before the earliest ship-by among them?"""
    settings = rt.config.amazon.feeds
    if settings.mode != "auto":
        return settings.mode == "always"
    waiting, first_ship_by = rt.ledger.feed_backlog(account.name, BACKLOG_STATES)
    if waiting < settings.min_backlog or first_ship_by is None:
        return False
    limiter = rt.amazon[account.name].limiter
    rate = limiter.quota(account.name, "confirmShipment")[0] * limiter.pacing
    needed = timedelta(seconds=waiting / rate)
    left = first_ship_by - utcnow() - timedelta(seconds=settings.ship_by_margin_seconds)
    return needed > left


def _worth_a_feed(rt: Runtime, account: Account, batch: list[tuple[Order, Package]]) -> bool:
    """createFeed allows one feed every two minutes once its burst is spent: send a full batch, or
    what there is once no order upstream will add to it or the first package has waited
    ``batch_wait_seconds``."""
    settings = rt.config.amazon.feeds
    if sum(len(p.items) for _, p in batch) >= settings.max_rows:
        return True
    upstream, _ = rt.ledger.feed_backlog(account.name, BACKLOG_STATES[:3])
    if upstream == 0:
        return True
    first = min((p.updated_at for _, p in batch if p.updated_at), default=None)
    return first is not None and utcnow() - first >= timedelta(seconds=settings.batch_wait_seconds)


def feedable(rt: Runtime, order: Order, package: Package) -> bool:
    """Whether a feed can carry this LABELED package. Not those confirm() must handle itself (no
    carrier code, a buyer's cancel request, a self-confirming label, an ERP's label, no tracking
    number or no items yet), nor one with more lines than a whole feed may hold
    (``amazon.feeds.max_rows``): confirmShipment sends those, or they would wait for ever. Nor
    the label of an order Amazon cancelled: its step voids it (a feed line would be refused). Nor a
    package of Transparency items: only confirmShipment carries their codes. Nor one whose lines
    the flat file cannot hold (:func:`_writable`). Nor a confirmation sent again because Amazon
    accepted it (or may have) but never showed it (``confirmed_at`` kept from then): confirmShipment
    under the package's own reference edits what may have landed, where a feed line could be
    refused for a quantity already shipped and the order held."""
    spec = rt.carrier_specs.get(package.carrier)
    if not (
        spec is None
        or spec.confirms_shipment
        or not order.confirms_on_amazon
        or order.status == FulfillmentStatus.CANCELLED
        or order.buyer_cancel_requested
        or not rt.listed_carrier_code(package.carrier, order.site)
        or not package.items
        or not package.tracking_number
        or package.confirmed_at is not None  # a re-send after the verify step
        or len(package.items) > rt.config.amazon.feeds.max_rows
        or bool(enrolled_items(order))  # the flat file has no column for Transparency codes
    ):
        return _writable(rt, order, package)
    return False


def _writable(rt: Runtime, order: Order, package: Package) -> bool:
    """Whether the package's lines can be written in the flat file (no tab or line break in a
    field, a quantity...). One that cannot would fail each submission of its whole feed, all of
    whose packages would wait for the feed to be given up; confirmShipment's JSON carries it."""
    try:
        build_flat_file(_rows(rt, order, package))
    except (ValueError, TypeError, KeyError, RuntimeError):
        return False
    return True


def _batch(rt: Runtime, account: Account) -> list[tuple[Order, Package]]:
    """LABELED packages a feed can carry (:func:`feedable`), earliest ship-by first, one
    marketplace, at most ``max_rows`` lines."""
    max_rows = rt.config.amazon.feeds.max_rows
    batch: list[tuple[Order, Package]] = []
    rows = 0
    for order, package in rt.ledger.labeled_for_feed(account.name, limit=max_rows):
        if not feedable(rt, order, package):
            continue
        if batch and order.marketplace_id != batch[0][0].marketplace_id:
            continue
        if rows + len(package.items) > max_rows:
            break
        batch.append((order, package))
        rows += len(package.items)
    return batch


# -- submitting ------------------------------------------------------------------------------------


def _rows(rt: Runtime, order: Order, package: Package) -> list[FeedRow]:
    spec = rt.carrier_specs.get(package.carrier)
    if spec is None:  # taken out of the configuration since the claim: a failed submission
        raise RuntimeError(f"carrier {package.carrier!r} of package {package.package_ref} of order "
                           f"{order.order_id} is no longer configured")
    code = rt.listed_carrier_code(package.carrier, order.site)
    if code is None:  # dropped from the site's list since the claim: Amazon would file it as "Other"
        raise RuntimeError(f"the carrier code of {package.carrier} for package {package.package_ref} of "
                           f"order {order.order_id} is not in Amazon's list for {order.site} "
                           f"(site_rules.{order.site}.carrier_codes)")
    service = spec.service(package.service)
    method = (service.amazon_shipping_method or service.name) if service else ""
    ship_date = package.shipped_at or package.updated_at or utcnow()
    return [
        FeedRow(
            order_id=order.order_id,
            order_item_id=str(item["order_item_id"]),
            quantity=int(item["quantity"]),
            ship_date=ship_date,
            carrier_code=code,
            tracking_number=package.tracking_number,
            ship_method=method,
        )
        for item in package.items
    ]


def document_for(rt: Runtime, feed: FeedRecord) -> bytes:
    """The feed's document, rebuilt from the ledger (the same lines after a restart: the ship date
    was stored with the claim), without the members left out of it (:func:`_leave_out_moved`)."""
    rows: list[FeedRow] = []
    for member in rt.ledger.feed_members(feed.id):
        if member.result:
            continue
        package = rt.ledger.get_package(member.package_id)
        record = rt.ledger.get_order(package.order_id, with_pii=False) if package else None
        if package is None or record is None:
            raise RuntimeError(f"feed {feed.id}: package {member.package_id} is missing from the ledger")
        lines = _rows(rt, record.order, package)
        if len(lines) != member.last_row - member.first_row + 1 or len(rows) + 1 != member.first_row:
            raise RuntimeError(
                f"feed {feed.id}: package {package.package_ref} of order {package.order_id} "
                "no longer has the rows it was claimed with"
            )
        rows.extend(lines)
    return build_flat_file(rows)


@contextmanager
def _only_here(rt: Runtime, feed: FeedRecord) -> Iterator[FeedRecord | None]:
    """The feed as it is now, while no other thread or worker sharing the ledger follows or
    submits it, nor voids one of its packages (None: one does). A feed claimed but not yet
    created looks, to another worker, just like one a crash left behind; without this, a worker
    that took the account over mid-submission would send the same packages in a second feed."""
    with rt.holding(feed_lock(feed.id)) as mine:
        yield rt.ledger.get_feed_record(feed.id) if mine else None


def feed_lock(feed_row_id: int) -> str:
    """The key a feed is submitted and followed under (:meth:`Runtime.holding`); a void of one of
    its packages takes it too, so that it lands before the document is built or after the feed is
    created, never in between (engine/void.py)."""
    return f"feed:{feed_row_id}"


def _submit(rt: Runtime, feeds: FeedsClient, feed: FeedRecord | None) -> None:
    """Upload the document and create the feed; on failure the feed stays CLAIMED/UPLOADED for the
    next pass, and after ``max_submit_attempts`` failures it is given up (:func:`_give_up`)."""
    if feed is None:
        return
    with _only_here(rt, feed) as current:
        if current is None or current.state not in UNSUBMITTED_FEED_STATES:
            return  # another worker submits it, or did since it was read
        _submit_now(rt, feeds, current)


def _leave_out_moved(rt: Runtime, feed: FeedRecord) -> FeedRecord | None:
    """The feed without the packages voided, held or moved by a person since the claim: they are
    given back before the document is built, never sent (as :func:`_give_up` would: unknown once
    a createFeed may have gone through). None: no package is left to send."""
    left = rt.ledger.leave_out_of_feed(feed.id, result="unknown" if feed.state == "UPLOADED" else "retry")
    if not left:
        return feed
    log.info("account %s: feed %d: left out before submission: %s", feed.account, feed.id,
             ", ".join(f"{n} {k}" for k, n in sorted(left.items())))
    current = rt.ledger.get_feed_record(feed.id)
    return current if current is not None and current.state in UNSUBMITTED_FEED_STATES else None


def _submit_now(rt: Runtime, feeds: FeedsClient, feed: FeedRecord) -> None:
    state = _state(rt)
    feed_id = None
    try:
        trimmed = _leave_out_moved(rt, feed)
        if trimmed is None:  # every package left it: nothing to send, the feed is FAILED
            state.failures.pop(feed.id, None)
            return
        feed = trimmed
        document = document_for(rt, feed)
        created = feeds.create_feed_document()
        feeds.upload(created["url"], document)
        rt.ledger.feed_uploaded(feed.id, created["feedDocumentId"])
        crashpoint("after_feed_upload")
        feed_id = feeds.create_feed(created["feedDocumentId"], list(feed.marketplace_ids), feed.feed_type)
        crashpoint("after_create_feed_call")
        rt.ledger.feed_submitted(feed.id, feed_id)
        crashpoint("after_feed_submitted")
        state.failures.pop(feed.id, None)
        log.info(
            "account %s: feed %d created as Amazon feed %s (%d row(s))",
            feed.account,
            feed.id,
            feed_id,
            feed.rows_total,
        )
    except StaleStateError as exc:  # moved by someone else meanwhile (this worker's lock was lost)
        if feed_id is None:
            log.info("account %s: feed %d changed while it was submitted here: %s",
                     feed.account, feed.id, exc)
        else:  # a feed on Amazon the ledger does not follow: its report is for a person to read
            log.warning("account %s: feed %d changed while it was submitted here (%s); Amazon feed %s was "
                        "created and is not followed: read its processing report with getFeed",
                        feed.account, feed.id, exc, feed_id)
    except (SpApiError, RuntimeError, ValueError) as exc:
        failures = state.failures[feed.id] = state.failures.get(feed.id, 0) + 1
        state.checked[feed.id] = time.monotonic()  # tried again after poll_seconds, as a failed read
        log.warning(
            "account %s: feed %d not submitted (%d failure(s)): %s", feed.account, feed.id, failures, exc
        )
        if failures >= rt.config.amazon.feeds.max_submit_attempts:
            _give_up(rt, rt.ledger.get_feed_record(feed.id) or feed, str(exc))


def _give_up(rt: Runtime, feed: FeedRecord, why: str) -> None:
    """No feed could be created: the packages go back to LABELED -- held ``retries_exhausted`` once
    claimed ``engine.max_attempts`` times -- unless a createFeed may have gone through (the feed was
    uploaded), then the verify step reads them back. The account starts no feed for
    ``pause_after_give_up_seconds``: a refusal that never clears must not keep its orders from
    confirmShipment."""
    error = f"feed {feed.id} could not be submitted: {why}"[:500]
    if feed.state == "UPLOADED":
        counts = _fail(rt, feed, error, lambda package_id: FeedOutcome(package_id, "unknown", error))
    else:
        counts = _fail(rt, feed, error, lambda package_id: _given_back(rt, package_id, error))
    held = counts.get("rejected", 0)
    if held:
        rt.counters.add("held", held)
    pause = _pause(rt, feed.account)
    log.warning("account %s: feed %d given up: %s; no new feed for %.0f s", feed.account, feed.id, counts,
                pause)


def _pause(rt: Runtime, account: str) -> float:
    """The account starts no feed for ``pause_after_give_up_seconds`` (confirmShipment confirms
    its orders meanwhile); returns that pause."""
    state = _state(rt)
    pause = rt.config.amazon.feeds.pause_after_give_up_seconds
    state.paused[account] = utcnow() + timedelta(seconds=pause)
    state.feeding.discard(account)
    return pause


def _fail(rt: Runtime, feed: FeedRecord, why: str, outcome_of: Callable[[int], FeedOutcome],
          processing: str | None = None) -> dict[str, int]:
    """End the feed FAILED, each member's package moved on by ``outcome_of(package id)``, and
    forget what this process counted of it; returns the count per result. ``processing``: the
    status getFeed just showed (``feed``, read before, holds the one seen earlier)."""
    counts = rt.ledger.settle_feed(
        feed.id,
        [outcome_of(m.package_id) for m in rt.ledger.feed_members(feed.id)],
        state="FAILED",
        processing_status=processing or feed.processing_status or "",
        summary=why,
        confirmed_rests_for=rt.engine.verify_grace,  # its verify step would only wait
    )
    state = _state(rt)
    state.failures.pop(feed.id, None)
    state.checked.pop(feed.id, None)
    state.cancels.pop(feed.id, None)
    return counts


def _given_back(rt: Runtime, package_id: int, error: str) -> FeedOutcome:
    """A package back from a feed (never submitted, or its line refused with a retry code): LABELED
    again, or held once its confirmation was claimed ``engine.max_attempts`` times."""
    package = rt.ledger.get_package(package_id)
    if package is None or package.confirm_attempts < rt.engine.max_attempts:
        return FeedOutcome(package_id, "retry", error)
    return FeedOutcome(
        package_id,
        "rejected",
        error,
        HoldReason.RETRIES_EXHAUSTED.value,
        f"order {package.order_id}: its confirmation was claimed {package.confirm_attempts} times; the "
        f"last time {error}",
    )


# -- following ---------------------------------------------------------------------------------------


def _follow(rt: Runtime, feeds: FeedsClient, account: Account) -> int:
    moved = 0
    for listed in rt.ledger.feeds(account.name, open_only=True):
        if not _poll_due(rt, listed):
            continue  # polled, or its submission failed, a moment ago: no lock, no read
        with _only_here(rt, listed) as feed:
            if feed is None or feed.state not in OPEN_FEED_STATES:
                continue  # another worker has it in hand, or it was settled since the list was read
            try:
                step = _follow_one(rt, feeds, account, feed)
            except (SpApiError, ValueError) as exc:  # this feed's trouble: the others are still followed
                step = _not_read(rt, feed, exc)
        if step is None:
            break
        moved += step
    return moved


def _poll_due(rt: Runtime, feed: FeedRecord) -> bool:
    """Whether a created feed's getFeed is due, or the submission again of one whose submission
    failed (at most every ``amazon.feeds.poll_seconds``)."""
    last = _state(rt).checked.get(feed.id)
    return last is None or time.monotonic() - last >= rt.config.amazon.feeds.poll_seconds


def _follow_one(rt: Runtime, feeds: FeedsClient, account: Account, feed: FeedRecord) -> int | None:
    """One open feed (under :func:`_only_here`): submitted again, or polled and settled; returns
    the packages moved (None: no getFeed token left for the account's other feeds this pass)."""
    state = _state(rt)
    if not _poll_due(rt, feed):
        return 0
    if feed.state in UNSUBMITTED_FEED_STATES:  # a crash or an error before createFeed answered
        if feeds.available("createFeedDocument") >= 1 and feeds.available("createFeed") >= 1:
            log.info("account %s: feed %d was %s without an Amazon feed id; submitting it again",
                     account.name, feed.id, feed.state)
            _submit_now(rt, feeds, feed)
        return 0
    if feeds.available("getFeed") < 1:
        return None
    status = feeds.get_feed(feed.feed_id)
    state.checked[feed.id] = time.monotonic()
    processing = str(status["processingStatus"])
    if processing != feed.processing_status:
        rt.ledger.feed_checked(feed.id, processing)
    if processing in ("IN_QUEUE", "IN_PROGRESS"):
        return _overdue(rt, feeds, feed, processing)
    report: ProcessingReport | None = None
    result_id = status.get("resultFeedDocumentId")
    if processing == "DONE" and result_id:
        if feeds.available("getFeedDocument") < 1:
            return 0  # the report next time; the feed is done on Amazon's side meanwhile
        content = feeds.download(feeds.get_feed_document(str(result_id)))
        try:
            report = parse_processing_report(content)
        except ValueError as exc:
            log.warning("account %s: feed %s: unreadable processing report (%s); reading the orders back",
                        account.name, feed.feed_id, exc)
    crashpoint("before_feed_settle")
    moved = _settle(rt, feed, processing, report)
    state.checked.pop(feed.id, None)
    state.failures.pop(feed.id, None)
    state.cancels.pop(feed.id, None)
    if processing == "CANCELLED" and _past_max_processing(rt, feed):
        _pause(rt, account.name)  # given up (_cancel): confirmShipment, not a new feed as slow
    return moved


def _overdue(rt: Runtime, feeds: FeedsClient, feed: FeedRecord, processing: str) -> int:
    """A feed Amazon has not finished ``max_processing_seconds`` after its createFeed (feeds stay
    IN_QUEUE or IN_PROGRESS for days at times) is given up, and the account confirms by
    confirmShipment for ``pause_after_give_up_seconds``. Polled on, it would keep its packages
    waiting for ever, not held (and its slot: with ``max_open_feeds`` such feeds open, the account
    starts no feed). Still IN_QUEUE, it is cancelled first (:func:`_cancel`): nothing of it is
    ever processed then, and its packages go back to LABELED once getFeed shows it CANCELLED.
    Otherwise (IN_PROGRESS, or the cancel refused or failed) its packages are read back from the
    orders (``unknown``: it may still be processed). 0 while it is not due."""
    if not _past_max_processing(rt, feed):
        return 0
    limit = rt.config.amazon.feeds.max_processing_seconds
    why = (f"feed {feed.feed_id} was still {processing} {limit:.0f} s after it was created "
           "(amazon.feeds.max_processing_seconds)")
    cancels = _state(rt).cancels.get(feed.id, 0)
    if processing == "IN_QUEUE" and cancels >= rt.config.amazon.feeds.max_read_attempts:
        # Amazon accepts the cancels, getFeed never shows one: the cancel may never have taken
        why += f" and still showed so after {cancels} cancel(s) Amazon accepted"
    elif processing == "IN_QUEUE":
        if feeds.available("cancelFeed") < 1:
            return 0  # the next poll cancels it
        if _cancel(rt, feeds, feed, why):
            return 0
        why += " and could not be cancelled"
    why += "; reading the orders back"
    counts = _fail(rt, feed, why, lambda package_id: FeedOutcome(package_id, "unknown", why), processing)
    pause = _pause(rt, feed.account)
    log.warning("account %s: %s: %s; no new feed for %.0f s", feed.account, why, counts, pause)
    return sum(counts.values())


def _past_max_processing(rt: Runtime, feed: FeedRecord) -> bool:
    """Whether ``amazon.feeds.max_processing_seconds`` have passed since the feed's createFeed."""
    since = feed.submitted_at or feed.uploaded_at or feed.created_at
    return utcnow() - since >= timedelta(seconds=rt.config.amazon.feeds.max_processing_seconds)


def _cancel(rt: Runtime, feeds: FeedsClient, feed: FeedRecord, why: str) -> bool:
    """cancelFeed for an overdue feed still IN_QUEUE; True when Amazon accepted it. False when
    Amazon refused (the feed started meanwhile) or the outcome is unknown: it may still be processed.

    An accepted cancel settles nothing: the next pass sends getFeed at once, which shows CANCELLED,
    and :func:`_settle` gives the packages back (``retry``: nothing was processed). Sending them by
    confirmShipment is safe only if the feed is never processed, and getFeed saying so is what the
    engine already trusts for a feed cancelled by anyone; the cancel's answer alone is not read as
    that proof. It is also the path a crash right after the cancel takes on restart, so there is
    one path, and no trace of the cancel to keep in the ledger; it costs one getFeed a pass later.
    (Should getFeed still say IN_QUEUE, the feed is cancelled again at the next poll, after
    ``poll_seconds``: refused, or accepted ``max_read_attempts`` times, the orders are read back.)
    The account starts no feed from the cancel on, and again from the settle (:func:`_follow_one`
    pauses it for a cancelled feed past ``max_processing_seconds``, also after a restart), so
    confirmShipment confirms them, not a new feed that may wait as long."""
    try:
        feeds.cancel_feed(feed.feed_id)
    except SpApiError as exc:
        log.warning("account %s: %s; cancelFeed failed: %s", feed.account, why, exc)
        return False
    crashpoint(FEED_CANCEL_POINT)
    state = _state(rt)
    state.cancels[feed.id] = state.cancels.get(feed.id, 0) + 1
    if state.cancels[feed.id] == 1:
        state.checked.pop(feed.id, None)  # getFeed at the next pass; again, after poll_seconds
    pause = _pause(rt, feed.account)
    log.warning("account %s: %s: cancelled; no new feed for %.0f s", feed.account, why, pause)
    return True


def _not_read(rt: Runtime, feed: FeedRecord, exc: Exception) -> int:
    """A submitted feed whose status or report could not be read: polled again after
    ``poll_seconds``; after ``max_read_attempts`` failures its packages are CONFIRMED as unknown and
    the verify step decides (a report that can never be read must not hold them for ever)."""
    state = _state(rt)
    state.checked[feed.id] = time.monotonic()
    failures = state.failures[feed.id] = state.failures.get(feed.id, 0) + 1
    log.warning("account %s: feed %s not read (%d failure(s)): %s", feed.account, feed.feed_id, failures, exc)
    if failures < rt.config.amazon.feeds.max_read_attempts:
        return 0
    why = f"feed {feed.feed_id} could not be read {failures} times ({exc}); reading the orders back"[:500]
    counts = _fail(rt, feed, why, lambda package_id: FeedOutcome(package_id, "unknown", why))
    log.warning("account %s: feed %s given up: %s", feed.account, feed.feed_id, counts)
    return sum(counts.values())


def _settle(rt: Runtime, feed: FeedRecord, processing: str, report: ProcessingReport | None) -> int:
    settings = rt.config.amazon.feeds
    members = [m for m in rt.ledger.feed_members(feed.id) if not m.result]  # not left out before submission
    outcomes: list[FeedOutcome] = []
    if processing == "CANCELLED" and feed.attempts > 1:
        # nothing of this feed was processed, but it was submitted again after a createFeed whose
        # answer was lost: that other feed, with the same lines, may have been; read them back
        why = (f"feed {feed.feed_id} was cancelled, but an earlier createFeed of its lines may have gone "
               "through; reading the order back")
        outcomes = [FeedOutcome(m.package_id, "unknown", why) for m in members]
    elif processing == "CANCELLED":  # nothing was processed
        outcomes = [FeedOutcome(m.package_id, "retry", f"feed {feed.feed_id} was cancelled") for m in members]
    elif report is None:
        why = f"feed {feed.feed_id} ended {processing} without a readable report; reading the order back"
        outcomes = [FeedOutcome(m.package_id, "unknown", why) for m in members]
    else:
        if report.processed is not None and report.processed != feed.rows_total:
            log.warning(
                "account %s: feed %s: the report counts %d record(s), the document had %d",
                feed.account,
                feed.feed_id,
                report.processed,
                feed.rows_total,
            )
        errors = report.errors_by_record()
        offset = settings.first_record_number - 1
        misplaced = _misplaced(rt, members, errors, offset)
        if misplaced:  # which line an error is for cannot be told: none is taken as refused or accepted
            why = (f"feed {feed.feed_id}: the report's record numbers do not match the document "
                   f"({misplaced}; amazon.feeds.first_record_number is {settings.first_record_number}); "
                   "reading the orders back")
            outcomes = [FeedOutcome(m.package_id, "unknown", why) for m in members]
        else:
            for member in members:
                found = [
                    e
                    for row in range(member.first_row, member.last_row + 1)
                    for e in errors.get(row + offset, [])
                ]
                outcomes.append(_outcome(rt, feed, member.package_id, found))
            outcomes = _unless_contradicted(feed, members, outcomes, report)
    counts = rt.ledger.settle_feed(
        feed.id,
        outcomes,
        state="DONE" if processing == "DONE" else "FAILED",
        processing_status=processing,
        summary=_summary(report, processing),
        confirmed_rests_for=rt.engine.verify_grace,  # its verify step would only wait
    )
    held = counts.get("rejected", 0)
    if held:
        rt.counters.add("held", held)
    log.info(
        "account %s: feed %s %s: %s",
        feed.account,
        feed.feed_id,
        processing,
        ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "already settled",
    )
    return sum(counts.values())


def _misplaced(rt: Runtime, members: list, errors: dict[int, list], offset: int) -> str:
    """What shows that the report's record numbers are not the document's lines ('' when nothing
    does): an error on a record past the document, or naming another order (the report's
    ``order-id``, when it has one) than the line with that number. Mapped as numbered, the error
    would hold an order Amazon may have shipped and accept the line it refused."""
    by_row = {row: m for m in members for row in range(m.first_row, m.last_row + 1)}
    orders: dict[int, str] = {}
    for record, found in sorted(errors.items()):
        member = by_row.get(record - offset)
        if member is None:
            return f"record {record} is not a line of the document"
        named = {e.order_id for e in found if e.order_id}
        if not named:
            continue
        if member.package_id not in orders:
            package = rt.ledger.get_package(member.package_id)
            orders[member.package_id] = package.order_id if package else ""
        if named != {orders[member.package_id]}:
            return (f"record {record} names order {', '.join(sorted(named))}, its line is order "
                    f"{orders[member.package_id] or '?'}")
    return ""


def _unless_contradicted(feed: FeedRecord, members: list, outcomes: list[FeedOutcome],
                         report: ProcessingReport) -> list[FeedOutcome]:
    """Lines with no error of their own are accepted -- unless the report says otherwise: an error
    naming no line (the file's), or fewer records successful than lines left without an error.
    Then they are read back from the orders (``unknown``), with the report's words kept."""
    rows = {m.package_id: m.last_row - m.first_row + 1 for m in members}
    clean = sum(rows[o.package_id] for o in outcomes if o.result == "accepted")
    short = report.successful is not None and report.successful < clean
    if not (report.unplaced or short):
        return outcomes
    why = (f"feed {feed.feed_id}: the report counts {report.successful} record(s) successful of {clean} "
           "with no error" if short else f"feed {feed.feed_id}: the report has errors for no record")
    why = "; ".join([why, *report.unplaced])[:400] + "; reading the orders back"
    return [FeedOutcome(o.package_id, "unknown", why) if o.result == "accepted" else o for o in outcomes]


def _outcome(rt: Runtime, feed: FeedRecord, package_id: int, errors: Iterable) -> FeedOutcome:
    errors = list(errors)
    if not errors:
        return FeedOutcome(package_id, "accepted")
    settings = rt.config.amazon.feeds
    text = "; ".join(f"record {e.record}: {e.error_code} {e.message}".strip() for e in errors)[:400]
    if feed.attempts > 1 or any(looks_already_shipped(e.error_code, e.message) for e in errors):
        # submitted again after a lost createFeed answer (even a retry code: the earlier feed may
        # have been applied), or "already shipped": maybe ours; read back
        return FeedOutcome(package_id, "unknown", f"feed {feed.feed_id}: {text}")
    if all(e.error_code in settings.retry_error_codes for e in errors):
        return _given_back(rt, package_id, f"feed {feed.feed_id}: {text}")
    package = rt.ledger.get_package(package_id)
    order_id = package.order_id if package else "?"
    return FeedOutcome(
        package_id,
        "rejected",
        f"feed {feed.feed_id}: {text}",
        HoldReason.AMAZON_REJECTED.value,
        f"order {order_id}: Amazon refused the shipment confirmation in feed {feed.feed_id}: {text}",
    )


def _summary(report: ProcessingReport | None, processing: str) -> str:
    if report is None:
        return processing
    errors = sum(r.is_error for r in report.results)
    return (
        f"{processing}: processed {report.processed}, successful {report.successful}, "
        f"{errors} error line(s), {len(report.results) - errors} warning(s)"
    )
