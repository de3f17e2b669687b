"""Amazon Transparency: the serial codes a confirmation must carry for enrolled items.

An item enrolled in Amazon's Transparency program (the anti-counterfeit code printed on each
unit) shows ``TRANSPARENCY`` among its ``programs`` in the Orders API. Its shipment confirmation
must carry one code per unit shipped, scanned from the units packed: only the warehouse has them,
so they come in from outside (``mfn-connector orders transparency``, or the ERP through
``PUT /v1/orders/{id}/transparency-codes``) and are kept in the ledger per order item.

The confirm step (engine/confirm.py) sends each package's share of its items' codes; a package
whose codes are missing is HELD ``transparency_codes_needed`` before its confirmation is claimed,
with ``amazon.transparency_codes: required`` (the default), and giving the codes releases it. A
feed's flat file has no column for them: those packages are confirmed one by one
(engine/feeds.py). docs/transparency.md has the sources.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model import Order

if TYPE_CHECKING:
    from .ledger import Ledger

PROGRAM = "TRANSPARENCY"  # the program's name in an order item's ``programs``
MAX_CODE_LENGTH = 2048  # a QR code's URL is the longest form Amazon names


def enrolled_items(order: Order) -> dict[str, int]:
    """The order's Transparency items: order item id -> units still to ship."""
    return {item.order_item_id: item.quantity for item in order.items if PROGRAM in item.programs}


def check_code(code: object, where: str) -> str:
    """One code as given, stripped; ValueError naming ``where`` when it cannot be one. The forms
    Amazon names (a 29-character AZ/ZA code, a 38-character SGTIN, a 7-20 character serial number,
    the URL of a QR code) are not told apart here: none holds a space or a control character."""
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"{where}: a Transparency code must be a non-empty string")
    code = code.strip()
    if len(code) > MAX_CODE_LENGTH:
        raise ValueError(f"{where}: a Transparency code is at most {MAX_CODE_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in code):
        raise ValueError(f"{where}: a Transparency code holds no spaces or control characters")
    return code


def check_codes(order: Order, given: Mapping[str, Sequence[object]],
                kept: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """The codes given for ``order``, per order item, checked: Transparency items of the order,
    one code per unit still to ship, no code twice -- nor one ``kept`` (given before) for an
    item not given again here. ValueError naming the item otherwise."""
    items = {item.order_item_id: item for item in order.items}
    checked: dict[str, tuple[str, ...]] = {}
    seen = {code for item_id, codes in (kept or {}).items() if item_id not in given for code in codes}
    for item_id, codes in given.items():
        where = f"order {order.order_id}, order item {item_id}"
        item = items.get(item_id)
        if item is None:
            raise ValueError(f"{where}: not an item of this order (its items: {', '.join(sorted(items))})")
        if PROGRAM not in item.programs:  # kept, they would never be sent: say so now
            raise ValueError(f"{where}: not a Transparency item as Amazon's order shows it (SKU {item.sku})")
        if isinstance(codes, (str, bytes)) or not isinstance(codes, Sequence):
            raise ValueError(f"{where}: the codes must be a list")
        clean = tuple(check_code(code, where) for code in codes)
        if len(clean) != item.quantity:
            raise ValueError(f"{where}: {len(clean)} code(s) given for {item.quantity} unit(s) to ship "
                             f"(SKU {item.sku}): one code per unit")
        twice = (set(clean) & seen) | {c for c in clean if clean.count(c) > 1}
        if twice:
            raise ValueError(f"{where}: code(s) given twice (or kept for another item): "
                             f"{', '.join(sorted(twice))}")
        seen.update(clean)
        checked[item_id] = clean
    return checked


@dataclass(frozen=True)
class PackageCodes:
    """What one package's confirmation carries: ``codes`` per order item, and ``missing``
    (order item id -> (codes needed, codes kept)) for the enrolled items not fully coded."""

    codes: dict[str, list[str]]
    missing: dict[str, tuple[int, int]]


def codes_for_package(order: Order, items: Sequence[Mapping[str, object]], kept: Mapping[str, Sequence[str]],
                      before: Mapping[str, int], planned: Mapping[str, int]) -> PackageCodes:
    """The codes of a package with ``items`` (its ``[{order_item_id, quantity}]``): for each
    enrolled item, the next ``quantity`` of its ``kept`` codes after the ``before`` (units of the
    item in the order's packages ahead of this one, by reference: an item split over packages
    gives each its own share). ``planned``: the units of each item all the order's packages
    carry; codes kept for another count (given before Amazon's order changed: a unit shipped by
    hand, its code unknown) are missing, not sent on a guess."""
    enrolled = enrolled_items(order)
    codes: dict[str, list[str]] = {}
    missing: dict[str, tuple[int, int]] = {}
    for line in items:
        item_id, quantity = str(line["order_item_id"]), int(line["quantity"])  # type: ignore[call-overload]
        if item_id not in enrolled:
            continue
        given = kept.get(item_id, ())
        if given and len(given) != planned.get(item_id, quantity):
            missing[item_id] = (quantity, len(given))
            continue
        start = before.get(item_id, 0)
        share = list(given)[start:start + quantity]
        if len(share) < quantity:
            missing[item_id] = (quantity, len(share))
        else:
            codes[item_id] = share
    return PackageCodes(codes, missing)


def give_codes(ledger: Ledger, order_id: str, given: Mapping[str, Sequence[object]]) -> bool:
    """Keep the codes given for the order's items (checked: ValueError, KeyError for an unknown
    order, StaleStateError once a package holding them was sent) and release the order when it
    was held for its codes and every Transparency item now has them. Whether it was released."""
    record = ledger.get_order(order_id, with_pii=False)
    if record is None:
        raise KeyError(f"unknown order {order_id}")
    # the release in the codes' own transaction: a hold the confirm step sets meanwhile, or a
    # kill between the two, would leave the order held with nothing left to wait for
    checked = check_codes(record.order, given, ledger.transparency_codes(order_id))
    return ledger.give_transparency_codes(order_id, checked, enrolled=enrolled_items(record.order))
