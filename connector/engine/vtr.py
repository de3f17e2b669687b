"""The figures Amazon judges a seller by, counted from the ledger: valid-tracking rate (VTR) per
site and product category, on-time delivery, first-scan latency and transit time per carrier
service, confirmations sent after ship-by. Pure computation; ``cli/report.py`` renders it.

How it counts (docs/tracking.md#how-vtr-is-counted):

* like Amazon, packages are selected by their **promised delivery date** (the order's
  ``deliver_by``; its ship date when Amazon gave none): the **rate** counts every package
  confirmed on Amazon whose promise fell in the last ``alerts.window_days`` (30) days, voided
  labels excepted;
* a package is **valid** when its tracking shows at least one carrier scan (an "information
  received" notice is not a scan), it was confirmed before its delivery (Amazon counts tracking
  uploaded after delivery as invalid), and Amazon filed it under the carrier code sent (one its
  read-back shows under another carrier, "Other" say, is recorded as ``filed_as`` by
  engine/verify.py: Amazon does not count it as valid); it counts once in each product category of
  its items (the item master's ``category``; items without one count under "(no category)");
* packages whose promise is still ahead are **upcoming**: they will enter the window. The
  **projected** rate counts the window and the upcoming packages alike, leaving out the
  **pending** ones (no scan yet, but still within ``tracking.first_scan_days`` of handover, and
  not filed by Amazon under another carrier, which no scan makes valid): it is where the rate is
  heading, and what the alerts watch.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
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
    filed_as: str | None = None  # Amazon's carrier name when it filed it under another than the code sent

    @property
    def promised(self) -> datetime:
        """The date Amazon selects the package by: its promised delivery (else its ship date)."""
        return self.deliver_by or self.shipped_at

    @property
    def valid(self) -> bool:
        """Valid tracking as Amazon counts it: at least one carrier scan, uploaded before the
        parcel was delivered (tracking confirmed after delivery is a defect whatever it shows), and
        filed by Amazon under the carrier code sent (tracking under "Other", or under another
        carrier, is not valid whatever it shows)."""
        late = (self.confirmed_at is not None and self.delivered_at is not None
                and self.confirmed_at > self.delivered_at)
        return self.scans > 0 and not late and self.filed_as is None

    @property
    def meets_tracking_level(self) -> bool:
        """Enough scans for the level the order required; "fully tracked" also needs the door."""
        return self.scans >= self.min_scans and (self.tracking_level != "fully_tracked" or self.reached_door)


def shipped_packages(rt: Runtime, *, since: datetime) -> Iterator[Shipped]:
    """Every package confirmed on Amazon whose promised delivery is ``since`` or later (held orders
    included: a parcel whose void was refused still counts), one ledger page at a time."""
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
            yield Shipped(
                p.order_id, p.site, categories[p.skus], p.carrier, p.service, p.state, p.shipped_at,
                p.confirmed_at, p.first_scan_at, p.delivered_at, p.scans, p.ship_by, p.deliver_by,
                tracking_level=p.tracking_level, min_scans=p.min_scans,
                reached_door=p.delivered_at is not None or p.failed_attempt,
                to_door=to_door[service], filed_as=p.filed_as)


_PAGE = 500  # packages per ledger read


def _categories(rt: Runtime, skus: tuple[str, ...]) -> tuple[str, ...]:
    """The product categories of an order's items (the item master's; NO_CATEGORY without one)."""
    found = {(item.category if item else "") or NO_CATEGORY for item in (rt.catalog.get(s) for s in skus)}
    return tuple(sorted(found)) or (NO_CATEGORY,)


def report(packages: Iterable[Shipped], *, now: datetime, window_days: float,
           first_scan_days: float) -> dict[str, Any]:
    """The figures over ``packages``, counted in one pass as they come: a tally per group, never
    the packages themselves (a month of a large seller's parcels is 100,000 of them)."""
    start = now - timedelta(days=window_days)
    pending_after = timedelta(days=first_scan_days)
    by_category: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    by_site: dict[str, _Tally] = defaultdict(_Tally)
    by_service: dict[tuple[str, str], _ServiceTally] = defaultdict(_ServiceTally)
    states: dict[str, int] = defaultdict(int)
    counted_in_window = late_confirmations = settled = met = 0
    for p in packages:
        promised = p.promised
        if promised < start:
            continue
        counted_in_window += 1
        counted = promised <= now
        valid = p.valid
        # not pending a first scan: scanned, past the wait, or filed so that no scan can make it valid
        is_settled = p.scans > 0 or p.filed_as is not None or now - p.shipped_at > pending_after
        for category in p.categories:
            by_category[(p.site, category)].add(counted, valid, is_settled)
        by_site[p.site].add(counted, valid, is_settled)
        service = by_service[(p.carrier, p.service)]
        service.add(counted, valid, is_settled)
        service.add_delivery(p, now)
        states[p.state.value] += 1
        if p.confirmed_at and p.ship_by and p.confirmed_at > p.ship_by:
            late_confirmations += 1
        if p.state in _SETTLED:
            settled += 1
            met += p.meets_tracking_level
    return {
        "window": {"days": window_days, "from": start.isoformat(), "to": now.isoformat()},
        "packages": counted_in_window,
        "vtr": [{"site": site, "category": category, **tally.rates()}
                for (site, category), tally in sorted(by_category.items())],
        "sites": [{"site": site, **tally.rates()} for site, tally in sorted(by_site.items())],
        "services": [{"carrier": carrier, "service": service, **tally.rates(), **tally.delivery()}
                     for (carrier, service), tally in sorted(by_service.items())],
        "confirmations_after_ship_by": late_confirmations,
        "tracking_requirement": {"met": met, "of": settled},
        "states": dict(sorted(states.items())),
    }


class _Tally:
    """One group's rate: packages counted (promise passed), valid among them, all of the group
    (the rest are upcoming), settled (not pending a first scan) and valid among those."""

    __slots__ = ("total", "counted", "valid", "settled", "settled_valid")

    def __init__(self) -> None:
        self.total = self.counted = self.valid = self.settled = self.settled_valid = 0

    def add(self, counted: bool, valid: bool, settled: bool) -> None:
        self.total += 1
        if counted:
            self.counted += 1
            self.valid += valid
        if settled:
            self.settled += 1
            self.settled_valid += valid

    def rates(self) -> dict[str, Any]:
        return {"packages": self.counted, "valid": self.valid, "rate": _percent(self.valid, self.counted),
                "upcoming": self.total - self.counted, "pending": self.total - self.settled,
                "settled": self.settled, "projected": _percent(self.settled_valid, self.settled)}


class _ServiceTally(_Tally):
    """A carrier service's rate, and its delivery: on time against the promise, lost and late
    parcels, first-scan latency and transit (their values kept for the percentiles)."""

    __slots__ = ("delivered", "promised", "on_time", "late", "lost", "first_scan_hours", "transit_days")

    def __init__(self) -> None:
        super().__init__()
        self.delivered = self.promised = self.on_time = self.late = self.lost = 0
        self.first_scan_hours: list[float] = []
        self.transit_days: list[float] = []

    def add_delivery(self, p: Shipped, now: datetime) -> None:
        if p.delivered_at is not None:
            self.delivered += 1
            self.transit_days.append((p.delivered_at - p.shipped_at).total_seconds() / 86400)
            if p.deliver_by is not None:
                self.promised += 1
                self.on_time += p.delivered_at <= p.deliver_by
        if p.to_door and p.deliver_by is not None and (p.delivered_at or now) > p.deliver_by:
            self.late += 1  # a service tracked only to the handover cannot know
        self.lost += p.state is PackageState.LOST
        if p.first_scan_at is not None:
            self.first_scan_hours.append((p.first_scan_at - p.shipped_at).total_seconds() / 3600)

    def delivery(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered, "lost": self.lost, "late": self.late,
            "on_time": {"delivered": self.promised, "on_time": self.on_time,
                        "rate": _percent(self.on_time, self.promised)},
            "first_scan_hours": _spread(self.first_scan_hours),
            "transit_days": _spread(self.transit_days),
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
