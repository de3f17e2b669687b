"""The ledger contract: states, records and the store interface the engine drives.

Every transition is a compare-and-set committed before the next external call: a killed process
restarts and carries on from the last committed state (the README's "How an order flows"; why:
docs/known-problems.md#double-labels).

Order states follow the flow in the README ("How an order flows"). An order ships as one or more
packages; each package has its own state, and the order's state moves with the package currently
in flight, in the same transaction.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..events import Event
from ..holds import HoldReason
from ..model import Order


class OrderState(str, enum.Enum):
    NEW = "NEW"                       # ingested; nothing planned yet
    HELD = "HELD"                     # cannot proceed; hold_reason says why; a human releases it
    PLANNED = "PLANNED"               # carrier + service chosen, package row written
    LABEL_CLAIMED = "LABEL_CLAIMED"   # idempotency claim committed; the carrier may be called
    LABELED = "LABELED"               # tracking number known, label file on disk
    CONFIRMING = "CONFIRMING"         # confirmShipment claim committed; Amazon may be called
    CONFIRMED = "CONFIRMED"           # Amazon answered 204 (not yet proof)
    VERIFIED = "VERIFIED"             # reading the order back shows the package: shipped
    ISSUED = "ISSUED"                 # the label went to the ERP, which confirms it (or not) itself
    # after the confirmation, the order follows its parcel (engine/track.py)
    IN_TRANSIT = "IN_TRANSIT"                 # the carrier scanned it
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    DELIVERY_FAILED = "DELIVERY_FAILED"       # an attempt failed; the carrier may try again
    RETURNING = "RETURNING"
    RETURNED = "RETURNED"
    LOST = "LOST"                     # no scan when one was due (polling goes on, slower)
    VOIDING = "VOIDING"               # void claim committed; the carrier may be asked to cancel
    VOIDED = "VOIDED"                 # the label was cancelled at the carrier (after Amazon cancelled)
    CANCELLED = "CANCELLED"           # Amazon cancelled the order before we shipped


class PackageState(str, enum.Enum):
    PLANNED = "PLANNED"
    LABEL_CLAIMED = "LABEL_CLAIMED"   # about to call / called carrier.create_shipment
    LABEL_CREATED = "LABEL_CREATED"   # the carrier holds a shipment; tracking number or file may be pending
    LABELED = "LABELED"
    CONFIRMING = "CONFIRMING"
    CONFIRMED = "CONFIRMED"
    VERIFIED = "VERIFIED"
    ISSUED = "ISSUED"                 # bought for an ERP that does not want it confirmed here; tracked
    IN_TRANSIT = "IN_TRANSIT"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    RETURNING = "RETURNING"
    RETURNED = "RETURNED"
    LOST = "LOST"
    VOIDING = "VOIDING"               # about to call / called carrier.cancel
    VOIDED = "VOIDED"                 # cancelled at the carrier; refund recorded
    FAILED = "FAILED"                 # the carrier refused; no label exists for this package


# Order states the engine still has work for (HELD, CANCELLED and everything after VERIFIED
# are at rest for the order loop; the tracking poller follows shipped parcels on its own).
ACTIVE_ORDER_STATES = (OrderState.NEW, OrderState.PLANNED, OrderState.LABEL_CLAIMED,
                       OrderState.LABELED, OrderState.CONFIRMING, OrderState.CONFIRMED, OrderState.VOIDING)

# Package states the tracking poller follows (VERIFIED: confirmed on Amazon, not scanned yet;
# ISSUED: handed to the ERP unconfirmed, not scanned yet).
TRACKED_PACKAGE_STATES = (PackageState.VERIFIED, PackageState.ISSUED, PackageState.IN_TRANSIT,
                          PackageState.OUT_FOR_DELIVERY, PackageState.DELIVERY_FAILED, PackageState.RETURNING,
                          PackageState.LOST)
# Where a parcel's life ends.
TERMINAL_PACKAGE_STATES = (PackageState.DELIVERED, PackageState.RETURNED, PackageState.VOIDED,
                           PackageState.FAILED)
# Labels bought and not voided: the carrier holds a shipment (LABEL_CREATED on, VOIDING included: its
# void is not done). In LABEL_CREATED the label's file is not written yet (nor, at some carriers, its
# tracking number known): a full disk, say, keeps it there until a later step writes it.
BOUGHT_PACKAGE_STATES = (PackageState.LABEL_CREATED, PackageState.LABELED, PackageState.CONFIRMING,
                         PackageState.CONFIRMED, PackageState.VERIFIED, PackageState.ISSUED,
                         PackageState.IN_TRANSIT, PackageState.OUT_FOR_DELIVERY, PackageState.DELIVERED,
                         PackageState.DELIVERY_FAILED, PackageState.RETURNING, PackageState.RETURNED,
                         PackageState.LOST, PackageState.VOIDING)
# Orders that ended with nothing shipped: no ship-by to warn about, no address to keep.
NOTHING_TO_SHIP_STATES = (OrderState.CANCELLED, OrderState.VOIDED)
# Orders whose parcel is (or was) on its way: confirmed and read back on Amazon.
SHIPPED_ORDER_STATES = (OrderState.VERIFIED, OrderState.IN_TRANSIT, OrderState.OUT_FOR_DELIVERY,
                        OrderState.DELIVERED, OrderState.DELIVERY_FAILED, OrderState.RETURNING,
                        OrderState.RETURNED, OrderState.LOST)


@dataclass
class OrderRecord:
    order: Order                      # ship_to is decrypted when PII is present, else None
    state: OrderState
    hold_reason: str = ""             # machine-readable, e.g. "unknown_sku"
    hold_message: str = ""            # for a human; never contains PII
    held_from: OrderState | None = None  # state to return to on release
    attempts: int = 0                 # consecutive transient failures of the current step
    next_attempt_at: datetime | None = None
    pii_purged: bool = False
    updated_at: datetime | None = None
    waived: frozenset[str] = frozenset()  # hold reasons an operator released it from, to go on anyway

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def cancel_request_stands(self) -> bool:
        """The buyer asked to cancel, and no operator released the order to ship anyway."""
        waived = HoldReason.BUYER_CANCEL_REQUESTED.value in self.waived
        return self.order.buyer_cancel_requested and not waived


@dataclass
class Package:
    id: int
    order_id: str
    package_ref: str                  # confirmShipment packageReferenceId: positive numeric string
    idempotency_key: str              # the carrier's customer reference, unique forever
    carrier: str
    service: str
    state: PackageState
    items: list[dict[str, Any]] = field(default_factory=list)  # [{"order_item_id", "quantity"}]
    carrier_shipment_id: str = ""
    tracking_number: str = ""
    label_path: str = ""
    error: str = ""
    confirm_attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    shipped_at: datetime | None = None  # the shipDate sent to Amazon (kept stable across re-sends)
    plan: dict[str, Any] = field(default_factory=dict)  # what the label is bought for (engine/plan.py)
    confirmed_at: datetime | None = None  # when Amazon accepted the confirmation
    # tracking (engine/track.py)
    first_scan_at: datetime | None = None
    last_scan_at: datetime | None = None
    delivered_at: datetime | None = None
    scans: int = 0                     # carrier scans seen (info-received notices do not count)
    next_track_at: datetime | None = None
    track_failures: int = 0            # consecutive failed tracking calls
    # voiding (engine/void.py)
    voided_at: datetime | None = None
    voided_from: str = ""              # the state a void started from (a refused void returns to it)
    refund: dict[str, Any] = field(default_factory=dict)  # what the void gives back, {"amount", "currency"}
    # data protection (engine/purge.py): set when the order's buyer data was purged; the label file
    # is deleted then and never served or printed again
    label_erased_at: datetime | None = None
    # verification (engine/verify.py): Amazon's carrier name for the package when its read-back
    # files it under another carrier than the code sent ("Other", say); None: as sent, or not
    # judged. Such tracking is not valid tracking (engine/vtr.py)
    filed_as: str | None = None


@dataclass(frozen=True)
class PackageChange:
    """A package change as :meth:`Ledger.advance` makes it (its arguments), for :meth:`Ledger.hold`
    to make in the transaction that holds the order: a step's decision that both records what
    happened to the package and holds the order is committed whole or not at all."""

    package: Package
    expect: PackageState
    new: PackageState
    order_state: OrderState | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingRecord:
    """One stored tracking event of a package (the carrier's event, normalised)."""

    package_id: int
    at: datetime
    status: str
    code: str = ""
    location: str = ""
    description: str = ""
    description_en: str = ""


@dataclass(frozen=True)
class Alert:
    """Something a person must look at (engine/alerts.py). One per (kind, subject) while open."""

    kind: str
    subject: str
    message: str
    details: dict[str, Any]
    raised_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None


def order_state_of(package: PackageState) -> OrderState:
    """The state a package in ``package`` puts its order in: the same name, but for a label bought
    whose tracking number is still due (LABEL_CREATED), which leaves the order LABEL_CLAIMED."""
    return OrderState.LABEL_CLAIMED if package is PackageState.LABEL_CREATED else OrderState(package.value)


def unstorable_text(text: str) -> str:
    """Why the ledger cannot store ``text``, or "": a lone surrogate (JSON allows it, UTF-8 cannot
    hold it) or a NUL (JSON allows it, PostgreSQL's text refuses it; SQLite would store it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text that is not valid Unicode"
    return "text holding a NUL character" if "\x00" in text else ""


class StaleStateError(Exception):
    """A compare-and-set found the row in another state (someone else moved it)."""


class OrderFinishedError(StaleStateError, ValueError):
    """The order ended (cancelled or voided) before it could be held: a step that was about to hold
    it lost a race and has nothing left to do (a StaleStateError); for a person, a refusal (a
    ValueError whose message says why)."""


class CorruptRecordError(ValueError):
    """An order's stored data this code cannot read (a hand edit, a restore gone wrong, a bug): that
    order is held, the others go on. The message names the order and what is wrong, never buyer
    data (which is stored apart, encrypted); ``order_id`` and ``package_id`` name the row alone."""

    def __init__(self, message: str, *, order_id: str = "", package_id: int | None = None) -> None:
        super().__init__(message)
        self.order_id, self.package_id = order_id, package_id


class LedgerInUse(Exception):
    """Another daemon works on this ledger, and the store cannot share it (SQLite)."""


class LedgerUrlError(ValueError):
    """A ledger URL no store can take, or one libpq cannot read. The message never quotes the URL's
    password."""


class LedgerUnreachable(ConnectionError):
    """The ledger's store cannot be reached or opened (no PostgreSQL server, a file that will not
    open). A ConnectionError of its own: a carrier plugin's raw ConnectionResetError is not the
    ledger's going away."""


class Ledger:
    """Interface of a ledger store. :mod:`connector.ledger.sqlite` is the embedded default."""

    # -- lifecycle ------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply pending migrations; return the schema version now in force."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def release_connection(self) -> None:
        """The calling thread is about to wait (for Amazon, for quota, for its next poll): a store
        with connections may give its connection back to be used by another thread meanwhile."""

    @contextmanager
    def sharing_connections(self) -> Iterator[None]:
        """The calling thread shares connections with others of its kind (see the SQL store)."""
        yield

    def hold_daemon_lock(self) -> None:
        """Be the only daemon driving orders on this ledger until :meth:`close`, or raise
        :class:`LedgerInUse`. A store that workers share (PostgreSQL: leases) holds nothing."""

    # -- orders ---------------------------------------------------------------------------
    def upsert_order(self, order: Order) -> bool:
        """Insert an unknown order as NEW (True) or refresh a known one (False).

        Refreshing updates the non-PII data and the address only while the order is NEW or HELD
        (a label already bought keeps the address it was bought for); it never moves the state.
        A copy older than the stored one (an earlier ``last_updated``) changes nothing.
        """
        raise NotImplementedError

    def get_order(self, order_id: str, *, with_pii: bool = True) -> OrderRecord | None:
        """The order; without ``with_pii`` its buyer address is not read (``ship_to`` None), so a
        job that needs none -- alerts, say -- never fails on an address no key can decrypt."""
        raise NotImplementedError

    def orders(self, states: Iterable[OrderState] | None = None, *, due_before: datetime | None = None,
               limit: int | None = None) -> list[OrderRecord]:
        """Orders in ``states`` (all when None), oldest first; with ``due_before``, only those
        whose ``next_attempt_at`` is empty or not after it."""
        raise NotImplementedError

    def set_order_state(self, order_id: str, expect: Iterable[OrderState], new: OrderState, *,
                        note: str = "") -> None:
        """Compare-and-set the order state (raises StaleStateError); resets attempts."""
        raise NotImplementedError

    def hold(self, order_id: str, reason: str, message: str, *, keep_held: bool = False,
             change: PackageChange | None = None) -> bool:
        """Move any non-final order to HELD, remembering the state to return to. ``reason`` is a
        :class:`connector.holds.HoldReason` value (ValueError for anything else); an order already
        CANCELLED or VOIDED raises :class:`OrderFinishedError`. An order HELD already takes the new
        reason and message -- unless ``keep_held`` and its reason is another one: it then keeps its
        hold, the new reason and message added to its message (False is returned).

        ``change``: a change of one of the order's packages, made first and in the same
        transaction, exactly as :meth:`advance` would make it (its compare-and-set failing raises
        StaleStateError, and nothing is written): a kill never leaves the package changed and the
        order not held. As with :meth:`advance`, the package change is not refused for its order's
        state: for an order that has ended it is committed, and OrderFinishedError raised after."""
        raise NotImplementedError

    def release(self, order_id: str) -> OrderState:
        """Return a HELD order to the state it was held from (NEW if unknown); returns it."""
        raise NotImplementedError

    def give_up_claims(self, order_id: str, note: str) -> tuple[OrderState, list[str]]:
        """Release a HELD order whose hold allows it (``CLAIM_GIVEN_UP_BY_RELEASE``) to NEW, its
        LABEL_CLAIMED packages FAILED with ``note``: planned again, under a new reference. Returns
        NEW and the references given up. In one transaction; StaleStateError when the order is
        not HELD, ValueError when its reason does not allow it or nothing is claimed."""
        raise NotImplementedError

    def defer(self, order_id: str, until: datetime, error: str) -> int:
        """Record a transient failure: attempts += 1, next_attempt_at = until. Returns attempts."""
        raise NotImplementedError

    def clear_deferral(self, order_id: str) -> None:
        """Make the order due now (``orders retry``)."""
        raise NotImplementedError

    # -- packages -------------------------------------------------------------------------
    def plan_package(self, order_id: str, package_ref: str, idempotency_key: str, carrier: str,
                     service: str, items: list[dict[str, Any]],
                     plan: dict[str, Any] | None = None) -> Package:
        """Insert a PLANNED package and move the order NEW -> PLANNED in one transaction.

        ``plan`` (JSON) is what the label will be bought for: the parcel, the IOSS number, the
        requirements digest. It holds no buyer PII and never changes after planning."""
        raise NotImplementedError

    def packages(self, order_id: str) -> list[Package]:
        raise NotImplementedError

    def open_package(self, order_id: str) -> Package | None:
        """The order's package that is not yet VERIFIED or FAILED, if any."""
        raise NotImplementedError

    def advance(self, package: Package, expect: PackageState, new: PackageState,
                order_state: OrderState | None = None, *, events: Iterable[TrackingRecord] = (),
                order_rests_for: timedelta | None = None, **fields: Any) -> Package:
        """Compare-and-set a package's state, update ``fields`` on it, store tracking ``events``
        (an event already stored is skipped) and (optionally) move its order to ``order_state``,
        all in one transaction. Returns the updated package. Setting ``confirm_attempts`` also
        compares the count with ``package``'s (a claim counts from what it read).

        The order's history gets a transition row when the state moves or a field changes, its
        note naming only the fields whose value differs from ``package``'s (a field given its
        current value again is no change). A same-state change of only the polling bookkeeping
        (``next_track_at``, ``track_failures``) writes no row: a tracking poll that found nothing
        new leaves the history as it was.

        ``order_rests_for``: when the order moves to ``order_state``, it is not due again until
        that long after the change, as :meth:`snooze` would leave it (a next step that waits on
        purpose, such as a confirmation's verify grace, costs no transaction of its own)."""
        raise NotImplementedError

    def packages_to_track(self, *, due_before: datetime, shipped_after: datetime,
                          limit: int | None = None) -> list[Package]:
        """Packages in a tracked state, shipped after ``shipped_after`` (older ones are no longer
        followed), whose ``next_track_at`` is empty or not after ``due_before``, longest waiting
        first."""
        raise NotImplementedError

    def tracking_events(self, package_id: int) -> list[TrackingRecord]:
        """The stored events of a package, oldest first."""
        raise NotImplementedError

    # -- alerts -----------------------------------------------------------------------------
    def raise_alert(self, kind: str, subject: str, message: str, details: dict[str, Any]) -> bool:
        """Open (or refresh) the alert for (kind, subject); True when it is new (or re-opened)."""
        raise NotImplementedError

    def resolve_alert(self, kind: str, subject: str) -> bool:
        """Close the open alert for (kind, subject); True when there was one."""
        raise NotImplementedError

    def alerts(self, *, open_only: bool = True, kind: str | None = None) -> list[Alert]:
        """The alerts, oldest first: the open ones (or all), of one ``kind`` (or every kind)."""
        raise NotImplementedError

    # -- the outbox: events and their webhook deliveries ---------------------------------------
    def events(self, *, after: int = 0, limit: int = 100, order_id: str | None = None) -> list[Event]:
        """Events with an id above ``after``, oldest first (written with the change they describe)."""
        raise NotImplementedError

    def enqueue_webhooks(self, endpoint: str, patterns: Sequence[str]) -> int:
        """Queue the events the endpoint subscribes to (``patterns``) that came since its cursor; the
        first call starts the endpoint at the newest event (replay sends older ones). Returns how
        many were queued."""
        raise NotImplementedError

    def event_cursor(self, consumer: str) -> int | None:
        """The last event id ``consumer`` has handled; ``None`` for a consumer never seen."""
        raise NotImplementedError

    def set_event_cursor(self, consumer: str, last_event_id: int) -> None:
        """Move ``consumer``'s cursor to ``last_event_id``; never backwards."""
        raise NotImplementedError

    def skip_events(self, consumer: str) -> None:
        """Move ``consumer``'s cursor past every event settled so far, without reading them."""
        raise NotImplementedError

    def due_webhooks(self, endpoint: str, now: datetime, limit: int = 50
                     ) -> list[tuple[Event, int, datetime]]:
        """(event, attempts so far, since when it is tried: the event's time or its latest replay)
        pending and due, oldest first, never an event of an order whose earlier event for this
        endpoint is still pending (order kept per order id)."""
        raise NotImplementedError

    def webhook_result(self, endpoint: str, event_id: int, *, status: str, delivered: bool,
                       next_attempt_at: datetime | None) -> None:
        """Record an attempt: delivered; or failed and due again at ``next_attempt_at``; or, with
        ``None``, given up (dead letter). A failure is recorded on a pending delivery only, and a
        delivery on a pending or given-up one: another pass may have posted the event meanwhile."""
        raise NotImplementedError

    def replay_webhooks(self, endpoint: str, *, from_event: int = 0, dead_only: bool = False) -> int:
        """Send again (same event ids) the endpoint's delivered and dead events from ``from_event``
        on, or only the dead ones. Returns how many were queued."""
        raise NotImplementedError

    def webhook_counts(self, endpoint: str) -> dict[str, int]:
        """Deliveries per state (pending, delivered, dead) for the endpoint."""
        raise NotImplementedError

    # -- polling --------------------------------------------------------------------------
    def get_watermark(self, account: str) -> datetime | None:
        raise NotImplementedError

    def set_watermark(self, account: str, value: datetime) -> None:
        raise NotImplementedError

    # -- reporting and data protection ---------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Number of orders per state."""
        raise NotImplementedError

    def history(self, order_id: str) -> list[dict[str, Any]]:
        """Transitions of one order: [{"at", "from", "to", "note"}], oldest first."""
        raise NotImplementedError

    def purge_pii(self, order_ids: Iterable[str], *, states: Iterable[OrderState] | None = None) -> int:
        """Erase the encrypted buyer data of these orders (with ``states``, only of those still in
        one of them, asked under the write's lock); returns how many were purged."""
        raise NotImplementedError

    def purge_unshipped_pii(self, order_ids: Iterable[str], *, unshipped: Iterable[OrderState],
                            unbought: Iterable[PackageState], due_before: datetime, reason: str,
                            message: str) -> list[str]:
        """Hold (``reason``, ``message``) and erase the buyer data of those of ``order_ids`` that
        are in ``unshipped``, have no package outside ``unbought`` and whose ship-by (or arrival)
        is at ``due_before`` or before, asked under the write's lock; returns their ids."""
        raise NotImplementedError
