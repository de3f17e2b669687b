"""``mfn-connector orders show``: one order as the ledger knows it, for a person or (``--json``) a
program. Both views come from one dictionary (:func:`gather`); the text is read from it, so the
two can never tell different stories. No buyer data is read: the address is not decrypted.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..model import parse_iso
from ..transparency import PROGRAM as TRANSPARENCY

if TYPE_CHECKING:
    from ..ledger import Ledger


def gather(ledger: Ledger, order_id: str) -> dict[str, Any] | None:
    """Everything the ledger knows about the order, as plain JSON values (None: no such order)."""
    found = ledger.order_detail(order_id, with_pii=False)  # shown without it; readable with any key
    if found is None:
        return None
    record, on_file = found
    return {
        "order": record.order.to_dict(),
        "state": record.state.value,
        "hold": {"reason": record.hold_reason, "message": record.hold_message,
                 "held_from": record.held_from.value if record.held_from else None}
        if record.hold_reason else None,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at.isoformat() if record.next_attempt_at else None,
        "last_error": ledger.last_error(order_id) or None,  # the last failure, or what it waits for
        "address_on_file": on_file,  # the address is not read: whether one is stored
        "pii_purged": record.pii_purged,
        "packages": [{**_plain(vars(p)), "events": [_plain(vars(e)) for e in ledger.tracking_events(p.id)]}
                     for p in ledger.packages(order_id)],
        "transparency_codes": {item: list(c) for item, c in ledger.transparency_codes(order_id).items()},
        "history": ledger.history(order_id),
    }


_ORDER_DATES = (("ship_by", "ship by"), ("deliver_by", "deliver by"))
_PACKAGE_DATES = (("confirmed_at", "confirmed on Amazon"), ("shipped_at", "ship date sent"),
                  ("delivered_at", "delivered"), ("voided_at", "voided"))


def as_json(shown: dict[str, Any]) -> str:
    return json.dumps(shown, indent=2, default=str, ensure_ascii=False)


def as_text(shown: dict[str, Any]) -> str:
    """The order, its packages and its history as lines for a person."""
    order = shown["order"]
    dates = [f"{label} {_when(order[key])}" for key, label in _ORDER_DATES if order.get(key)]
    updated = f" (updated {_when(order['last_updated'])})" if order.get("last_updated") else ""
    total = f"; total {_money(order['total'])}" if order.get("total") else ""
    lines = [f"Order {order['order_id']}: {shown['state']}",
             f"  account {order['account']}, site {order['site'] or '-'}, "
             f"on Amazon {order['status']}{updated}",
             "  " + (", ".join(dates) or "no ship-by date"),
             f"  items: {_items(order['items'])}{total}"]
    if order.get("buyer_cancel_requested"):
        lines.append("  the buyer asked to cancel")
    address = ("purged (the retention window passed)" if shown["pii_purged"]
               else "on file (never shown here)" if shown["address_on_file"] else "none on file")
    lines.append(f"  address: {address}")
    hold = shown["hold"]
    if hold:
        since = f" (from {hold['held_from']})" if hold["held_from"] else ""
        lines += [f"  held: {hold['reason']}{since}", f"    {hold['message']}"]
    if shown["next_attempt_at"] or shown["attempts"]:
        lines.append(f"  attempts {shown['attempts']}"
                     + (f", next {_when(shown['next_attempt_at'])}" if shown["next_attempt_at"] else ""))
    if shown["last_error"]:
        lines.append(f"  last error: {shown['last_error']}")
    lines += _transparency(order["items"], shown["transparency_codes"])
    skus = {item["order_item_id"]: item["sku"] for item in order["items"]}
    for package in shown["packages"]:
        lines += ["", *_package(package, skus)]
    refs = {package["id"]: package["package_ref"] for package in shown["packages"]}
    lines += ["", "History:"]
    lines += [f"  {_when(at)}  {'; '.join(steps)}" for at, steps in _moments(shown["history"], refs)]
    return "\n".join(lines)


def _transparency(items: list[dict[str, Any]], codes: dict[str, list[str]]) -> list[str]:
    """A line per Transparency item: how many of its codes are given (the codes: ``--json``)."""
    return [f"  Transparency item {item['sku']} ({item['order_item_id']}): "
            f"{len(codes.get(item['order_item_id'], []))} code(s) given for {item['quantity']} unit(s) "
            "to ship" for item in items if TRANSPARENCY in item.get("programs", ())]


def _package(package: dict[str, Any], skus: dict[str, str]) -> list[str]:
    plan = package.get("plan") or {}
    items = ", ".join(f"{i['quantity']} x {skus.get(i['order_item_id'], i['order_item_id'])}"
                      for i in package["items"])
    lines = [f"Package {package['package_ref']}: {package['state']}, "
             f"{package['carrier']} {package['service']}", f"  items: {items}"]
    if plan.get("price"):
        where = f", from warehouse {plan['warehouse']}" if plan.get("warehouse") else ""
        level = f", {plan['tracking_level'].replace('_', ' ')}" if plan.get("tracking_level") else ""
        lines.append(f"  price {_money(plan['price'])}{where}{level}")
    if package["tracking_number"]:
        lines.append(f"  tracking number {package['tracking_number']}")
    if package.get("filed_as"):
        lines.append(f"  filed by Amazon under {package['filed_as']!r}, not the code sent: not valid "
                     "tracking")
    if package["label_erased_at"]:
        lines.append(f"  label erased {_when(package['label_erased_at'])}")
    elif package["label_path"]:
        lines.append(f"  label {package['label_path']}")
    for key, label in _PACKAGE_DATES:
        if package.get(key):
            lines.append(f"  {label} {_when(package[key])}")
    if package["error"]:
        lines.append(f"  last error: {package['error']}")
    if package["events"] or package["next_track_at"]:
        lines.append(f"  tracking: {package['scans']} scan(s)"
                     + (f", next look {_when(package['next_track_at'])}" if package["next_track_at"] else ""))
    for event in package["events"]:
        said = (event["status"], event["location"], event["description_en"] or event["description"])
        lines.append(f"    {_when(event['at'])}  " + "  ".join(part for part in said if part))
    return lines


def _moments(history: list[dict[str, Any]], refs: dict[int, str]) -> list[tuple[Any, list[str]]]:
    """The history, one line per moment: an order's move and its package's, written in the same
    transaction, read as one (``order NEW -> PLANNED; package 1 PLANNED (yanwen/481)``)."""
    moments: list[tuple[Any, list[str]]] = []
    for entry in history:
        package_id = entry.get("package_id")
        whose = "order" if package_id is None else f"package {refs.get(package_id, package_id)}"
        move = f"{entry['from']} -> {entry['to']}" if entry["from"] else entry["to"]
        note = _own_words(entry["note"] or "", set(refs.values()), entry["to"])
        step = f"{whose} {move}" + (f" ({note})" if note else "")
        if moments and moments[-1][0] == entry["at"]:
            moments[-1][1].insert(0 if package_id is None else len(moments[-1][1]), step)  # the order first
        else:
            moments.append((entry["at"], [step]))
    return moments


_NAMES_PACKAGE = re.compile(r"package (\S+?)(?:[:;] |\s+|$)")


def _own_words(note: str, refs: set[str], to_state: str) -> str:
    """A transition's note without what its line already says: the package it names first, or a
    word that repeats the state it moved to (an order's "package 1 planned")."""
    named = _NAMES_PACKAGE.match(note)
    if named and named.group(1) in refs:
        note = note[named.end():]
    return "" if note.lower() == to_state.lower() else note


def _items(items: list[dict[str, Any]]) -> str:
    return ", ".join(map(_item, items)) or "none"


def _item(item: dict[str, Any]) -> str:
    """One item as ordered, and what of it shipped: ``quantity`` is only what is still to ship, 0
    once an order shipped or was cancelled (which "0 x SKU" would read as nothing ordered)."""
    to_ship, shipped = item["quantity"], item.get("quantity_shipped", 0)
    if not shipped:
        return f"{to_ship} x {item['sku']}" if to_ship else f"{item['sku']} (none to ship)"
    if not to_ship:
        return f"{shipped} x {item['sku']} (shipped)"
    return f"{to_ship + shipped} x {item['sku']} ({shipped} shipped, {to_ship} to ship)"


def _money(money: dict[str, Any]) -> str:
    return f"{money['amount']} {money['currency']}"


def _when(value: Any) -> str:
    """A time as ``2026-12-06 16:49:30 UTC`` (seconds are enough to read; --json has the rest)."""
    if value is None:
        return "-"
    try:
        moment = value if isinstance(value, datetime) else parse_iso(str(value))
    except ValueError:
        return str(value)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in fields.items() if k != "package_id"}
