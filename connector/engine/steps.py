"""The steps that move one order along DESIGN section 1, each committed before the next call.

``step(rt, record)`` looks at the order's state and does exactly one piece of work:

    NEW ──plan──► PLANNED ──claim──► LABEL_CLAIMED ──create──► (label created) ──label──► LABELED
    LABELED ──confirm──► CONFIRMED ──verify──► VERIFIED

Safety rules, in the order they matter:

* A label is bought only after its claim (the package row in LABEL_CLAIMED with its idempotency
  key) is committed. Coming back to a claimed package -- after a crash or an ambiguous failure --
  we ask the carrier by reference before buying again.
* confirmShipment is sent only after the CONFIRMING claim is committed; coming back to a
  CONFIRMING package we read the order first and re-send only if Amazon does not show it.
* A 204 is not proof: VERIFIED needs the package (with our tracking number) in getOrder.
* Anything we cannot do is HELD with a machine-readable reason and a message without PII.
"""
from __future__ import annotations

import enum
import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from ..amazon.errors import (
    AlreadyShippedError,
    InvalidInputError,
    SpApiError,
)
from ..amazon.mapping import package_from_api
from ..carriers import (
    DuplicateReferenceError,
    PermanentCarrierError,
    TransientCarrierError,
)
from ..fx import FxError
from ..ledger import OrderRecord, OrderState, Package, PackageState
from ..model import FulfillmentStatus, Order, Shipment, ShipmentRequest, utcnow
from ..rules import RulesError
from .crashpoints import crashpoint
from .runtime import Runtime
from .shopping import build_parcel, order_requirements, shop

log = logging.getLogger("connector.engine")
T = TypeVar("T")


class Outcome(enum.Enum):
    PROGRESS = "progress"  # the state moved: the next step may run now
    REST = "rest"          # nothing more to do (verified, held, cancelled)
    DEFER = "defer"        # a transient problem: try again later


# -- shared helpers ---------------------------------------------------------------------------


def hold(rt: Runtime, order_id: str, reason: str, message: str) -> Outcome:
    rt.ledger.hold(order_id, reason, message)
    rt.counters.add("held")
    log.warning("order %s held: %s: %s", order_id, reason, message)
    rt.host.call_each("mfn_order_held", order_id=order_id, reason=reason, message=message)
    return Outcome.REST


def defer(rt: Runtime, record: OrderRecord, error: str) -> Outcome:
    attempts = record.attempts + 1
    if attempts >= rt.engine_setting("max_attempts"):
        return hold(rt, record.order_id, "retries_exhausted",
                    f"gave up after {attempts} attempts in state {record.state.value}: {error}")
    base = rt.engine_setting("retry_delay_seconds")
    delay = min(base * (2 ** (attempts - 1)), rt.engine_setting("retry_delay_max_seconds"))
    delay = delay * (0.5 + random.random() / 2)  # jitter: spread retries of many orders
    rt.ledger.defer(record.order_id, utcnow() + timedelta(seconds=delay), error)
    log.info("order %s deferred %.1fs (attempt %d): %s", record.order_id, delay, attempts, error)
    return Outcome.DEFER


def _carrier_call(rt: Runtime, carrier_code: str, operation: str, fn: Callable[[], T]) -> T:
    """Run one carrier call and log its outcome and duration (never its payload)."""
    started = time.monotonic()
    outcome = "ok"
    try:
        return fn()
    except Exception as exc:
        outcome = f"{type(exc).__name__}"
        raise
    finally:
        log.info("carrier call %s.%s %s in %.0f ms", carrier_code, operation, outcome,
                 (time.monotonic() - started) * 1000)


def _retry_safe(rt: Runtime, carrier_code: str, operation: str, fn: Callable[[], T]) -> T:
    """Retry an operation that buys nothing (lookups, label downloads) on transient errors."""
    attempts = rt.engine_setting("carrier_attempts")
    for attempt in range(1, attempts + 1):
        try:
            return _carrier_call(rt, carrier_code, operation, fn)
        except TransientCarrierError:
            if attempt == attempts:
                raise
            time.sleep(min(0.2 * 2 ** attempt, 2.0) * random.random())
    raise AssertionError("unreachable")


def _shipment_of(package: Package) -> Shipment:
    return Shipment(carrier=package.carrier, reference=package.idempotency_key,
                    carrier_shipment_id=package.carrier_shipment_id,
                    tracking_number=package.tracking_number or None, service=package.service)


# -- plan --------------------------------------------------------------------------------------


def precheck(rt: Runtime, order: Order) -> tuple[str, str] | None:
    """(reason, message) when the order cannot be shipped as it stands, before any quote."""
    if order.buyer_cancel_requested:
        return ("buyer_cancel_requested", f"order {order.order_id}: the buyer asked to cancel; cancel it "
                "in Seller Central or release it to ship anyway")
    items = [i for i in order.items if i.quantity > 0]
    if not items:
        return "nothing_to_ship", f"order {order.order_id}: every item is already shipped"
    if order.ship_to is None or order.ship_to.missing_fields():
        missing = order.ship_to.missing_fields() if order.ship_to else ["address"]
        return ("address_incomplete", f"order {order.order_id}: Amazon sent no {', '.join(missing)} for "
                "the shipping address (check the app's Direct-to-Consumer Shipping role); it is retried "
                "when Amazon sends the full address")
    unknown = sorted({i.sku for i in items if rt.catalog.get(i.sku) is None})
    if unknown:
        return ("unknown_sku", f"order {order.order_id}: SKU {', '.join(unknown)} is not in the catalog "
                f"({rt.config.data['catalog']}); add it and release the order")
    return None


def plan(rt: Runtime, record: OrderRecord) -> Outcome:
    order = record.order
    if order.status == FulfillmentStatus.CANCELLED:
        rt.ledger.set_order_state(order.order_id, [OrderState.NEW], OrderState.CANCELLED,
                                  note="cancelled on Amazon before a label was bought")
        return Outcome.REST
    blocked = precheck(rt, order)
    if blocked:
        return hold(rt, order.order_id, *blocked)
    items = [i for i in order.items if i.quantity > 0]
    try:
        shopping = shop(rt, order, items)
    except (RulesError, FxError) as exc:
        return hold(rt, order.order_id, "site_rules", f"order {order.order_id}: {exc}")
    chosen = shopping.selection.chosen
    if chosen is None and shopping.unanswered:  # a carrier that did not answer may be the one
        return defer(rt, record, f"no eligible quote yet; no answer from {', '.join(shopping.unanswered)}")
    if chosen is None:
        return hold(rt, order.order_id, "no_eligible_service",
                    f"order {order.order_id} ({order.site}): no carrier service can ship it: "
                    f"{shopping.selection.held_message()}")
    log.info("order %s: %s chosen at %s; %s", order.order_id, chosen.option.label, chosen.cost,
             "; ".join(shopping.requirements.notes))
    carrier, service = chosen.option.carrier, chosen.option.service
    used = set(order.shipped_package_refs) | {p.package_ref for p in rt.ledger.packages(order.order_id)}
    number = 1
    while str(number) in used:
        number += 1
    ref = str(number)
    rt.ledger.plan_package(order.order_id, ref, f"{order.order_id}-{ref}", carrier, service,
                           [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in items])
    return Outcome.PROGRESS


# -- buy and label -------------------------------------------------------------------------------


def build_request(rt: Runtime, order: Order, package: Package) -> ShipmentRequest:
    assert order.ship_to is not None
    parcel = build_parcel(rt, order, {i["order_item_id"]: i["quantity"] for i in package.items})
    try:  # the IOSS number goes to customs only when the site's rules say so (EU, <= 150 EUR)
        ioss = order_requirements(rt, order, parcel).ioss_number
    except (RulesError, FxError):
        ioss = ""
    return ShipmentRequest(reference=package.idempotency_key, order_id=order.order_id, site=order.site,
                           service=package.service, ship_from=rt.ship_from, ship_to=order.ship_to,
                           parcel=parcel, ioss_number=ioss or "", account=order.account,
                           marketplace_id=order.marketplace_id)


def buy(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    carrier = rt.carriers.get(package.carrier)
    if carrier is None:
        return hold(rt, order.order_id, "carrier_unavailable",
                    f"order {order.order_id}: carrier {package.carrier!r} is no longer configured or "
                    "installed; its package is claimed, so check the carrier before releasing")
    fresh = False
    if package.state == PackageState.PLANNED:
        if order.buyer_cancel_requested:
            return hold(rt, order.order_id, "buyer_cancel_requested",
                        f"order {order.order_id}: the buyer asked to cancel before the label was bought")
        package = rt.ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                                    order_state=OrderState.LABEL_CLAIMED)
        crashpoint("after_claim")
        fresh = True
    if package.state != PackageState.LABEL_CLAIMED:
        return Outcome.PROGRESS
    try:
        request = build_request(rt, order, package)
    except KeyError as exc:
        return hold(rt, order.order_id, "unknown_sku",
                    f"order {order.order_id}: SKU {exc.args[0]} left the catalog after planning")
    shipment, last_error = None, ""
    for attempt in range(rt.engine_setting("carrier_attempts")):
        try:
            if not fresh or attempt > 0:  # the earlier call may have bought it: ask first
                shipment = _carrier_call(rt, package.carrier, "find_by_reference",
                                         lambda: carrier.find_by_reference(package.idempotency_key))
                if shipment is not None:
                    rt.counters.add("labels_recovered")
                    break
            shipment = _carrier_call(rt, package.carrier, "create_shipment",
                                     lambda: carrier.create_shipment(request))
            crashpoint("after_create_call")
            rt.counters.add("labels_bought")
            break
        except DuplicateReferenceError:
            shipment = _retry_safe(rt, package.carrier, "find_by_reference",
                                   lambda: carrier.find_by_reference(package.idempotency_key))
            if shipment is None:
                return hold(rt, order.order_id, "carrier_duplicate_unresolved",
                            f"order {order.order_id}: {package.carrier} says reference "
                            f"{package.idempotency_key} exists but cannot find it")
            rt.counters.add("labels_recovered")
            break
        except PermanentCarrierError as exc:
            rt.ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.FAILED,
                              order_state=OrderState.NEW, error=str(exc)[:500])
            return hold(rt, order.order_id, "carrier_rejected",
                        f"order {order.order_id}: {package.carrier} refused the shipment: {exc}")
        except TransientCarrierError as exc:
            last_error = f"{package.carrier}: {exc}"
            time.sleep(min(0.2 * 2 ** attempt, 2.0) * random.random())
    if shipment is None:
        return defer(rt, record, last_error or "carrier did not answer")
    rt.ledger.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED,
                      carrier_shipment_id=shipment.carrier_shipment_id,
                      tracking_number=shipment.tracking_number or "")
    crashpoint("after_create")
    return Outcome.PROGRESS


def fetch_label(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    carrier = rt.carriers.get(package.carrier)
    if carrier is None:
        return hold(rt, order.order_id, "carrier_unavailable",
                    f"order {order.order_id}: carrier {package.carrier!r} is not configured; a label "
                    f"exists there under {package.idempotency_key}")
    try:
        if not package.tracking_number:  # e.g. YunExpress TrackType 2: assigned after creation
            found = _retry_safe(rt, package.carrier, "find_by_reference",
                                lambda: carrier.find_by_reference(package.idempotency_key))
            if found is None or not found.tracking_number:
                return defer(rt, record, f"{package.carrier} has not assigned a tracking number yet")
            package = rt.ledger.advance(package, PackageState.LABEL_CREATED, PackageState.LABEL_CREATED,
                                        tracking_number=found.tracking_number)
        spec = rt.carrier_specs[package.carrier]
        if spec.tracking_number_pattern and not re.fullmatch(spec.tracking_number_pattern,
                                                             package.tracking_number):
            return hold(rt, order.order_id, "invalid_tracking_number",
                        f"order {order.order_id}: {package.carrier} returned tracking number "
                        f"{package.tracking_number}, which Amazon would reject for {spec.label}; "
                        f"the label exists (reference {package.idempotency_key})")
        pdf = _retry_safe(rt, package.carrier, "get_label", lambda: carrier.get_label(_shipment_of(package)))
    except TransientCarrierError as exc:
        return defer(rt, record, f"{package.carrier}: {exc}")
    except PermanentCarrierError as exc:
        return hold(rt, order.order_id, "label_unavailable",
                    f"order {order.order_id}: {package.carrier} will not give the label: {exc}")
    if not pdf.startswith(b"%PDF-"):
        return defer(rt, record, f"{package.carrier} returned a label that is not a PDF")
    path = _write_atomically(rt.labels_dir / f"{order.order_id}-{package.package_ref}.pdf", pdf)
    package = rt.ledger.advance(package, PackageState.LABEL_CREATED, PackageState.LABELED,
                                order_state=OrderState.LABELED, label_path=str(path))
    crashpoint("after_label")
    rt.host.call_each("mfn_package_labeled", order_id=order.order_id, package=package)
    return Outcome.PROGRESS


def _write_atomically(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# -- confirm and verify ---------------------------------------------------------------------------


def _confirms_itself(rt: Runtime, package: Package) -> bool:
    spec = rt.carrier_specs.get(package.carrier)
    return bool(spec and spec.confirms_shipment)


def shown_on(rt: Runtime, raw_order: dict | None, package: Package) -> bool:
    """Does this Amazon order (as getOrder or searchOrders returns it) show our package?

    Our own confirmations carry our packageReferenceId; a Buy Shipping label's package gets an
    id from Amazon, so there only the tracking number identifies it.
    """
    if not raw_order:
        return False
    if _confirms_itself(rt, package):
        return any(p.get("trackingNumber") == package.tracking_number
                   for p in raw_order.get("packages") or [])
    on_amazon = package_from_api(raw_order, package.package_ref)
    return bool(on_amazon) and on_amazon.get("trackingNumber") == package.tracking_number


def _visible(rt: Runtime, order: Order, package: Package) -> bool:
    return shown_on(rt, rt.amazon[order.account].get_order(order.order_id), package)


def mark_verified(rt: Runtime, package: Package, expect: PackageState) -> Outcome:
    package = rt.ledger.advance(package, expect, PackageState.VERIFIED, order_state=OrderState.VERIFIED)
    crashpoint("after_verify")
    rt.counters.add("verified")
    rt.host.call_each("mfn_package_confirmed", order_id=package.order_id, package=package)
    return Outcome.REST


def confirm(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    if _confirms_itself(rt, package):  # Buy Shipping: the purchase confirmed it; never send again
        rt.ledger.advance(package, package.state, PackageState.CONFIRMED, order_state=OrderState.CONFIRMED,
                          shipped_at=package.shipped_at or utcnow())
        return Outcome.PROGRESS
    spec = rt.carrier_specs.get(package.carrier)
    carrier_code = spec.carrier_code_for(order.site) if spec else None
    if spec is None or carrier_code is None:
        return hold(rt, order.order_id, "carrier_not_accepted",
                    f"order {order.order_id}: no Amazon carrier code for {package.carrier} on "
                    f"{order.site}; refusing to confirm as a silent 'Other'")
    client = rt.amazon[order.account]
    try:
        if package.state == PackageState.LABELED:
            package = rt.ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING,
                                        order_state=OrderState.CONFIRMING,
                                        shipped_at=package.shipped_at or utcnow(),
                                        confirm_attempts=package.confirm_attempts + 1)
        elif _visible(rt, order, package):  # resumed: the earlier send may have landed
            return mark_verified(rt, package, PackageState.CONFIRMING)
        crashpoint("before_confirm")
        service = spec.service(package.service)
        client.confirm_shipment(
            order.order_id, marketplace_id=order.marketplace_id, package_reference_id=package.package_ref,
            carrier_code=carrier_code, tracking_number=package.tracking_number,
            ship_date=package.shipped_at or utcnow(),
            items=[(i["order_item_id"], i["quantity"]) for i in package.items],
            shipping_method=(service.amazon_shipping_method or service.name) if service else None)
    except AlreadyShippedError as exc:
        try:
            if _visible(rt, order, package):
                return mark_verified(rt, package, PackageState.CONFIRMING)
        except SpApiError as read_exc:
            return defer(rt, record, f"verifying after 'already shipped': {read_exc}")
        return hold(rt, order.order_id, "already_shipped",
                    f"order {order.order_id}: Amazon says it is already shipped, but not with our "
                    f"package {package.package_ref}: {exc}")
    except InvalidInputError as exc:
        rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.LABELED,
                          order_state=OrderState.LABELED, error=str(exc)[:500])
        return hold(rt, order.order_id, "amazon_rejected",
                    f"order {order.order_id}: Amazon refused the shipment confirmation: {exc}")
    except SpApiError as exc:  # throttled, transient (maybe landed), auth: try later, verify first
        return defer(rt, record, f"confirmShipment: {exc}")
    crashpoint("after_confirm_call")
    rt.counters.add("confirmations_sent")
    rt.ledger.advance(package, PackageState.CONFIRMING, PackageState.CONFIRMED,
                      order_state=OrderState.CONFIRMED)
    crashpoint("after_confirm")
    return Outcome.PROGRESS


def verify(rt: Runtime, record: OrderRecord, package: Package) -> Outcome:
    order = record.order
    grace = rt.engine_setting("verify_grace_seconds")
    if grace and package.updated_at and utcnow() < package.updated_at + timedelta(seconds=grace):
        # The order poll verifies confirmations in pages of 100 (ingest.py); a getOrder per
        # order would cap throughput at its 0.5/s quota. Read one by one only after the grace.
        return Outcome.DEFER
    try:
        if _visible(rt, order, package):
            return mark_verified(rt, package, PackageState.CONFIRMED)
    except SpApiError as exc:
        return defer(rt, record, f"getOrder: {exc}")
    # Amazon answered 204 but does not show the package. Read once more later; after that the
    # confirmation was dropped (it happens) and is sent again, a bounded number of times.
    if record.attempts == 0:
        return defer(rt, record, "the confirmed package is not visible on the order yet")
    if _confirms_itself(rt, package):  # nothing of ours to re-send: keep reading, then hold
        if record.attempts + 1 >= rt.engine_setting("verify_attempts"):
            return hold(rt, order.order_id, "confirmation_not_visible",
                        f"order {order.order_id}: the {package.carrier} label {package.tracking_number} "
                        "does not show on the order")
        return defer(rt, record, "the Buy Shipping package is not visible on the order yet")
    if package.confirm_attempts >= rt.engine_setting("verify_attempts"):
        return hold(rt, order.order_id, "confirmation_not_visible",
                    f"order {order.order_id}: Amazon accepted {package.confirm_attempts} confirmations "
                    f"of package {package.package_ref} but never shows it")
    rt.ledger.advance(package, PackageState.CONFIRMED, PackageState.LABELED, order_state=OrderState.LABELED,
                      error="confirmation accepted but not visible; sending again")
    return Outcome.PROGRESS


# -- dispatch ----------------------------------------------------------------------------------


def step(rt: Runtime, record: OrderRecord) -> Outcome:
    """Do the next piece of work for one order."""
    if record.state == OrderState.NEW:
        return plan(rt, record)
    package = rt.ledger.open_package(record.order_id)
    if package is None:
        return hold(rt, record.order_id, "ledger_inconsistent",
                    f"order {record.order_id} is {record.state.value} but has no open package")
    if package.state in (PackageState.PLANNED, PackageState.LABEL_CLAIMED):
        if (record.order.status == FulfillmentStatus.CANCELLED
                and package.state == PackageState.PLANNED):
            rt.ledger.advance(package, PackageState.PLANNED, PackageState.FAILED,
                              order_state=OrderState.CANCELLED, error="order cancelled on Amazon")
            return Outcome.REST
        if record.order.status == FulfillmentStatus.SHIPPED and package.state == PackageState.PLANNED:
            rt.ledger.advance(package, PackageState.PLANNED, PackageState.FAILED,
                              order_state=OrderState.NEW, error="shipped outside the daemon")
            return hold(rt, record.order_id, "shipped_elsewhere",
                        f"order {record.order_id} was marked shipped on Amazon before a label was "
                        "bought here; nothing was bought")
        return buy(rt, record, package)
    if package.state == PackageState.LABEL_CREATED:
        return fetch_label(rt, record, package)
    if package.state in (PackageState.LABELED, PackageState.CONFIRMING):
        return confirm(rt, record, package)
    if package.state == PackageState.CONFIRMED:
        return verify(rt, record, package)
    return hold(rt, record.order_id, "ledger_inconsistent",
                f"order {record.order_id}: unexpected package state {package.state.value}")


def drive(rt: Runtime, order_id: str, should_stop: Callable[[], bool], max_steps: int = 12) -> Outcome:
    """Move one order as far as it goes now; stop early when asked (the step in flight finishes)."""
    from ..ledger import ACTIVE_ORDER_STATES, StaleStateError

    outcome = Outcome.REST
    for _ in range(max_steps):
        if should_stop():
            return outcome
        record = rt.ledger.get_order(order_id)
        if record is None or record.state not in ACTIVE_ORDER_STATES:
            return Outcome.REST
        try:
            outcome = step(rt, record)
        except StaleStateError:
            return Outcome.REST  # another worker moved it; it is theirs now
        except Exception as exc:  # noqa: BLE001 - one order's bug must never stop the others
            log.exception("order %s: unexpected error in state %s", order_id, record.state.value)
            return defer(rt, record, f"internal error: {type(exc).__name__}: {exc}"[:500])
        if outcome is not Outcome.PROGRESS:
            return outcome
    return outcome

