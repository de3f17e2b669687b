"""The watch: alerts on what is about to cost the seller -- an order near its ship-by date that is
not confirmed yet or whose parcel is not printed and handed over yet, and a valid-tracking rate
heading below Amazon's bar. Runs every few minutes of the daemon's clock (engine/loop.py); the
tracking stage raises the per-parcel alerts (the watch clears those of a label voided since, and
those of a parcel tracking no longer follows)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import takewhile

from ..ledger import (
    ACTIVE_ORDER_STATES,
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    TRACKED_PACKAGE_STATES,
    CorruptRecordError,
    OrderRecord,
    OrderState,
)
from ..model import FulfillmentStatus, utcnow
from .alerts import AlertKind, alert, clear
from .runtime import Runtime
from .vtr import report, shipped_packages


def watch(rt: Runtime, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    ship_by_guard(rt, now)
    parcel_guard(rt, now=now)
    vtr_guard(rt, now)


def ship_by_guard(rt: Runtime, now: datetime) -> None:
    """Alert for each order within ``alerts.ship_by_warning_hours`` of its ship-by date that is not
    confirmed yet (unlabelled, held or in flight) -- or, once labels are printed here at all
    (``labels print``), whose label is bought but not printed, or printed but not handed over to
    its carrier. One alert per order, its message saying what is missing; it clears when the order
    is confirmed and its parcels handed over (or scanned), or when there is nothing to ship."""
    warning = timedelta(hours=rt.config.alerts.ship_by_warning_hours)
    paper = _paper_backlog(rt, ship_by_before=now + warning)
    # Earliest ship-by first, orders without one last, nothing decrypted: only the orders near
    # their ship-by are read, not every active and held order (a large held backlog).
    near = takewhile(lambda key: key.ship_by is not None and key.ship_by - now <= warning,
                     rt.ledger.schedule([*ACTIVE_ORDER_STATES, OrderState.HELD]))
    for _, record in _records(rt, (key.order_id for key in near)):
        if record is None or _awaits_no_confirmation(record) or _nothing_to_ship(record):
            continue
        _ship_by_alert(rt, record, now, paper.pop(record.order_id, ""))
    for order_id, record in _records(rt, list(paper)):  # confirmed on Amazon, not handed over yet
        if record is not None and record.order.ship_by is not None and not _nothing_to_ship(record):
            _ship_by_alert(rt, record, now, paper[order_id])
    alerted = [a.subject for a in rt.ledger.alerts() if a.kind == AlertKind.SHIP_BY_NEAR.value]
    for order_id, record in _records(rt, alerted):
        if record is None or _nothing_to_ship(record) or (
                not _awaits_confirmation(record) and not _paper_backlog(rt, order_id=order_id)):
            clear(rt, AlertKind.SHIP_BY_NEAR, order_id)


def parcel_guard(rt: Runtime, *, now: datetime | None = None) -> None:
    """Clear the ``parcel_lost`` and ``parcel_late`` alerts of orders that ended with nothing shipped
    (a label voided on request: the parcel never left), and of orders none of whose parcels
    tracking follows any more (``tracking.max_days`` after handover, a parcel that never arrived):
    tracking, which clears them otherwise, follows neither, and no command acknowledges an alert,
    so they would stay open for good. The parcel stays LOST; the alert stays in the history."""
    for kind in (AlertKind.PARCEL_LOST, AlertKind.PARCEL_LATE):
        for order_id, record in _records(rt, [a.subject for a in rt.ledger.alerts(kind=kind.value)]):
            if (record is None or record.state in NOTHING_TO_SHIP_STATES
                    or not _followed(rt, order_id, now or utcnow())):
                clear(rt, kind, order_id)


def _followed(rt: Runtime, order_id: str, now: datetime) -> bool:
    """Whether tracking still follows a parcel of the order (as ``packages_to_track`` picks them)."""
    given_up = now - timedelta(days=rt.config.tracking.max_days)
    return any(p.state in TRACKED_PACKAGE_STATES and (p.shipped_at or p.updated_at or now) > given_up
               for p in rt.ledger.packages(order_id))


def _records(rt: Runtime, order_ids: Iterable[str]) -> Iterator[tuple[str, OrderRecord | None]]:
    """Each order's record, without buyer data (None: not in the ledger). An order whose stored data
    cannot be read (a hand edit, a restore gone wrong) is passed over, its alerts kept: the daemon
    holds it ledger_inconsistent, and reading it must not stop the watch of every other order."""
    for order_id in order_ids:
        try:
            record = rt.ledger.get_order(order_id, with_pii=False)
        except CorruptRecordError:
            continue
        yield order_id, record


def _awaits_confirmation(record: OrderRecord) -> bool:
    return record.state in (*ACTIVE_ORDER_STATES, OrderState.HELD) and not _awaits_no_confirmation(record)


def _awaits_no_confirmation(record: OrderRecord) -> bool:
    """Confirmed on Amazon: by the daemon, or -- Amazon shows every item shipped -- by someone else
    (shipped by hand: held with nothing bought here); its ship-by is no risk any more."""
    return confirmed_on_amazon(record) or record.order.status is FulfillmentStatus.SHIPPED


def _ship_by_alert(rt: Runtime, record: OrderRecord, now: datetime, missing: str) -> None:
    ship_by = record.order.ship_by
    assert ship_by is not None
    left = ship_by - now
    when = (f"{_hours(left)} before ship-by" if left.total_seconds() > 0
            else f"ship-by passed {_hours(-left)} ago")
    why = f" (held: {record.hold_reason})" if record.state == OrderState.HELD else ""
    paper = f", {missing}" if missing else ""
    details = {"ship_by": ship_by.isoformat(), "state": record.state.value,
               "hours_left": round(left.total_seconds() / 3600, 1)}
    if missing:
        details["label"] = missing
    message = f"order {record.order_id} ({record.order.site}) is {record.state.value}{why}{paper}, {when}"
    alert(rt, AlertKind.SHIP_BY_NEAR, record.order_id, message, **details)


def _paper_backlog(rt: Runtime, *, ship_by_before: datetime | None = None,
                   order_id: str | None = None) -> dict[str, str]:
    """Order id -> what its labels still wait for ("label not printed", "label printed, not handed
    over"), for labels bought and not scanned yet; empty until a label was ever printed here (a
    seller who prints elsewhere is not told about paper)."""
    ledger = rt.ledger
    if not hasattr(ledger, "handover_backlog") or not ledger.printing_in_use():
        return {}
    found = ledger.handover_backlog(ship_by_before=ship_by_before, order_id=order_id)
    return {oid: "; ".join(dict.fromkeys("label printed, not handed over" if marks.printed
                                         else "label not printed" for _, marks in entries))
            for oid, entries in found.items()}


def _nothing_to_ship(record: OrderRecord) -> bool:
    """Ended with nothing shipped, or cancelled by Amazon (a held order whose label the daemon could
    not void, say): no ship-by to warn about."""
    return record.state in NOTHING_TO_SHIP_STATES or record.order.status is FulfillmentStatus.CANCELLED


def confirmed_on_amazon(record: OrderRecord) -> bool:
    """Confirmed (or shipped) on Amazon, a held order by the state it was held from."""
    state = record.held_from if record.state == OrderState.HELD else record.state
    return state == OrderState.CONFIRMED or state in SHIPPED_ORDER_STATES


def vtr_guard(rt: Runtime, now: datetime) -> None:
    """Alert when a site and category's valid-tracking rate, or a carrier service's, is below its
    threshold: the projected rate (with at least ``alerts.min_packages`` settled packages), or the
    rate over the window as Amazon counts it now (with as many counted); clear when both are back."""
    settings = rt.config.alerts
    figures = report(shipped_packages(rt, since=now - timedelta(days=settings.window_days)), now=now,
                     window_days=settings.window_days, first_scan_days=rt.config.tracking.first_scan_days)
    groups = {f"{row['site']}/{row['category']}": row for row in figures["vtr"]}
    for subject, row in groups.items():
        _guard(rt, AlertKind.VTR_BELOW_THRESHOLD, subject, row, settings.vtr_threshold, settings.min_packages)
    _clear_gone(rt, AlertKind.VTR_BELOW_THRESHOLD, groups)
    services = {f"{row['carrier']}:{row['service']}": row for row in figures["services"]}
    for subject, row in services.items():
        _guard(rt, AlertKind.SERVICE_VTR_BELOW_THRESHOLD, subject, row, settings.service_vtr_threshold,
               settings.min_packages)
    _clear_gone(rt, AlertKind.SERVICE_VTR_BELOW_THRESHOLD, services)


def _clear_gone(rt: Runtime, kind: AlertKind, reported: dict[str, dict]) -> None:
    """Clear the open alerts of ``kind`` whose group has no package in the window any more (a
    service the seller moved off, a category no longer sold): no row comes to clear them."""
    for open_alert in rt.ledger.alerts(kind=kind.value):
        if open_alert.subject not in reported:
            clear(rt, kind, open_alert.subject)


_FIGURES = ("packages", "valid", "rate", "upcoming", "pending", "settled", "projected")


def _guard(rt: Runtime, kind: AlertKind, subject: str, row: dict, threshold: float, minimum: int) -> None:
    projected, rate = row["projected"], row["rate"]
    # The projection weighs in the parcels still ahead: fresh scanned ones can hide a window that
    # Amazon already judges below its bar, so the rate as it stands is watched too.
    low = []
    if projected is not None and row["settled"] >= minimum and projected < threshold:
        low.append(f"projected valid-tracking rate {projected:.1f}%")
    if rate is not None and row["packages"] >= minimum and rate < threshold:
        low.append(f"valid-tracking rate {rate:.1f}% now (promised delivery passed)")
    if low:
        alert(rt, kind, subject, f"{subject}: {' and '.join(low)} {'is' if len(low) == 1 else 'are'} below "
              f"{threshold:g}% "
              f"({row['pending']} package(s) still waiting for a first scan)",
              **{k: row[k] for k in _FIGURES})
    elif (projected is None or projected >= threshold or row["settled"] < minimum) \
            and (rate is None or rate >= threshold or row["packages"] < minimum):
        # (a figure over fewer than ``minimum`` packages raises nothing: nor does it keep an alert open)
        clear(rt, kind, subject)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
