"""``mfn-connector quote ORDER_ID``: the rate-shopping decision for one order, explained (data for
``--json``, text for people)."""
from __future__ import annotations

from typing import Any

from ..engine.plan import precheck
from ..engine.runtime import Runtime
from ..engine.shopping import Shopping, shop
from ..fx import FxError
from ..ledger import NOTHING_TO_SHIP_STATES, OrderRecord, Package
from ..model import Money
from ..rules import RulesError, format_money


def _money(value: Money | None) -> str | None:
    return format_money(value) if value is not None else None


def explain(rt: Runtime, record: OrderRecord) -> dict[str, Any]:
    order = record.order
    out: dict[str, Any] = {"order_id": order.order_id, "site": order.site, "state": record.state.value}
    if record.state in NOTHING_TO_SHIP_STATES:  # nothing will ship: say that
        out["error"] = f"not shopped: the order is {record.state.value}; nothing is to ship"
        return out
    blocked = precheck(rt, record)
    if blocked:  # the plan step would hold it before asking anyone for a quote
        out["error"] = f"not shopped: {blocked[0].value}: {blocked[1]}"
        return out
    items = [i for i in order.items if i.quantity > 0]
    try:
        shopping = shop(rt, order, items)
    except (RulesError, FxError, KeyError) as exc:
        out["error"] = f"cannot shop this order: {exc}"
        return out
    req, sel = shopping.requirements, shopping.selection
    parcel = req.parcel
    packages = rt.ledger.packages(order.order_id)  # the latest: the open one, else the last
    package = rt.ledger.open_package(order.order_id) or (packages[-1] if packages else None)
    out["warehouse"] = _warehouse(rt, shopping, package)
    out["package"] = _package(package)
    out["requirements"] = {
        "tracking_level": req.tracking_level, "min_scans": req.min_scans,
        "buy_shipping_allowed": req.buy_shipping_allowed, "buy_shipping_reason": req.buy_shipping_reason,
        "ioss_number": req.ioss_number, "ioss_source": req.ioss_source, "ioss_missing": req.ioss_missing,
        "order_value": _money(req.order_value),
        "goods_value": _money(req.goods_value), "declared_value": _money(req.declared_value),
        "destination": req.destination_country,
        "ship_by": req.ship_by.isoformat() if req.ship_by else None,
        "deliver_by": req.deliver_by.isoformat() if req.deliver_by else None,
        "parcel": {"weight_g": parcel.weight_g, "cm": [str(parcel.length_cm), str(parcel.width_cm),
                                                       str(parcel.height_cm)],
                   "battery": parcel.has_battery},
        "vtr_excluded_if_exact": req.vtr_excluded_if_exact, "returnless_refund": req.returnless_refund,
        "notes": list(req.notes),
    }
    rows = []
    for candidate in sel.candidates:
        o = candidate.option
        rows.append({"carrier": o.carrier, "service": o.service, "price": _money(o.price),
                     "transit_days": o.transit_days, "tracking": o.tracking_level, "eligible": True,
                     "cost": _money(candidate.cost), "comparable": _money(candidate.comparable),
                     "chargeable_weight_g": o.chargeable_weight_g, "handling_fee": _money(o.handling_fee),
                     "reasons": [], "notes": list(candidate.notes)})
    quoted = {(q.carrier, q.service): q for q in shopping.quotes}
    for rejection in sel.rejections:
        quote = quoted.get((rejection.carrier, rejection.service))
        rows.append({"carrier": rejection.carrier, "service": rejection.service or "*",
                     "price": _money(quote.price) if quote else None,
                     "transit_days": quote.transit_days if quote else None, "tracking": "",
                     "eligible": False, "cost": None, "comparable": None,
                     "chargeable_weight_g": quote.chargeable_weight_g if quote else None,
                     "handling_fee": _money(quote.handling_fee) if quote else None,
                     "reasons": list(rejection.reasons), "notes": []})
    out["options"] = rows
    chosen = sel.chosen
    out["winner"] = ({"carrier": chosen.option.carrier, "service": chosen.option.service,
                      "cost": _money(chosen.cost), "comparable": _money(chosen.comparable)}
                     if chosen else None)
    if chosen is None:
        out["held_message"] = sel.held_message()
    return out


def _warehouse(rt: Runtime, shopping: Shopping, package: Package | None) -> dict[str, Any]:
    """Where the order ships from and why. ``planned``: the warehouse of its latest package's plan,
    when it has a package (a planned label is bought from there, whatever the routing says now)."""
    warehouse = shopping.warehouse or rt.config.default_warehouse
    planned = None
    if package is not None:
        planned = {"package_ref": package.package_ref, "state": package.state.value,
                   "warehouse": (package.plan or {}).get("warehouse") or rt.config.default_warehouse.name}
    return {"name": warehouse.name, "city": warehouse.city, "province": warehouse.province,
            "reason": shopping.warehouse_reason, "planned": planned}


def _package(package: Package | None) -> dict[str, Any] | None:
    """The order's latest package, planned or bought: the quotes are asked again now, and may no
    longer choose what that package was planned for (prices and rules move)."""
    if package is None:
        return None
    return {"package_ref": package.package_ref, "state": package.state.value, "carrier": package.carrier,
            "service": package.service, "tracking_number": package.tracking_number or None}


def render_explanation(result: dict[str, Any]) -> str:
    lines = [f"Order {result['order_id']} ({result['site']}), now {result['state']}"]
    if "error" in result:
        return "\n".join(lines + [result["error"]]) + "\n"
    package = result.get("package")
    if package:
        lines.append(f"Package {package['package_ref']} ({package['state']}): {package['carrier']}:"
                     f"{package['service']}" + (f", tracking {package['tracking_number']}"
                                               if package["tracking_number"] else "")
                     + "; the quotes below are asked now, and would choose as follows today")
    wh = result["warehouse"]
    where = ", ".join(p for p in (wh["city"], wh["province"]) if p)
    lines.append(f"Ships from warehouse {wh['name']}" + (f" ({where})" if where else "")
                 + f": {wh['reason']}")
    planned = wh["planned"]
    if planned and planned["warehouse"] != wh["name"]:
        lines.append(f"  note: package {planned['package_ref']} ({planned['state']}) was planned from "
                     f"warehouse {planned['warehouse']}; the routing now says {wh['name']}")
    req = result["requirements"]
    lines += ["", "Requirements:",
              f"  tracking        {req['tracking_level']} (at least {req['min_scans']} scan(s))",
              f"  order value     {req['order_value']}   goods {req['goods_value']}   "
              f"declared {req['declared_value']}",
              f"  Buy Shipping    {'allowed' if req['buy_shipping_allowed'] else 'not allowed'}"
              + (f" ({req['buy_shipping_reason']})" if req["buy_shipping_reason"] else ""),
              f"  IOSS            {req['ioss_number'] or '-'}"
              + (f" (from {req['ioss_source']})" if req["ioss_source"] else "")
              + (f" (none; ioss.missing: {req['ioss_missing']})" if req["ioss_missing"] else ""),
              f"  destination     {req['destination']}   ship by {req['ship_by'] or '-'}   "
              f"deliver by {req['deliver_by'] or '-'}",
              f"  parcel          {req['parcel']['weight_g']} g, {' x '.join(req['parcel']['cm'])} cm"
              + (", battery" if req["parcel"]["battery"] else "")]
    lines += [f"  note: {n}" for n in req["notes"]]
    lines += ["", f"  {'CARRIER:SERVICE':<34} {'PRICE':>14} {'COST':>14} {'COMPARABLE':>14}  ELIGIBLE"]
    for row in result["options"]:
        name = f"{row['carrier']}:{row['service']}"
        winner = result["winner"] and (row["carrier"], row["service"]) == (
            result["winner"]["carrier"], result["winner"]["service"])
        mark, eligible = "*" if winner else " ", "yes" if row["eligible"] else "no"
        lines.append(f"{mark} {name:<34} {row['price'] or '-':>14} {row['cost'] or '-':>14} "
                     f"{row['comparable'] or '-':>14}  {eligible}")
        lines += [f"      - {reason}" for reason in row["reasons"]]
        lines += [f"      . {note}" for note in row["notes"]]
    lines.append("")
    if result["winner"]:
        w = result["winner"]
        lines.append(f"Winner: {w['carrier']}:{w['service']} at {w['cost']} (compared as {w['comparable']})")
    else:
        lines.append(f"Nothing eligible: the order is held. {result['held_message']}")
    return "\n".join(lines) + "\n"
