"""Stage 6, track: every confirmed parcel followed at its carrier until its life ends.

    VERIFIED / ISSUED ──first scan──► IN_TRANSIT ──► OUT_FOR_DELIVERY ──► DELIVERED
        │                                 ├──► DELIVERY_FAILED (an attempt failed; may still be delivered)
        │                                 └──► RETURNING ──► RETURNED
        └── no scan for tracking.first_scan_days, or none for tracking.stalled_days ──► LOST
            (the second only for services tracked to the door: see service_tracking_level)

Each pass polls the parcels that are due (``next_track_at``), longest waiting first, in each
carrier's tracking batch size (its quota is its plugin's business: the kit's transport paces it).
It starts no new call after a stop request or ``tracking.pass_seconds``; the parcels it did not
reach stay due and go first next pass. A poll that finds nothing new moves only the parcel's next
poll time, which leaves no row in its history.
The carrier's events are stored normalised (code, time with zone, location, the carrier's text
and the English one) and the package's state, scan count, first and last scan and delivery time
follow them. Polling slows as a parcel ages (``tracking.cadence``) and stops at a terminal state
or ``tracking.max_days`` after handover. A carrier that fails is asked again later
(``tracking.retry_minutes``) and holds nothing up; a parcel whose part of the answer is malformed
(``TrackingInfo.error``) fails alone, the rest of its batch is stored. Parcels that turn LOST or pass their
deliver-by date raise alerts, and so does a carrier whose tracking refuses the configured
credentials (no parcel of it can be followed), until it answers again. See docs/tracking.md.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..kit.carrier import Carrier, CarrierError, CarrierSpec
from ..kit.values import chunks
from ..ledger import CorruptRecordError, Package, PackageState, StaleStateError, TrackingRecord
from ..ledger.base import TERMINAL_PACKAGE_STATES, order_state_of, unstorable_text
from ..ledger.crypto import PiiDecryptError
from ..model import Address, TrackingEvent, TrackingInfo, TrackingStatus, utcnow
from .alerts import AlertKind, alert, clear
from .carrier_calls import timed, tracking_credentials_accepted, tracking_credentials_refused
from .crashpoints import crashpoint
from .outcome import orders_words, their_words
from .runtime import Runtime

log = logging.getLogger("connector.engine")

SCAN_STATUSES = frozenset({TrackingStatus.ACCEPTED, TrackingStatus.IN_TRANSIT, TrackingStatus.CUSTOMS,
                           TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.DELIVERED,
                           TrackingStatus.FAILED_ATTEMPT, TrackingStatus.RETURNING, TrackingStatus.RETURNED})
"""Statuses that are carrier scans: what Amazon's valid-tracking rate counts. An "information
received" notice (PENDING) is the label, not a scan."""

_STATE_OF = {
    TrackingStatus.ACCEPTED: PackageState.IN_TRANSIT,
    TrackingStatus.IN_TRANSIT: PackageState.IN_TRANSIT,
    TrackingStatus.CUSTOMS: PackageState.IN_TRANSIT,
    TrackingStatus.OUT_FOR_DELIVERY: PackageState.OUT_FOR_DELIVERY,
    TrackingStatus.DELIVERED: PackageState.DELIVERED,
    TrackingStatus.FAILED_ATTEMPT: PackageState.DELIVERY_FAILED,
    TrackingStatus.RETURNING: PackageState.RETURNING,
    TrackingStatus.RETURNED: PackageState.RETURNED,
}
_FINAL = frozenset({PackageState.DELIVERED, PackageState.RETURNED})
_STALLS = frozenset({PackageState.IN_TRANSIT, PackageState.OUT_FOR_DELIVERY, PackageState.DELIVERY_FAILED})
# Labels handed over and never scanned: VERIFIED, or ISSUED (handed to an ERP unconfirmed: its
# parcel is followed the same, and one that never scans is as lost)
_UNSCANNED = frozenset({PackageState.VERIFIED, PackageState.ISSUED})


@dataclass
class TrackResult:
    polled: int = 0
    moved: int = 0
    failed: int = 0
    left: int = 0  # due parcels the pass did not reach (a stop request, or tracking.pass_seconds)


def track_due(rt: Runtime, *, now: datetime | None = None, stopping: Callable[[], bool] = lambda: False,
              clock: Callable[[], float] = time.monotonic) -> TrackResult:
    """Poll the parcels that are due now; returns what the pass did.

    The pass ends early between two carrier calls (the call in flight finishes and is stored) on a
    stop request (``stopping()``) or once ``tracking.pass_seconds`` have gone by on ``clock``, so
    the leader's other jobs are not held up by a slow carrier. The parcels it did not reach keep
    their ``next_track_at``: still due, and longest waiting, they are the first the next pass polls.
    Calls go out in the order the parcels fell due, across carriers, so no carrier's backlog keeps
    another's parcels waiting pass after pass."""
    now = now or utcnow()
    settings = rt.config.tracking
    ends = clock() + settings.pass_seconds
    due = rt.ledger.packages_to_track(due_before=now, shipped_after=now - timedelta(days=settings.max_days),
                                      limit=settings.per_pass)
    place = {package.id: i for i, package in enumerate(due)}
    by_carrier: dict[str, list[Package]] = defaultdict(list)
    for package in due:
        by_carrier[package.carrier].append(package)
    result = TrackResult()
    calls: list[tuple[int, Carrier, CarrierSpec, list[Package]]] = []
    for code, packages in by_carrier.items():
        carrier, spec = rt.carriers.get(code), rt.carrier_specs.get(code)
        if carrier is None or spec is None:
            _failed(rt, packages, now, f"carrier {code} is not configured")
            result.failed += len(packages)
            continue
        size = spec.batch_sizes.get("track") or settings.batch_size
        # one request per call: a failed one would throw the answers the call read before it away
        size = min(size, getattr(carrier, "track_batch_size", None) or size)
        calls += [(place[batch[0].id], carrier, spec, batch) for batch in chunks(packages, size)]
    calls.sort(key=lambda call: call[0])  # the longest waiting parcel's call first
    for i, (_, carrier, spec, batch) in enumerate(calls):
        why = "a stop request" if stopping() else (
            f"tracking.pass_seconds ({settings.pass_seconds:g} s)" if i and clock() >= ends else "")
        if why:
            result.left = sum(len(b) for _, _, _, b in calls[i:])
            log.info("tracking pass ended by %s: %d due parcel(s) left for the next pass (polled first)",
                     why, result.left)
            break
        _poll(rt, carrier, spec, batch, now, result)
    return result


def _poll(rt: Runtime, carrier: Carrier, spec: CarrierSpec, batch: list[Package], now: datetime,
          result: TrackResult) -> None:
    numbers = [p.tracking_number for p in batch]
    try:
        infos = timed(spec.code, "track", lambda: carrier.track(numbers))
    except Exception as exc:  # noqa: BLE001 - a failing carrier is asked again later; nothing waits on it
        said = orders_words(rt, (p.order_id for p in batch), exc)
        if isinstance(exc, CarrierError) and exc.credentials_refused:  # no parcel of it can be tracked
            tracking_credentials_refused(rt, spec.code, said)
        _failed(rt, batch, now, f"{type(exc).__name__}: {said}")
        result.failed += len(batch)
        return
    crashpoint("after_track_call")
    tracking_credentials_accepted(rt, spec.code)
    found = {info.tracking_number: info for info in infos}
    for package in batch:
        info = found.get(package.tracking_number) or TrackingInfo(package.tracking_number,
                                                                  TrackingStatus.UNKNOWN)
        error = info.error or _unreadable(info)
        if error:  # this parcel's answer alone is bad: the rest of the batch is stored
            _failed(rt, [package], now, f"package {package.id} of order {package.order_id} "
                                        f"({package.tracking_number}): "
                                        f"{orders_words(rt, [package.order_id], error)}")
            result.failed += 1
            continue
        result.polled += 1
        try:
            result.moved += apply(rt, package, _storable_texts(info), now)
        except StaleStateError:
            continue  # moved by someone else meanwhile (a void); theirs now
    crashpoint("after_track")


def _unreadable(info: TrackingInfo) -> str:
    """What makes a plugin's answer for one parcel unstorable, or "": a naive event time (the
    contract says aware) would break the comparisons with every other time."""
    for i, event in enumerate(info.events):
        if not isinstance(event.time, datetime) or event.time.utcoffset() is None:
            return f"event {i} ({event.code or event.status.value}) has no time with a zone: {event.time!r}"
    return ""


_TEXT_FIELDS = ("code", "location", "description", "description_en")


def _storable_texts(info: TrackingInfo) -> TrackingInfo:
    """``info`` with its events' texts as the ledger can hold them: a lone surrogate (JSON allows
    it, UTF-8 cannot hold it) becomes U+FFFD and a NUL (PostgreSQL's text refuses it) goes. The
    ledger would refuse the write, ending the whole pass at this parcel, pass after pass; and
    failing the parcel instead would leave its scans, which the valid-tracking rate counts, unstored."""
    if all(_storable(getattr(e, name)) for e in info.events for name in _TEXT_FIELDS):
        return info
    events = tuple(replace(e, **{name: _storable_text(getattr(e, name)) for name in _TEXT_FIELDS})
                   for e in info.events)
    return replace(info, events=events)


def _storable(text: object) -> bool:
    return not isinstance(text, str) or not unstorable_text(text)  # (not text: judged by what reads it)


def _storable_text(text: object) -> object:
    if _storable(text):
        return text
    assert isinstance(text, str)
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "")


def _failed(rt: Runtime, packages: list[Package], now: datetime, error: str) -> None:
    retry = now + timedelta(minutes=rt.config.tracking.retry_minutes)
    log.info("tracking %d parcel(s) failed, retry at %s: %s", len(packages), retry.isoformat(), error[:300])
    for package in packages:
        try:
            rt.ledger.advance(package, package.state, package.state, next_track_at=retry,
                              track_failures=package.track_failures + 1)
        except StaleStateError:
            continue


def apply(rt: Runtime, package: Package, info: TrackingInfo, now: datetime) -> bool:
    """Store what the carrier says of one parcel and move it; True when its state changed."""
    settings = rt.config.tracking
    # A scan the answer lists twice is one scan (stored once, by the ledger's key): counted once
    scans = sorted({_event_key(e): e for e in info.events if e.status in SCAN_STATUSES}.values(),
                   key=lambda e: e.time)
    first = min([t for t in (package.first_scan_at, scans[0].time if scans else None) if t], default=None)
    last = max([t for t in (package.last_scan_at, scans[-1].time if scans else None) if t], default=None)
    delivered = next((e.time for e in scans if e.status is TrackingStatus.DELIVERED), package.delivered_at)
    state = package.state
    if scans:
        latest = info.status if info.status in _STATE_OF else scans[-1].status
        state = _STATE_OF.get(latest, PackageState.IN_TRANSIT)
    handover = package.shipped_at or package.confirmed_at or package.updated_at or now
    level = service_tracking_level(rt, package.carrier, package.service)
    to_door = level == "fully_tracked"
    if (level != "untracked" and state in _UNSCANNED
            and now - handover > timedelta(days=settings.first_scan_days)):
        state = PackageState.LOST
    elif (to_door and state in _STALLS and last is not None
          and now - last > timedelta(days=settings.stalled_days)):
        state = PackageState.LOST
    if state is PackageState.DELIVERED and delivered is None:
        # The carrier's overall status says delivered, none of its events does: delivered at its
        # newest scan (or now). Polling stops here, and the purge counts the retention from it.
        delivered = last or now
    age_days = (now - handover).total_seconds() / 86400
    next_at = None if state in _FINAL else now + timedelta(hours=settings.interval_hours(age_days))
    texts = _texts_of(rt, package.order_id) if info.events else _no_text  # (no event: none used)
    records = [TrackingRecord(package_id=package.id, at=e.time, status=e.status.value, code=e.code,
                              location=texts(e.location), description=texts(e.description),
                              description_en=texts(e.description_en or _english(e.description)))
               for e in info.events]
    if records and texts is _no_text:  # the carrier repeats its whole history: the events stored before
        stored = {(e.at, e.status, e.code) for e in rt.ledger.tracking_events(package.id)}  # with texts
        records = [r for r in records if (r.at, r.status, r.code) not in stored]
    moved = state is not package.state
    # (advance() notes only the values that change: a poll that found nothing new leaves no history row)
    updated = rt.ledger.advance(
        package, package.state, state, order_state=order_state_of(state) if moved else None, events=records,
        first_scan_at=first, last_scan_at=last, delivered_at=delivered, scans=max(package.scans, len(scans)),
        next_track_at=next_at, track_failures=0)
    _alerts(rt, updated, moved, now, to_door)
    return moved


def _event_key(event: TrackingEvent) -> tuple[object, ...]:
    """What makes a carrier event distinct: the ledger's unique key on its stored events."""
    return event.time, event.status, event.code, event.description


def _texts_of(rt: Runtime, order_id: str) -> Callable[[str], str]:
    """How the carrier's tracking texts of the order's parcel are stored: the order's address taken
    out (a last-mile scan may name who signed for the parcel, or the delivery postcode; the texts
    are shown to any `read` token and kept after the purge). Once the address is purged, or when no
    configured key reads it, nothing is left to take out: the texts are not kept at all (the
    event's status, code and time are), and the parcel is followed all the same. A parcel may still
    be followed then: the purge's fallback (ship date + ``max_transit_days`` + the retention) can
    come before ``tracking.max_days`` ends."""
    try:
        record = rt.ledger.get_order(order_id)
    except (PiiDecryptError, CorruptRecordError):
        return _no_text
    if record is not None and record.pii_purged:
        return _no_text
    buyer: Address | None = record.order.ship_to if record is not None else None
    return lambda text: their_words(buyer, text)


def _no_text(text: str) -> str:
    return ""


def service_tracking_level(rt: Runtime, carrier: str, service: str) -> str:
    """The tracking level of a carrier's service (``kit.carrier.TRACKING_LEVELS``). Only a
    ``fully_tracked`` service scans through delivery: one ``tracked`` to the destination's postal
    handover goes silent by design, which is not a loss and shows no delivery to be late for; an
    ``untracked`` one never scans."""
    spec = rt.carrier_specs.get(carrier)
    found = spec.service(service) if spec else None
    return found.tracking_level if found else "fully_tracked"


def _alerts(rt: Runtime, package: Package, moved: bool, now: datetime, to_door: bool) -> None:
    record = rt.ledger.get_order(package.order_id, with_pii=False)  # its dates only
    order = record.order if record else None
    if package.state is PackageState.LOST and moved:
        where = (f"no carrier scan {rt.config.tracking.first_scan_days:g} days after handover"
                 if not package.scans else f"no new scan since {package.last_scan_at:%Y-%m-%d}")
        alert(rt, AlertKind.PARCEL_LOST, package.order_id,
              f"order {package.order_id}: {package.carrier} parcel {package.tracking_number} looks lost "
              f"({where})", carrier=package.carrier, tracking_number=package.tracking_number,
              scans=package.scans)
    elif package.state is not PackageState.LOST and not _another(rt, package,
                                                                 lambda p: p is PackageState.LOST):
        clear(rt, AlertKind.PARCEL_LOST, package.order_id)
    deliver_by = order.deliver_by if order else None
    if deliver_by is None or not to_door:
        return
    if package.state in _ARRIVED and not _another(rt, package, lambda p: p not in TERMINAL_PACKAGE_STATES):
        clear(rt, AlertKind.PARCEL_LATE, package.order_id)
    elif now > deliver_by:
        alert(rt, AlertKind.PARCEL_LATE, package.order_id,
              f"order {package.order_id}: {package.carrier} parcel {package.tracking_number} is past its "
              f"deliver-by date {deliver_by:%Y-%m-%d} and not delivered ({package.state.value})",
              carrier=package.carrier, tracking_number=package.tracking_number,
              deliver_by=deliver_by.isoformat())


_ARRIVED = (PackageState.DELIVERED, PackageState.RETURNED)


def _another(rt: Runtime, package: Package, state_is: Callable[[PackageState], bool]) -> bool:
    """Whether another parcel of the package's order is in such a state. The parcel alerts are the
    order's (their subject is its id): one parcel delivered must not close the alert another,
    still lost or on its way, raised."""
    return any(p.id != package.id and state_is(p.state) for p in rt.ledger.packages(package.order_id))


def _english(text: str) -> str:
    """The carrier's text when it is already English (ASCII), else nothing."""
    return text if text.isascii() else ""
