"""The figures Amazon judges a seller by, counted from the ledger: valid-tracking rate (VTR) per
site and product category, on-time delivery, first-scan latency and transit time per carrier
service, confirmations sent after ship-by. Pure computation; ``cli/report.py`` renders it.

How it counts (docs/tracking.md#how-vtr-is-counted):

* like Amazon, packages are selected by their **promised delivery date** (the order's
  ``deliver_by``; its ship date when Amazon gave none): the **rate** counts every package
  confirmed on Amazon whose promise fell in the last ``alerts.window_days`` (30) days, voided
  labels excepted;
* a package is **valid** when its tracking shows at least one carrier scan (an "information
  received" notice is not a scan); it counts once in each product category of its items (the
  item master's ``category``; items without one count under "(no category)");
* packages whose promise is still ahead are **upcoming**: they will enter the window. The
  **projected** rate counts the window and the upcoming packages alike, leaving out the
  **pending** ones (no scan yet, but still within ``tracking.first_scan_days`` of handover): it
  is where the rate is heading, and what the alerts watch.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..ledger import SHIPPED_ORDER_STATES, OrderState, PackageState
from .runtime import Runtime
from .track import service_tracking_level

NO_CATEGORY = "(no category)"

_SHIPPED_PACKAGE_STATES = frozenset(PackageState(s.value) for s in SHIPPED_ORDER_STATES)
_SETTLED = frozenset({PackageState.DELIVERED, PackageState.RETURNED, PackageState.LOST})


@dataclass(frozen=True, slots=True)
class Shipped:
    """One confirmed package and what the report needs of it (no buyer data)."""

    order_id: str
    site: str
    categories: tuple[str, ...]
    carrier: str
    service: str
    state: PackageState
    shipped_at: datetime
    confirmed_at: datetime | None
    first_scan_at: datetime | None
    delivered_at: datetime | None
    scans: int
    ship_by: datetime | None
    deliver_by: datetime | None
    tracking_level: str = "tracked"
    min_scans: int = 1
    reached_door: bool = False  # delivered, or a delivery was attempted
    to_door: bool = True  # the service scans through delivery (else "late" cannot be known)

    @property
    def promised(self) -> datetime:
        """The date Amazon selects the package by: its promised delivery (else its ship date)."""
        return self.deliver_by or self.shipped_at

    @property
    def meets_tracking_level(self) -> bool:
        """Enough scans for the level the order required; "fully tracked" also needs the door."""
        return self.scans >= self.min_scans and (self.tracking_level != "fully_tracked" or self.reached_door)


def shipped_packages(rt: Runtime, *, since: datetime) -> list[Shipped]:
    """Every package confirmed on Amazon whose promised delivery is ``since`` or later (held orders
    included: a parcel whose void was refused still counts)."""
    out = []
    # A package counts by its promised delivery, which lies at most the longest transit after its
    # ship date: older ones cannot count, and are not read (nor is any buyer address). Read in
    # pages of light rows; a SKU's category and a service's tracking level are looked up once.
    shipped_since = since - timedelta(days=rt.config.ledger.max_transit_days)
    states = [*SHIPPED_ORDER_STATES, OrderState.HELD]
    categories: dict[tuple[str, ...], tuple[str, ...]] = {}
    to_door: dict[tuple[str, str], bool] = {}
    after: int | None = 0
    while after is not None:
        page, after = rt.ledger.shipped_lines(states, shipped_since=shipped_since, after_id=after,
                                              limit=_PAGE)
        for p in page:
            if (not p.confirms_on_amazon  # an ERP's label for another channel: not Amazon's to count
                    or p.state not in _SHIPPED_PACKAGE_STATES or (p.deliver_by or p.shipped_at) < since):
                continue
            if p.skus not in categories:
                categories[p.skus] = _categories(rt, p.skus)
            service = (p.carrier, p.service)
            if service not in to_door:
                to_door[service] = service_tracking_level(rt, *service) == "fully_tracked"
            out.append(Shipped(
                p.order_id, p.site, categories[p.skus], p.carrier, p.service, p.state, p.shipped_at,
                p.confirmed_at, p.first_scan_at, p.delivered_at, p.scans, p.ship_by, p.deliver_by,
                tracking_level=p.tracking_level, min_scans=p.min_scans,
                reached_door=p.delivered_at is not None or p.failed_attempt,
                to_door=to_door[service]))
    return out


_PAGE = 500  # packages per ledger read


def _categories(rt: Runtime, skus: tuple[str, ...]) -> tuple[str, ...]:
    """The product categories of an order's items (the item master's; NO_CATEGORY without one)."""
    found = {(item.category if item else "") or NO_CATEGORY for item in (rt.catalog.get(s) for s in skus)}
    return tuple(sorted(found)) or (NO_CATEGORY,)


def report(packages: Iterable[Shipped], *, now: datetime, window_days: float,
           first_scan_days: float) -> dict[str, Any]:
    start = now - timedelta(days=window_days)
    packages = [p for p in packages if p.promised >= start]
    pending_after = timedelta(days=first_scan_days)

    def pending(p: Shipped) -> bool:
        return p.scans == 0 and now - p.shipped_at <= pending_after

    def rates(group: list[Shipped]) -> dict[str, Any]:
        counted = [p for p in group if p.promised <= now]
        valid = sum(p.scans > 0 for p in counted)
        settled = [p for p in group if not pending(p)]
        return {"packages": len(counted), "valid": valid, "rate": _percent(valid, len(counted)),
                "upcoming": len(group) - len(counted), "pending": len(group) - len(settled),
                "settled": len(settled),
                "projected": _percent(sum(p.scans > 0 for p in settled), len(settled))}

    by_category: dict[tuple[str, str], list[Shipped]] = defaultdict(list)
    by_service: dict[tuple[str, str], list[Shipped]] = defaultdict(list)
    for p in packages:
        for category in p.categories:
            by_category[(p.site, category)].append(p)
        by_service[(p.carrier, p.service)].append(p)
    vtr = [{"site": site, "category": category, **rates(group)}
           for (site, category), group in sorted(by_category.items())]
    services = [{"carrier": carrier, "service": service, **rates(group), **_delivery(group, now)}
                for (carrier, service), group in sorted(by_service.items())]
    states: dict[str, int] = defaultdict(int)
    for p in packages:
        states[p.state.value] += 1
    settled = [p for p in packages if p.state in _SETTLED]
    return {
        "window": {"days": window_days, "from": start.isoformat(), "to": now.isoformat()},
        "packages": len(packages),
        "vtr": vtr,
        "services": services,
        "confirmations_after_ship_by": sum(p.confirmed_at > p.ship_by for p in packages
                                           if p.confirmed_at and p.ship_by),
        "tracking_requirement": {"met": sum(p.meets_tracking_level for p in settled), "of": len(settled)},
        "states": dict(sorted(states.items())),
    }


def _delivery(group: list[Shipped], now: datetime) -> dict[str, Any]:
    """On-time delivery against the promise, lost and late parcels, first-scan latency and transit."""
    delivered = [p for p in group if p.delivered_at is not None]
    promised = [p for p in delivered if p.deliver_by is not None]
    on_time = [p for p in promised if p.delivered_at <= p.deliver_by]
    late = [p for p in group
            if p.to_door and p.deliver_by is not None and (p.delivered_at or now) > p.deliver_by]
    return {
        "delivered": len(delivered), "lost": sum(p.state is PackageState.LOST for p in group),
        "late": len(late),
        "on_time": {"delivered": len(promised), "on_time": len(on_time),
                    "rate": _percent(len(on_time), len(promised))},
        "first_scan_hours": _spread([(p.first_scan_at - p.shipped_at).total_seconds() / 3600
                                     for p in group if p.first_scan_at]),
        "transit_days": _spread([(p.delivered_at - p.shipped_at).total_seconds() / 86400 for p in delivered]),
    }


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _spread(values: list[float]) -> dict[str, float | None]:
    """p50 and p95 by the nearest-rank method (None without values)."""
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50": rank(0.5), "p95": rank(0.95), "n": len(ordered)}
