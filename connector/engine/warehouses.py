"""Which warehouse an order ships from, and why.

``ship_from`` names the warehouses (the first is the default) and ``warehouse_routing`` routes
orders to them by SKU, by Amazon site or by seller account. Each item still to ship gets the
warehouse of the first rule that covers it, in this order of precedence:

1. a ``skus`` rule listing its SKU (the SKU is stocked there);
2. a ``sites`` rule listing the order's site;
3. an ``accounts`` rule listing the order's seller account;
4. the default warehouse.

One package ships from one place, so an order whose items land in different warehouses is not
split or guessed at: it is held ``split_warehouses`` with every item's warehouse and why.

The warehouse chosen at planning is stored in the package's plan (``plan["warehouse"]``); buying
reads it back from there (:func:`planned_warehouse`), so a routing change never moves a package
that is already planned.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import Config, Warehouse
from ..model import Order
from ..rules import RulesError
from .runtime import Runtime


class SplitWarehouses(Exception):
    """The order's items ship from different warehouses; ``str()`` says which and why."""

    def __init__(self, message: str, by_item: dict[str, tuple[str, str]]) -> None:
        super().__init__(message)
        self.by_item = by_item  # SKU -> (warehouse name, reason)


class WarehouseGone(RulesError):
    """A package was planned from a warehouse that is no longer configured."""


def choose_warehouse(rt: Runtime, order: Order) -> tuple[Warehouse, str]:
    """The warehouse ``order`` ships from and a short reason ("SKU X is stocked in yiwu", "site DE
    ships from shenzhen", ...). Raises :class:`SplitWarehouses` when its items disagree."""
    return choose(rt.config, order)


def choose(config: Config, order: Order) -> tuple[Warehouse, str]:
    """:func:`choose_warehouse` on a configuration alone (no runtime needed)."""
    rules = config.warehouse_routing
    if not rules:
        default = config.default_warehouse
        return default, ("the only warehouse" if len(config.warehouses) == 1
                         else f"default: {default.name} is the first warehouse under ship_from")
    fallback = _order_level(config, order)
    by_item: dict[str, tuple[str, str]] = {}
    for item in order.items:
        if item.quantity <= 0 or item.sku in by_item:
            continue
        rule = next((r for r in rules if item.sku in r.skus), None)
        by_item[item.sku] = ((rule.warehouse, f"SKU {item.sku} is stocked in {rule.warehouse}") if rule
                             else fallback)
    names = {name for name, _ in by_item.values()} or {fallback[0]}
    if len(names) > 1:
        lines = "; ".join(
            reason if reason.startswith(f"SKU {sku} ") else f"{sku} goes with the order ({reason})"
            for sku, (_, reason) in by_item.items())
        raise SplitWarehouses(f"order {order.order_id}: its items ship from different warehouses "
                              f"({lines}); one package ships from one warehouse", by_item)
    (name,) = names
    reasons = list(dict.fromkeys(reason for _, reason in by_item.values())) or [fallback[1]]
    warehouse = config.warehouse(name)
    assert warehouse is not None, name  # the configuration checks every rule's warehouse
    return warehouse, "; ".join(reasons)


def _order_level(config: Config, order: Order) -> tuple[str, str]:
    """(warehouse, reason) for an item no SKU rule covers: site, then account, then the default."""
    rules = config.warehouse_routing
    rule = next((r for r in rules if order.site in r.sites), None)
    if rule is not None:
        return rule.warehouse, f"site {order.site} ships from {rule.warehouse}"
    rule = next((r for r in rules if order.account in r.accounts), None)
    if rule is not None:
        return rule.warehouse, f"account {order.account} ships from {rule.warehouse}"
    default = config.default_warehouse
    return default.name, f"default: {default.name} is the first warehouse under ship_from"


def planned_warehouse(config: Config, plan: Mapping[str, Any] | None) -> Warehouse:
    """The warehouse a package was planned from: its plan's ``warehouse``, or the default one
    for a package planned before warehouses were recorded. Raises :class:`WarehouseGone` when
    the plan names a warehouse the configuration no longer has: buying it from another address
    would put a wrong sender on the label and call the wrong pickup."""
    name = (plan or {}).get("warehouse")
    if not name:
        return config.default_warehouse
    warehouse = config.warehouse(str(name))
    if warehouse is None:
        known = ", ".join(w.name for w in config.warehouses)
        raise WarehouseGone(f"it was planned to ship from warehouse {name!r}, which is no longer under "
                            f"ship_from (known: {known}); add it back to buy the label")
    return warehouse
