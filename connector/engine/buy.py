"""Stage 3, buy: PLANNED -> LABEL_CLAIMED -> (label created) -> LABELED.

A label costs money, so:

* it is bought only after its claim (the package in LABEL_CLAIMED with its idempotency key) is
  committed;
* coming back to a claimed package -- after a crash, a timeout, a reset -- the carrier is asked
  by reference (``find_by_reference``) before anything is bought again; a lookup that fails or is
  refused buys nothing, and one that finds nothing buys again only where the carrier's lookup is
  trusted to show a label just bought (``Carrier.trusts_empty_lookup``, ``empty_lookup`` setting);
* the label is bought for the package's stored plan (parcel, IOSS number), never recomputed;
* a claim whose order Amazon has since cancelled or shows shipped, or whose buyer asked to
  cancel, buys nothing more: the carrier is asked by reference, and a person decides;
* a carrier that refuses the configured credentials unmistakably (``CredentialsRefusedError``)
  refuses every order alike: one alert for the carrier, and the orders wait for the fix. The
  claim is given back (the package PLANNED again, same reference) only when that refusal was the
  claim's one call; after an earlier call that lost its answer it stays, to be looked up first.
"""
from __future__ import annotations

import logging
import traceback
from datetime import timedelta

from ..catalog import shown_sku
from ..files import write_atomically
from ..fx import FxError
from ..holds import HoldReason
from ..kit.carrier import (
    Carrier,
    CredentialsRefusedError,
    DuplicateReferenceError,
    PermanentCarrierError,
    TransientCarrierError,
)
from ..ledger import OrderRecord, OrderState, Package, PackageChange, PackageState
from ..model import FulfillmentStatus, Order, Shipment, ShipmentRequest, utcnow
from ..ratelimit import QuotaWaitInterrupted
from ..rules import RulesError
from .carrier_calls import backoff, credentials_accepted, credentials_refused, retry_safe, shipment_of, timed
from .crashpoints import crashpoint
from .outcome import Outcome, defer, hold, their_words, wait
from .plan import planned_parcel
from .runtime import Runtime
from .verify import confirms_itself
from .warehouses import planned_warehouse

log = logging.getLogger("connector.engine")


def build_request(rt: Runtime, order: Order, package: Package) -> ShipmentRequest:
    """The carrier request for a planned package, from the warehouse it was planned from
    (KeyError, RulesError, FxError: no plan; WarehouseGone, a RulesError: its warehouse is no
    longer configured)."""
    assert order.ship_to is not None
    warehouse = planned_warehouse(rt.config, package.plan)
    quantities = {i["order_item_id"]: i["quantity"] for i in package.items}
    parcel, ioss = planned_parcel(rt, order, package.plan, quantities)
    return ShipmentRequest(reference=package.idempotency_key, order_id=order.order_id, site=order.site,
                           service=package.service, ship_from=warehouse.address, ship_to=order.ship_to,
                           parcel=parcel, ioss_number=ioss, account=order.account,
                           marketplace_id=order.marketplace_id)


def carrier_gone(rt: Runtime, order: Order, package: Package) -> Outcome:
    """Hold an order whose package's carrier is no longer configured or installed."""
    message = (f"order {order.order_id}: carrier {package.carrier!r} is no longer configured or installed; "
               f"a label may exist there under {package.idempotency_key}: check it before releasing")
    if package.state == PackageState.LABEL_CLAIMED:  # nothing known bought: planning again is possible
        message += " (if none exists, release with --replan to plan the order again with another carrier)"
    return hold(rt, order.order_id, HoldReason.CARRIER_UNAVAILABLE, message)


def buy(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    carrier = rt.carriers.get(package.carrier)
    if carrier is None:
        return carrier_gone(rt, order, package)
    if package.state == PackageState.LABEL_CLAIMED and _no_label_wanted(rt, record, package):
        return _settle_claim(rt, record, package, carrier)
    if package.state == PackageState.PLANNED and record.cancel_request_stands:
        return hold(rt, order.order_id, HoldReason.BUYER_CANCEL_REQUESTED,
                    f"order {order.order_id}: the buyer asked to cancel before the label was bought")
    if order.ship_to is None:  # purged (held, or unshipped past the retention), then released
        return _without_address(rt, record, package, carrier)
    try:  # before the claim: a claim is followed by a call to the carrier, but for a crash
        request = build_request(rt, order, package)
    except KeyError as exc:
        return hold(rt, order.order_id, HoldReason.UNKNOWN_SKU,
                    f"order {order.order_id}: SKU {shown_sku(exc.args[0])} left the catalog after planning")
    except (RulesError, FxError) as exc:
        return hold(rt, order.order_id, HoldReason.PLAN_UNAVAILABLE,
                    f"order {order.order_id}: package {package.package_ref} has no stored plan and the "
                    f"site rules cannot give it one now: {exc}")
    fresh = False
    if package.state == PackageState.PLANNED:
        package = rt.ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                                    order_state=OrderState.LABEL_CLAIMED)
        crashpoint("after_claim")
        fresh = True
    shipment, last_error, how = None, "", "bought"
    for attempt in range(rt.engine.carrier_attempts):
        first_call = fresh and attempt == 0  # nothing was asked of the carrier for this claim yet
        try:
            if not first_call:  # an earlier call may have bought it: ask first
                try:
                    shipment = timed(package.carrier, "find_by_reference",
                                     lambda: carrier.find_by_reference(package.idempotency_key))
                except PermanentCarrierError as exc:  # the lookup did not look: buy nothing, a person checks
                    return _lookup_refused(rt, record, package, exc,
                                           "after an earlier call for it lost its answer")
                except _CARRIER_ANSWERS:
                    raise
                except Exception as exc:  # noqa: BLE001 - the plugin's bug, or a lookup it lacks
                    return _lookup_broken(rt, record, package, exc,
                                          "after an earlier call for it lost its answer")
                if shipment is not None:
                    rt.counters.add("labels_recovered")
                    how = "found (an earlier call bought it)"
                    break
                if getattr(carrier, "trusts_empty_lookup", True) is False:  # empty_lookup: hold
                    return hold(rt, order.order_id, HoldReason.LABEL_UNCERTAIN,
                                f"order {order.order_id}: {package.carrier} shows no label under "
                                f"{package.idempotency_key} after an earlier call for it lost its answer, "
                                f"and carriers.{package.carrier}.empty_lookup is 'hold': its lookup may not "
                                "show a label just bought" + _check_carrier(package, _UNTRUSTED))
            shipment = timed(package.carrier, "create_shipment", lambda: carrier.create_shipment(request))
            crashpoint("after_create_call")
            rt.counters.add("labels_bought")
            break
        except DuplicateReferenceError:
            shipment, stopped = _look_up(rt, record, package, carrier,
                                         "after it said the reference was taken")
            if stopped is not None:
                return stopped
            if shipment is None:
                return hold(rt, order.order_id, HoldReason.CARRIER_DUPLICATE_UNRESOLVED,
                            f"order {order.order_id}: {package.carrier} says reference "
                            f"{package.idempotency_key} exists but cannot find it" + _check_carrier(package))
            rt.counters.add("labels_recovered")
            how = "found (the carrier already held the reference)"
            break
        except CredentialsRefusedError as exc:  # the account's, not the order's: nothing was created
            return _await_credentials(rt, record, package, exc, give_back=first_call)
        except PermanentCarrierError as exc:
            if not first_call:  # an earlier call may have bought it: the claim stays, a person checks
                return hold(rt, order.order_id, HoldReason.LABEL_UNCERTAIN,
                            f"order {order.order_id}: {package.carrier} refused the shipment "
                            f"({their_words(order.ship_to, exc)}) after "
                            "an earlier call for it lost its answer" + _check_carrier(package))
            # nothing can exist under the reference: the claim is given up, and the order held for
            # the refusal in the same transaction (killed between them, it would be planned again)
            given_up = PackageChange(package, PackageState.LABEL_CLAIMED, PackageState.FAILED,
                                     order_state=OrderState.NEW,
                                     fields={"error": their_words(order.ship_to, exc)[:500]})
            outcome = hold(rt, order.order_id, HoldReason.CARRIER_REJECTED,
                           f"order {order.order_id}: {package.carrier} refused the shipment: "
                           f"{their_words(order.ship_to, exc)}", change=given_up)
            crashpoint("after_create_refused")
            return outcome
        except TransientCarrierError as exc:
            last_error = f"{package.carrier}: {their_words(order.ship_to, exc)}"
            backoff(attempt)
    if shipment is None:  # the reference, for a person should its retries run out
        return defer(rt, record, f"{last_error or 'carrier did not answer'} (label reference "
                                 f"{package.idempotency_key})")
    if shipment.status == "cancelled":  # found, but someone cancelled it at the carrier meanwhile
        return hold(rt, order.order_id, HoldReason.LABEL_UNCERTAIN,
                    f"order {order.order_id}: {package.carrier} shows the label under "
                    f"{package.idempotency_key} as cancelled (cancelled there, not by this daemon); "
                    "release the order with --replan to plan it again under a new reference")
    _record_label(rt, package, shipment)
    crashpoint("after_create")
    credentials_accepted(rt, package.carrier)  # it answered with a label: an alert that it refused is over
    log.info("order %s: label %s %s at %s %s, tracking %s", order.order_id, package.package_ref,
             how, package.carrier, package.service,
             shipment.tracking_number or "(to come)")
    for note in shipment.notes:  # e.g. the carrier turned a pickup into a drop-off
        log.warning("order %s: %s says about label %s: %s", order.order_id, package.carrier,
                    package.package_ref, their_words(order.ship_to, note))
    return Outcome.PROGRESS


# The same request was refused, so the call whose answer was lost was most likely refused too; but
# a carrier that refuses a taken reference with a plain error (one its plugin does not recognise
# as a duplicate) may hold a label bought by that call, which its lookup does not show yet. Planning
# again under a new reference would then buy a second label: only a person who checked may say so.
_CHECK_CARRIER = ("; a label may exist under {reference}. A release looks it up at {carrier} "
                  "again{then_release}; once you have checked that {carrier} holds none under that "
                  "reference, or cancelled it there, release the order with --replan {then_replan}")
_BUY_AGAIN = (" and asks for the label again under that same reference if none is found",
              "to plan it again under a new reference")
_CANCELLED = (" (a label found is voided)", "to give the claim up: the order then ends cancelled")
_SHIPPED = (" (a label found is kept, for you to void)", "to give the claim up: nothing is bought for it")
_UNTRUSTED = (" (a label found is kept; if none is found, the order is held again)",
              "to plan it again under a new reference")


def _check_carrier(package: Package, then: tuple[str, str] = _BUY_AGAIN) -> str:
    return _CHECK_CARRIER.format(carrier=package.carrier, reference=package.idempotency_key,
                                 then_release=then[0], then_replan=then[1])


def _no_label_wanted(rt: Runtime, record: OrderRecord, package: Package) -> bool:
    """Since its label was claimed, Amazon cancelled the order, shows it shipped outside the
    daemon, or the buyer asked to cancel it: a second call must not buy a label for it. (A label
    that confirms itself marks the order shipped: there the shipment may be our own.)"""
    status = record.order.status
    return (status == FulfillmentStatus.CANCELLED or record.cancel_request_stands
            or (status == FulfillmentStatus.SHIPPED and not confirms_itself(rt, package)))


def _look_up(rt: Runtime, record: OrderRecord, package: Package, carrier: Carrier,
             when: str) -> tuple[Shipment | None, Outcome | None]:
    """The carrier's label under the claim's reference (None: it shows none), or, when the lookup
    failed, what the step does instead: try later (transient), or hold for a person (refused: it
    did not look, so nothing may be bought on its word)."""
    try:
        return retry_safe(rt, package.carrier, "find_by_reference",
                          lambda: carrier.find_by_reference(package.idempotency_key)), None
    except TransientCarrierError as exc:
        return None, defer(rt, record, f"{package.carrier}: lookup of label reference "
                                       f"{package.idempotency_key}: {their_words(record.order.ship_to, exc)}")
    except PermanentCarrierError as exc:
        return None, _lookup_refused(rt, record, package, exc, when)
    except _CARRIER_ANSWERS:  # (here only a stop while it waited for quota: the others are above)
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's bug, or a lookup it lacks
        return None, _lookup_broken(rt, record, package, exc, when)


def _without_address(rt: Runtime, record: OrderRecord, package: Package, carrier: Carrier) -> Outcome:
    """The buyer's address was purged (its retention ran out while the order was held, or waited
    unshipped) and the order was released: nothing can be bought for it. A claim may have bought a
    label already: the carrier is asked by reference, which needs no address, and a label it shows
    is recorded (the next step holds the order rather than keep a new file of the buyer's address:
    fetch_label)."""
    order_id, claimed = record.order_id, package.state == PackageState.LABEL_CLAIMED
    if claimed:
        shipment, stopped = _look_up(rt, record, package, carrier, "for an order whose address was purged")
        if stopped is not None:
            return stopped
        if shipment is not None and shipment.status != "cancelled":
            _record_label(rt, package, shipment)
            log.info("order %s: label %s found at %s under %s (the buyer's address was purged)",
                     order_id, package.package_ref, package.carrier, package.idempotency_key)
            return Outcome.PROGRESS
        found = (f"; {package.carrier} shows " + ("it cancelled" if shipment is not None else "none")
                 + f" under {package.idempotency_key}")
    return hold(rt, order_id, HoldReason.ADDRESS_PURGED,
                f"order {order_id}: the buyer's address was purged (ledger.pii_retention_days), "
                "so no label can be bought for it" + (found if claimed else "")
                + ". Ship it outside the daemon, or cancel it in Seller Central")


def _record_label(rt: Runtime, package: Package, shipment: Shipment) -> None:
    """The claim's label exists at the carrier (bought now, or found by reference): LABEL_CREATED."""
    change = _label_found(package, shipment)
    rt.ledger.advance(change.package, change.expect, change.new, **change.fields)


def _label_found(package: Package, shipment: Shipment) -> PackageChange:
    """What :func:`_record_label` records, for a hold to record with it."""
    return PackageChange(package, PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED,
                         fields={"carrier_shipment_id": shipment.carrier_shipment_id,
                                 "tracking_number": shipment.tracking_number or ""})


# What a carrier call may raise as the carrier's answer (or a stop while it waited for quota); any
# other exception is the plugin's failure.
_CARRIER_ANSWERS = (TransientCarrierError, PermanentCarrierError, QuotaWaitInterrupted)


def _lookup_broken(rt: Runtime, record: OrderRecord, package: Package, exc: Exception, when: str) -> Outcome:
    """The plugin's lookup by reference raised what no carrier answer is: a bug, or a lookup it does
    not implement (NotSupported). It did not look, so nothing may be bought on its word; the claim
    is held for a person at once. Retried instead, it would end ``retries_exhausted`` with an
    "internal error", and a release of that with --replan would buy a second label."""
    trace = "".join(traceback.format_exception(exc))  # a plugin's words may quote the address
    log.error("order %s: the %s plugin's find_by_reference failed\n%s", record.order_id, package.carrier,
              their_words(record.order.ship_to, trace).rstrip())
    return hold(rt, record.order_id, HoldReason.LABEL_UNCERTAIN,
                f"order {record.order_id}: the {package.carrier} plugin could not look up label reference "
                f"{package.idempotency_key} ({type(exc).__name__}: {their_words(record.order.ship_to, exc)}) "
                f"{when}" + _check_carrier(package))


def _lookup_refused(rt: Runtime, record: OrderRecord, package: Package, exc: Exception, when: str) -> Outcome:
    """The lookup by reference was refused: it did not look, so nothing may be bought on its word.
    Refused for the credentials, it is asked again once they are fixed (the claim stays)."""
    if isinstance(exc, CredentialsRefusedError):
        return _await_credentials(rt, record, package, exc, give_back=False)
    return hold(rt, record.order_id, HoldReason.LABEL_UNCERTAIN,
                f"order {record.order_id}: {package.carrier} refused the lookup of label reference "
                f"{package.idempotency_key} ({their_words(record.order.ship_to, exc)}) {when}"
                + _check_carrier(package))


def _await_credentials(rt: Runtime, record: OrderRecord, package: Package, exc: CredentialsRefusedError,
                       *, give_back: bool) -> Outcome:
    """The carrier refused the configured credentials before it acted on the call: every order
    for it would be refused alike, so its alert is raised (once, as for a refused quote) and the
    order waits for the fix -- without spending its attempts, asked again as rarely as the retries
    thin out to -- instead of being held one by one. ``give_back``: that refused call was the only
    one made under the claim, so no label exists under its reference: the package is PLANNED again,
    to be bought under the same reference once the carrier takes the credentials. Otherwise an
    earlier call lost its answer and may have bought it: the claim stays, and the next try looks
    the reference up before anything is bought."""
    if give_back:
        rt.ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.PLANNED,
                          order_state=OrderState.PLANNED)
    refusal = their_words(record.order.ship_to, exc)
    credentials_refused(rt, package.carrier, refusal)
    kept = "claim given back" if give_back else "label claim kept, to be looked up first"
    return wait(rt, record, f"{package.carrier}: credentials refused: {refusal} (label reference "
                            f"{package.idempotency_key}, {kept})",
                since=record.order.created or utcnow(), patience=timedelta.max)


def _settle_claim(rt: Runtime, record: OrderRecord, package: Package, carrier: Carrier) -> Outcome:
    """A claimed label the order no longer wants (see :func:`_no_label_wanted`): buy nothing. If
    the earlier call did buy it, the label is kept on record: the next step voids it for a
    cancelled order, and holds it unconfirmed for a cancel request; an order shipped elsewhere is
    held for a person to void it. If the carrier shows none, that call may still have bought one its
    lookup does not show yet (a claim outlives its step only when a call lost its answer, or the
    process died at the call), so a person checks -- except for a buyer's request, held as such
    (a release looks the reference up before buying)."""
    order_id, status = record.order_id, record.order.status
    shipment, stopped = _look_up(rt, record, package, carrier, "while the order no longer wants the label")
    if stopped is not None:
        return stopped
    if shipment is not None and shipment.status == "cancelled":
        shipment = None  # cancelled at the carrier already: nothing to record or void
    if shipment is None:
        if status == FulfillmentStatus.CANCELLED:
            return hold(rt, order_id, HoldReason.LABEL_UNCERTAIN,
                        f"order {order_id}: Amazon cancelled the order while its label was being bought "
                        f"and {package.carrier} shows no label for it" + _check_carrier(package, _CANCELLED))
        if status == FulfillmentStatus.SHIPPED:
            return hold(rt, order_id, HoldReason.LABEL_UNCERTAIN,
                        f"order {order_id}: Amazon shows the order shipped outside this daemon while its "
                        f"label was being bought, and {package.carrier} shows no label for it"
                        + _check_carrier(package, _SHIPPED))
        return hold(rt, order_id, HoldReason.BUYER_CANCEL_REQUESTED,
                    f"order {order_id}: the buyer asked to cancel while the label was being bought; "
                    f"{package.carrier} shows no label under {package.idempotency_key}. Cancel it in Seller "
                    "Central, or release it to ship anyway")
    if status == FulfillmentStatus.SHIPPED:  # the label recorded and the order held, in one transaction
        number = shipment.tracking_number or "no tracking number yet"
        outcome = hold(rt, order_id, HoldReason.SHIPPED_ELSEWHERE,
                       f"order {order_id} was marked shipped on Amazon while its label was being bought "
                       f"here; {package.carrier} holds that label ({number}, reference "
                       f"{package.idempotency_key}): void it with orders void {order_id} unless a second "
                       "parcel is wanted", change=_label_found(package, shipment))
    else:  # the next step voids it (Amazon cancelled the order) or holds it unconfirmed (a cancel request)
        _record_label(rt, package, shipment)
        outcome = Outcome.PROGRESS
    crashpoint("after_claim_settled")
    return outcome


def fetch_label(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    """LABEL_CREATED -> LABELED: the tracking number (when assigned late) and the PDF on disk."""
    order = record.order
    carrier = rt.carriers.get(package.carrier)
    if carrier is None:
        return carrier_gone(rt, order, package)
    if record.pii_purged:  # a label found after the purge: no new file of the buyer's address is kept
        return hold(rt, order.order_id, HoldReason.ADDRESS_PURGED,
                    f"order {order.order_id}: the buyer's data was purged (ledger.pii_retention_days), so "
                    f"the label {package.carrier} holds under {package.idempotency_key} is not fetched "
                    f"here; void it (orders void {order.order_id}), or print it at {package.carrier} and "
                    "confirm the shipment by hand")
    try:
        if not package.tracking_number:  # some carriers assign the number after creation
            found = retry_safe(rt, package.carrier, "find_by_reference",
                               lambda: carrier.find_by_reference(package.idempotency_key))
            if found is None or not found.tracking_number:
                return _await_number(rt, record, package)
            package = rt.ledger.advance(package, PackageState.LABEL_CREATED, PackageState.LABEL_CREATED,
                                        tracking_number=found.tracking_number)
        spec = rt.carrier_specs[package.carrier]
        if not spec.accepts_tracking_number(package.tracking_number, carrier):
            return hold(rt, order.order_id, HoldReason.INVALID_TRACKING_NUMBER,
                        f"order {order.order_id}: {package.carrier} returned tracking number "
                        f"{package.tracking_number}, which Amazon would reject for {spec.label}; "
                        f"the label exists (reference {package.idempotency_key})")
        pdf = retry_safe(rt, package.carrier, "get_label", lambda: carrier.get_label(shipment_of(package)))
    except TransientCarrierError as exc:
        return defer(rt, record, f"{package.carrier}: {their_words(order.ship_to, exc)}")
    except PermanentCarrierError as exc:
        return hold(rt, order.order_id, HoldReason.LABEL_UNAVAILABLE,
                    f"order {order.order_id}: {package.carrier} will not give the label: "
                    f"{their_words(order.ship_to, exc)}")
    if not pdf.startswith(b"%PDF-"):
        return defer(rt, record, f"{package.carrier} returned a label that is not a PDF")
    try:
        path = write_atomically(rt.labels_dir / f"{order.order_id}-{package.package_ref}.pdf", pdf)
    except OSError as exc:  # a full or read-only disk, not the order: wait, without spending its retries
        return _await_disk(rt, record, package, f"cannot write its label under {rt.labels_dir}: "
                                                f"{exc.strerror or exc}")
    package = rt.ledger.advance(package, PackageState.LABEL_CREATED, PackageState.LABELED,
                                order_state=OrderState.LABELED, label_path=str(path))
    crashpoint("after_label")
    return Outcome.PROGRESS


def _await_disk(rt: Runtime, record: OrderRecord, package: Package, why: str) -> Outcome:
    """The label is bought but its file cannot be written: every order would fail alike, so none
    spends its retries on it."""
    log.error("order %s: %s", record.order_id, why)
    return _await(rt, record, package, why) or hold(
        rt, record.order_id, HoldReason.LABEL_UNAVAILABLE,
        f"order {record.order_id}: {why}, for {_patience(rt)} after the label was bought (reference "
        f"{package.idempotency_key}); free the disk, then release the order")


def _await_number(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    """The label is bought and its carrier assigns the tracking number later (YunExpress's
    TrackType 2): waiting for it is not a failure."""
    return _await(rt, record, package, f"{package.carrier} has not assigned a tracking number yet") or hold(
        rt, record.order_id, HoldReason.TRACKING_NUMBER_LATE,
        f"order {record.order_id}: {package.carrier} has assigned no tracking number {_patience(rt)} after "
        f"the label was bought (reference {package.idempotency_key}); ask the carrier, then release the "
        "order to ask again")


def _await(rt: Runtime, record: OrderRecord, package: Package, why: str) -> Outcome | None:
    """Wait for what comes late or clears by itself, asking again less often as time goes by, for
    ``engine.tracking_number_wait_hours`` after the label was bought; None after that: the caller
    holds the order, and a person decides."""
    bought = package.updated_at or package.created_at or utcnow()  # it entered LABEL_CREATED then
    return wait(rt, record, why, since=bought, patience=timedelta(hours=rt.engine.tracking_number_wait_hours))


def _patience(rt: Runtime) -> str:
    hours = rt.engine.tracking_number_wait_hours
    return f"{hours:g} h" if hours >= 1 else f"{hours * 60:.3g} min"
