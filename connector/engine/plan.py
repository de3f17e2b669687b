"""Stage 2, plan: NEW -> PLANNED (or HELD, or CANCELLED).

Checks what would stop the order before anyone is asked for a price (a cancel request, an
incomplete or purged address, an unknown SKU, items in different warehouses), shops for the label from the
order's warehouse (``warehouses.py``, ``shopping.py``) and writes the package row with its plan:
the warehouse, the parcel, the IOSS number and the requirements it was chosen for. Buying
reads that plan back, so the label is bought for exactly what was planned, and nothing is
recomputed or silently dropped between the two steps.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..catalog import shown_sku
from ..config import Warehouse
from ..fx import FxError
from ..holds import HoldReason
from ..ledger import OrderRecord, OrderState
from ..model import FulfillmentStatus, Order, Parcel, utcnow
from ..rules import Candidate, Requirements, RulesError
from .outcome import Outcome, defer, hold, wait
from .runtime import Runtime
from .shopping import build_parcel, order_requirements, shop
from .warehouses import SplitWarehouses, choose_warehouse

log = logging.getLogger("connector.engine")


def precheck(rt: Runtime, record: OrderRecord) -> tuple[HoldReason, str] | None:
    """(reason, message) when the order cannot be shipped as it stands, before any quote."""
    order = record.order
    if record.cancel_request_stands:
        return (HoldReason.BUYER_CANCEL_REQUESTED, f"order {order.order_id}: the buyer asked to cancel; "
                "cancel it in Seller Central or release it to ship anyway")
    items = [i for i in order.items if i.quantity > 0]
    if not items:
        return HoldReason.NOTHING_TO_SHIP, f"order {order.order_id}: every item is already shipped"
    if record.pii_purged:  # the retention ran out: a purged address never comes back
        return (HoldReason.ADDRESS_PURGED, f"order {order.order_id}: its buyer's address was purged "
                "(ledger.pii_retention_days), so no label can be bought for it; ship it outside the daemon, "
                "or cancel it in Seller Central")
    if order.ship_to is None or order.ship_to.missing_fields():
        what = (f"no {', '.join(order.ship_to.missing_fields())} in the shipping address" if order.ship_to
                else "no shipping address")
        return (HoldReason.ADDRESS_INCOMPLETE, f"order {order.order_id}: Amazon sent {what} (check the "
                "app's Direct-to-Consumer Shipping role); it is retried when Amazon sends the full address")
    unknown = sorted({i.sku for i in items if rt.catalog.get(i.sku) is None})
    if unknown:
        return (HoldReason.UNKNOWN_SKU, f"order {order.order_id}: SKU {', '.join(map(shown_sku, unknown))} "
                "is not in the "
                f"catalog ({rt.config.catalog_path.name}); add it and release the order")
    try:
        choose_warehouse(rt, order)
    except SplitWarehouses as exc:
        return (HoldReason.SPLIT_WAREHOUSES, f"{exc}: ship it by hand, or change warehouse_routing so "
                "that its items ship from one warehouse, and release it")
    return None


def plan(rt: Runtime, record: OrderRecord) -> Outcome:
    order = record.order
    if order.status == FulfillmentStatus.CANCELLED:
        rt.ledger.set_order_state(order.order_id, [OrderState.NEW], OrderState.CANCELLED,
                                  note="cancelled on Amazon before a label was bought")
        return Outcome.REST
    blocked = precheck(rt, record)
    if blocked:
        return hold(rt, order.order_id, *blocked)
    items = [i for i in order.items if i.quantity > 0]
    try:
        shopping = shop(rt, order, items)
    except (RulesError, FxError) as exc:
        return hold(rt, order.order_id, HoldReason.SITE_RULES, f"order {order.order_id}: {exc}")
    chosen = shopping.selection.chosen
    if chosen is None and shopping.unanswered:  # a carrier that did not answer may be the one
        why = "; ".join(str(r) for r in shopping.selection.rejections if r.carrier in shopping.unanswered)
        message = (f"no eligible quote yet; no usable answer from {', '.join(shopping.unanswered)}"
                   + (f" ({why})" if why else ""))
        if set(shopping.unanswered) <= set(shopping.credentials_refused):
            # The account's fault, not the order's (an alert is out): it waits for the fix without
            # using up its attempts, asked again as rarely as the retries thin out to.
            return wait(rt, record, message, since=order.created or utcnow(), patience=timedelta.max)
        return defer(rt, record, message)
    if chosen is None:
        why = f"{ship_by_note(order)}: {shopping.selection.held_message()}"
        if shopping.requirements.ioss_missing in ("hold", "buy_shipping"):
            return hold(rt, order.order_id, HoldReason.IOSS_MISSING,
                        f"order {order.order_id} ({order.site}): no IOSS number for this EU consignment "
                        "(none from Amazon, none of the seller's own: set accounts[].ioss_number) and no "
                        f"label the ioss.missing policy allows{why}")
        return hold(rt, order.order_id, HoldReason.NO_ELIGIBLE_SERVICE,
                    f"order {order.order_id} ({order.site}): no carrier service can ship it{why}")
    log.info("order %s: %s chosen at %s from warehouse %s (%s); %s", order.order_id, chosen.option.label,
             chosen.cost, shopping.warehouse.name, shopping.warehouse_reason,
             "; ".join(shopping.requirements.notes))
    used = set(order.shipped_package_refs) | {p.package_ref for p in rt.ledger.packages(order.order_id)}
    number = 1
    while str(number) in used:
        number += 1
    ref = str(number)
    rt.ledger.plan_package(order.order_id, ref, f"{order.order_id}-{ref}", chosen.option.carrier,
                           chosen.option.service,
                           [{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in items],
                           plan=plan_record(shopping.requirements, chosen, shopping.selection.candidates,
                                            warehouse=shopping.warehouse,
                                            warehouse_reason=shopping.warehouse_reason))
    return Outcome.PROGRESS


def ship_by_note(order: Order) -> str:
    """``; ship-by 2026-12-05 10:00 UTC, in 30 h`` -- how long a person has to act on a hold."""
    if order.ship_by is None:
        return ""
    hours = (order.ship_by - utcnow()).total_seconds() / 3600
    left = f"in {hours:.0f} h" if hours >= 0 else f"{-hours:.0f} h ago"
    return f"; ship-by {order.ship_by:%Y-%m-%d %H:%M} UTC, {left}"


def plan_record(req: Requirements, chosen: Candidate | None = None,
                candidates: Sequence[Candidate] = (), *, warehouse: Warehouse | None = None,
                warehouse_reason: str = "") -> dict[str, Any]:
    """What a package is bought for, as stored with it (no buyer PII). ``comparable`` (what the
    choice compared, in the fx base currency) and ``cheapest`` (the cheapest eligible option's)
    let a report say what a policy, an override or a plugin's choice cost over the cheapest.
    ``warehouse`` is the name of the warehouse it ships from (buying and the handover read it;
    a plan without one is the default warehouse's) and ``warehouse_reason`` why."""
    record: dict[str, Any] = {
        "parcel": req.parcel.to_dict(),
        "ioss_number": req.ioss_number,
        "declared_value": req.declared_value.to_dict(),
        "destination": req.destination_country,
        "tracking_level": req.tracking_level,
        "min_scans": req.min_scans,
        "requirements_digest": requirements_digest(req),
        "planned_at": utcnow().isoformat(),
    }
    if warehouse is not None:
        record["warehouse"] = warehouse.name
        record["warehouse_reason"] = warehouse_reason
    if chosen is not None:
        record["price"] = chosen.option.price.to_dict()
        record["cost"] = chosen.cost.to_dict()
        record["comparable"] = chosen.comparable.to_dict()
        cheapest = min(candidates, key=lambda c: c.comparable.amount, default=chosen)
        record["cheapest"] = {"option": cheapest.option.label, "comparable": cheapest.comparable.to_dict()}
    return record


def requirements_digest(req: Requirements) -> str:
    """A short fingerprint of what the site rules demanded, to tell later whether they changed."""
    facts = {"site": req.site, "tracking_level": req.tracking_level, "min_scans": req.min_scans,
             "buy_shipping_allowed": req.buy_shipping_allowed, "ioss_number": req.ioss_number,
             "destination": req.destination_country, "declared_value": req.declared_value.to_dict(),
             "parcel": req.parcel.to_dict()}
    text = json.dumps(facts, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def planned_parcel(rt: Runtime, order: Order, package_plan: dict[str, Any],
                   quantities: dict[str, int]) -> tuple[Parcel, str]:
    """The parcel and IOSS number a package is bought for: from its stored plan, or -- for a
    package planned before plans were stored -- worked out again now. Raises KeyError (a SKU
    left the catalog) or RulesError/FxError: the caller holds the order, it never guesses."""
    if package_plan.get("parcel"):
        return Parcel.from_dict(package_plan["parcel"]), str(package_plan.get("ioss_number") or "")
    parcel = build_parcel(rt, order, quantities)
    return parcel, order_requirements(rt, order, parcel).ioss_number
