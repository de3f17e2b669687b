"""Stage 7, void: a label Amazon no longer needs is cancelled at the carrier, exactly once.

When Amazon cancels an order after its label was bought and before the carrier's first scan
(or an operator asks: ``mfn-connector orders void``), the label is voided:

    LABEL_CREATED / LABELED / CONFIRMING / CONFIRMED / VERIFIED / ISSUED ──claim──► VOIDING ──cancel──► VOIDED

Like buying, voiding is claimed first (the package in VOIDING, committed). The carrier is asked by
reference first: a label it shows cancelled is VOIDED without a call. Otherwise it is asked to
cancel by the label's number -- also when its lookup shows nothing: a lookup may lag behind a label
bought moments before, and most carriers' lookups hide cancelled labels. Plugins answer a label
cancelled before (by a person in the portal, or by this step before a crash) as cancelled. The
refund (what the label cost) is recorded. A carrier that refuses (it has scanned the parcel; or,
for a label its lookup does not show either, it may not know a label this new yet) leaves the order
HELD (``void_refused``, the message says which) and the package back where the void started (a
confirmed parcel is still tracked while its order is held); ``orders void`` tries again. A label an
ERP bought elsewhere is not the daemon's to cancel: it is held the same way, with no carrier called.
"""
from __future__ import annotations

import logging
from enum import Enum

from ..holds import HoldReason
from ..kit.carrier import NotSupported, PermanentCarrierError, TransientCarrierError
from ..ledger import OrderRecord, OrderState, Package, PackageState
from ..ledger.base import order_state_of
from ..model import FulfillmentStatus, utcnow
from .carrier_calls import retry_safe, shipment_of, timed
from .crashpoints import crashpoint
from .feeds import feed_lock, unsubmitted_feed_of
from .outcome import Outcome, defer, hold, their_words
from .runtime import Runtime

log = logging.getLogger("connector.engine")

VOIDABLE = frozenset({PackageState.LABEL_CREATED, PackageState.LABELED, PackageState.CONFIRMING,
                      PackageState.CONFIRMED, PackageState.VERIFIED, PackageState.ISSUED})
"""A label exists and no carrier scan is known yet (ISSUED: bought for an ERP and handed to it
unconfirmed; a scan moves it on to IN_TRANSIT)."""


class VoidRefusal(Enum):
    """Why a void did not happen, which decides what the hold's message tells the person."""

    SCANNED = "scanned"  # the carrier refused to cancel: most likely it has the parcel
    ERP = "erp"          # an ERP bought the label elsewhere: no carrier of ours to ask
    LOOKUP = "lookup"    # the carrier refused the lookup: nothing was asked to cancel
    UNSEEN = "unseen"    # refused, and the lookup did not show the label either
    UNSUPPORTED = "unsupported"  # the carrier's plugin has no cancel (or lookup): the carrier was not asked


class FeedBeingSent(ValueError):
    """The package's feed is being submitted now: a void claimed meanwhile would not be left out."""


def claim_void(rt: Runtime, package: Package, *, wait: float = 0.0) -> Package:
    """Commit the void claim (ValueError when the package cannot be voided). A package claimed for
    a feed still to be created is claimed under that feed's lock, so the void lands before the
    document is built (the package is left out of it) or after the feed is created (as the void of
    a confirmed label), never in between; FeedBeingSent when the submission kept the lock for
    ``wait`` seconds."""
    if package.state not in VOIDABLE or package.scans:
        raise ValueError(f"order {package.order_id}: package {package.package_ref} is {package.state.value}"
                         + (f" with {package.scans} carrier scan(s)" if package.scans else "")
                         + "; only a label the carrier has not scanned can be voided")
    feed = unsubmitted_feed_of(rt, package)
    while feed is not None:
        with rt.holding(feed_lock(feed), wait) as mine:
            if not mine:
                raise FeedBeingSent(f"order {package.order_id}: package {package.package_ref} is being "
                                    f"sent to Amazon in feed {feed} right now; void it again once the "
                                    "feed is created")
            now_in = unsubmitted_feed_of(rt, package)
            if now_in == feed:
                return _claim(rt, package)
        feed = now_in  # left that feed meanwhile, for another one or for none
    return _claim(rt, package)


def _claim(rt: Runtime, package: Package) -> Package:
    package = rt.ledger.advance(package, package.state, PackageState.VOIDING, order_state=OrderState.VOIDING,
                                voided_from=package.state.value)
    crashpoint("after_void_claim")
    return package


def void(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    """Cancel the label of a package in VOIDING (claimed) at its carrier."""
    order = record.order
    carrier = rt.carriers.get(package.carrier)
    if carrier is None:
        return hold(rt, order.order_id, HoldReason.CARRIER_UNAVAILABLE,
                    f"order {order.order_id}: carrier {package.carrier!r} is not configured; its label "
                    f"{package.idempotency_key} must be voided there")
    if package.plan.get("bought_by") == "erp":  # confirmed through POST /v1/confirmations
        return _refused(rt, record, package, f"it was bought outside this daemon (tracking number "
                        f"{package.tracking_number}), which cannot cancel it", cause=VoidRefusal.ERP)
    shipment = shipment_of(package)
    unseen = False  # the lookup answered and did not show the label: cancelled, or not known yet
    looked_up = False
    try:
        found = retry_safe(rt, package.carrier, "find_by_reference",
                           lambda: carrier.find_by_reference(package.idempotency_key))
        looked_up = True
        if found is not None and found.status == "cancelled":
            log.info("order %s: the %s label %s is already cancelled", order.order_id, package.carrier,
                     package.idempotency_key)
        else:
            unseen = found is None
            if unseen:  # lagging, or hidden once cancelled: cancel by number either way
                log.info("order %s: the %s lookup does not show label %s; cancelling it by its number",
                         order.order_id, package.carrier, package.idempotency_key)
            cancelled = timed(package.carrier, "cancel", lambda: carrier.cancel(shipment))
            crashpoint("after_cancel_call")
            if not cancelled:
                return _refused(rt, record, package, f"{package.carrier} did not cancel the label")
    except (PermanentCarrierError, NotSupported) as exc:
        if isinstance(exc, NotSupported):  # the plugin has no such operation: the carrier was not asked
            return _refused(rt, record, package, f"the {package.carrier} plugin cannot "
                            f"{'cancel' if looked_up else 'look up'} a label (it has no such operation), "
                            f"so label {package.idempotency_key} was not cancelled",
                            cause=VoidRefusal.UNSUPPORTED)
        if not looked_up:  # nothing was asked to cancel: say so, not "refused to cancel"
            return _refused(rt, record, package, f"{package.carrier} refused the lookup of label "
                            f"{package.idempotency_key}: {their_words(order.ship_to, exc)}",
                            cause=VoidRefusal.LOOKUP)
        if unseen:  # not known there yet (a new label), or cancelled there in words the plugin does not know
            return _refused(rt, record, package, f"{package.carrier} refused to cancel label "
                            f"{package.idempotency_key}, which its lookup does not show either "
                            f"({their_words(order.ship_to, exc)})",
                            cause=VoidRefusal.UNSEEN)
        return _refused(rt, record, package, f"{package.carrier} refused to cancel the label: "
                        f"{their_words(order.ship_to, exc)}")
    except TransientCarrierError as exc:
        return defer(rt, record, f"void at {package.carrier}: {their_words(order.ship_to, exc)}")
    refund = package.plan.get("cost") or package.plan.get("price") or {}
    rt.ledger.advance(package, PackageState.VOIDING, PackageState.VOIDED, order_state=OrderState.VOIDED,
                      voided_at=utcnow(), refund=refund)
    crashpoint("after_void")
    rt.counters.add("labels_voided")
    log.info("order %s: %s label %s voided (refund %s %s)", order.order_id, package.carrier,
             package.tracking_number or package.idempotency_key, refund.get("amount", "?"),
             refund.get("currency", ""))
    return Outcome.REST


def ends_elsewhere(record: OrderRecord, state: PackageState) -> bool:
    """Whether a refused label is not confirmed on Amazon, so that a person who cancelled it (or
    stopped its parcel) outside the daemon ends the order: ``orders void --cancelled-elsewhere``.
    A label bought and not confirmed; or one whose confirmation was in doubt (CONFIRMING) or accepted
    and not shown yet (CONFIRMED) on an order Amazon cancelled: Amazon confirms no shipment of a
    cancelled order, nor cancels one it shows shipped (a release would only void it again). An ERP's
    label handed to it unconfirmed (ISSUED) too: the daemon never confirms it, and the ERP that asked
    for the void answers for its own confirmation. A confirmed parcel's order is released instead:
    the daemon then verifies and follows it."""
    return state in (PackageState.LABEL_CREATED, PackageState.LABELED, PackageState.ISSUED) or (
        state in (PackageState.CONFIRMING, PackageState.CONFIRMED)
        and record.order.status is FulfillmentStatus.CANCELLED)


CONFIRMED_ON_AMAZON = ("the parcel is confirmed on Amazon (or its confirmation is in doubt): release the "
                       "order, and the daemon goes on verifying and following it")

# What the person should know or do, by the cause of the refusal.
_NEXT_STEP = {
    VoidRefusal.SCANNED: "the parcel may be on its way: stop it at the carrier if you can",
    VoidRefusal.ERP: "cancel it where it was bought",
    VoidRefusal.LOOKUP: "void it again once that is fixed",
    VoidRefusal.UNSUPPORTED: "cancel it at the carrier yourself",
    VoidRefusal.UNSEEN: ("a label bought in the last minutes may not be known there yet (it is then live "
                         "and paid for: void it again in a few minutes), or it was cancelled there already "
                         "in words the plugin does not recognise (check at the carrier)"),
}
# How the hint to end the order joins the step above (none after a refused lookup: void again).
_END_IT = {VoidRefusal.SCANNED: "; once it is stopped,", VoidRefusal.ERP: ", then",
           VoidRefusal.UNSUPPORTED: ", then", VoidRefusal.UNSEEN: "; if it is cancelled there,"}


def _refused(rt: Runtime, record: OrderRecord, package: Package, why: str, *,
             cause: VoidRefusal = VoidRefusal.SCANNED) -> Outcome:
    """The void did not happen: the order is held, the message saying what to do for ``cause``,
    then the package goes back where it started (a held order's release then resumes there). In
    that order: killed between the two writes, the order is held with its void still claimed (a
    void asked again finishes it), never back in the flow with the hold lost -- an order whose
    label an operator asked to void would go on to be confirmed."""
    back = PackageState(package.voided_from) if package.voided_from else PackageState.LABELED
    after = _NEXT_STEP[cause]
    if not ends_elsewhere(record, back):
        if cause in (VoidRefusal.SCANNED, VoidRefusal.ERP):
            after += f"; {CONFIRMED_ON_AMAZON}"
    elif cause in _END_IT:
        after += f"{_END_IT[cause]} end the order: orders void {record.order_id} --cancelled-elsewhere"
    outcome = hold(rt, record.order_id, HoldReason.VOID_REFUSED,
                   f"order {record.order_id}: the label was to be voided, but {why}; {after}")
    rt.ledger.advance(package, PackageState.VOIDING, back,
                      order_state=order_state_of(back), error=why[:500])
    return outcome
