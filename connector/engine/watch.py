"""The watch: alerts on what is about to cost the seller -- an order near its ship-by date that is
not confirmed yet, and a valid-tracking rate heading below Amazon's bar. Runs every few minutes
of the daemon's clock (engine/loop.py); the tracking stage raises the per-parcel alerts."""
from __future__ import annotations

from datetime import datetime, timedelta

from ..ledger import ACTIVE_ORDER_STATES, SHIPPED_ORDER_STATES, OrderRecord, OrderState
from ..model import utcnow
from .alerts import AlertKind, alert, clear
from .runtime import Runtime
from .vtr import report, shipped_packages


def watch(rt: Runtime, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    ship_by_guard(rt, now)
    vtr_guard(rt, now)


def ship_by_guard(rt: Runtime, now: datetime) -> None:
    """Alert for each order not confirmed yet (unlabelled, held or in flight) within
    ``alerts.ship_by_warning_hours`` of its ship-by date; clear it once it ships."""
    warning = timedelta(hours=rt.config.alerts.ship_by_warning_hours)
    for record in rt.ledger.orders([*ACTIVE_ORDER_STATES, OrderState.HELD]):
        ship_by = record.order.ship_by
        if ship_by is None or ship_by - now > warning or confirmed_on_amazon(record):
            continue
        left = ship_by - now
        when = (f"{_hours(left)} before ship-by" if left.total_seconds() > 0
                else f"ship-by passed {_hours(-left)} ago")
        why = f" (held: {record.hold_reason})" if record.state == OrderState.HELD else ""
        alert(rt, AlertKind.SHIP_BY_NEAR, record.order_id,
              f"order {record.order_id} ({record.order.site}) is {record.state.value}{why}, {when}",
              ship_by=ship_by.isoformat(), state=record.state.value,
              hours_left=round(left.total_seconds() / 3600, 1))
    for open_alert in rt.ledger.alerts():
        if open_alert.kind != AlertKind.SHIP_BY_NEAR.value:
            continue
        record = rt.ledger.get_order(open_alert.subject)
        if record is None or confirmed_on_amazon(record) or record.state in _NOTHING_TO_SHIP:
            clear(rt, AlertKind.SHIP_BY_NEAR, open_alert.subject)


_NOTHING_TO_SHIP = (OrderState.CANCELLED, OrderState.VOIDED)


def confirmed_on_amazon(record: OrderRecord) -> bool:
    """Confirmed (or shipped) on Amazon, a held order by the state it was held from."""
    state = record.held_from if record.state == OrderState.HELD else record.state
    return state == OrderState.CONFIRMED or state in SHIPPED_ORDER_STATES


def vtr_guard(rt: Runtime, now: datetime) -> None:
    """Alert when a site and category's projected valid-tracking rate, or a carrier service's, is
    below its threshold (with at least ``alerts.min_packages`` settled packages); clear when back."""
    settings = rt.config.alerts
    figures = report(shipped_packages(rt, since=now - timedelta(days=settings.window_days)), now=now,
                     window_days=settings.window_days, first_scan_days=rt.config.tracking.first_scan_days)
    for row in figures["vtr"]:
        _guard(rt, AlertKind.VTR_BELOW_THRESHOLD, f"{row['site']}/{row['category']}", row,
               settings.vtr_threshold, settings.min_packages)
    for row in figures["services"]:
        _guard(rt, AlertKind.SERVICE_VTR_BELOW_THRESHOLD, f"{row['carrier']}:{row['service']}", row,
               settings.service_vtr_threshold, settings.min_packages)


_FIGURES = ("packages", "valid", "rate", "upcoming", "pending", "settled", "projected")


def _guard(rt: Runtime, kind: AlertKind, subject: str, row: dict, threshold: float, minimum: int) -> None:
    projected = row["projected"]
    if projected is not None and row["settled"] >= minimum and projected < threshold:
        alert(rt, kind, subject, f"{subject}: projected valid-tracking rate {projected:.1f}% is below "
              f"{threshold:g}% ({row['pending']} package(s) still waiting for a first scan)",
              **{k: row[k] for k in _FIGURES})
    elif projected is None or projected >= threshold:
        clear(rt, kind, subject)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
