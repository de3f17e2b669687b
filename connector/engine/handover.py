"""Handover: one carrier's printed parcels at one pickup, closed together at the end of the day.

For each carrier and pickup (a warehouse: the package plan's ``warehouse``, else ``main``) with
printed labels not handed over yet:

1. **claim** -- the handover row is written and its packages attached in one ledger transaction,
   before any carrier call;
2. **close at the carrier** -- where its API has a handover call (``Carrier.close_manifest``, sent
   with the handover's stable reference as its idempotency key); a carrier without one is
   recorded as such ("none"), a carrier that refuses as "refused" (the parcels still go);
3. **the handover list** -- a PDF to sign at the pickup and a CSV (tracking numbers, weights,
   counts), written atomically under ``<state_dir>/handover/<pickup date>/``;
4. **close** -- the handover and its packages' ``handed_over_at`` (the HANDED_OVER flag), in one
   transaction.

A run killed anywhere after step 1 leaves the handover claimed and not closed. The next run
finishes that handover first -- asking the carrier again under the same reference only when its
answer was not recorded -- and never claims those parcels again: one handover, one list.
A carrier's transient failure, or a list that cannot be written (a full or read-only disk), leaves
the handover open for the next run the same way.
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from ..files import write_atomically
from ..kit.carrier import NotSupported, PermanentCarrierError, TransientCarrierError
from ..ledger import Package
from ..ledger.warehouse import DEAD_LABEL_STATES, Handover, HandoverOpen, package_warehouse, package_weight_g
from ..model import utcnow
from .carrier_calls import retry_safe, shipment_of
from .crashpoints import crashpoint
from .outcome import orders_words
from .runtime import Runtime

log = logging.getLogger("connector.engine")

# Crash points of this module (connector/engine/crashpoints.py: MFN_CONNECTOR_CRASH_AT=<name>).
AFTER_HANDOVER_CLAIM = "after_handover_claim"    # claimed, the carrier not asked yet
AFTER_MANIFEST_CALL = "after_manifest_call"      # the carrier closed it, its answer not recorded yet
AFTER_HANDOVER_LIST = "after_handover_list"      # the list's files written, the handover not closed yet

CSV_COLUMNS = ("line", "tracking_number", "order_id", "package_ref", "carrier", "service", "weight_g",
               "printed_at", "handover_id", "warehouse", "pickup_date")


@dataclass(frozen=True)
class HandoverResult:
    handover: Handover
    resumed: bool = False   # an earlier, interrupted run had claimed it
    error: str = ""         # the carrier failed transiently or the list was not written: still open

    @property
    def closed(self) -> bool:
        return self.handover.closed


def close_handovers(rt: Runtime, *, carrier: str | None = None,
                    pickup_date: date | None = None) -> list[HandoverResult]:
    """Finish every handover an earlier run left open (of ``carrier``, or all), then claim and
    close one per carrier and pickup for the parcels printed up to the end of ``pickup_date``
    (UTC; default today) and not handed over yet."""
    day = pickup_date or utcnow().date()
    results = []
    seen: set[int] = set()
    for open_one in rt.ledger.open_handovers(carrier=carrier):
        seen.add(open_one.id)
        results.append(finish_handover(rt, open_one, resumed=True))
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    default = rt.config.default_warehouse.name
    groups: dict[tuple[str, str], list[Package]] = {}
    candidates = rt.ledger.handover_candidates(carrier=carrier, printed_before=end_of_day)
    for package in _not_cancelled(rt, _not_held(rt, candidates)):
        groups.setdefault((package.carrier, package_warehouse(package, default)), []).append(package)
    for (code, warehouse), packages in sorted(groups.items()):
        try:
            claimed = rt.ledger.claim_handover(code, warehouse, day.isoformat(), [p.id for p in packages],
                                               default_warehouse=default)
        except HandoverOpen as exc:  # another run claimed it meanwhile (or it is still open above)
            if exc.handover.id in seen:
                continue
            seen.add(exc.handover.id)
            results.append(finish_handover(rt, exc.handover, resumed=True))
            continue
        except ValueError:  # its parcels were claimed or voided meanwhile
            continue
        log.info("handover %s claimed: %s at %s, %s parcel(s)", claimed.id, code, warehouse, claimed.packages)
        crashpoint(AFTER_HANDOVER_CLAIM)
        seen.add(claimed.id)
        results.append(finish_handover(rt, claimed))
    return results


def _not_held(rt: Runtime, packages: list[Package]) -> list[Package]:
    """``packages`` but those of held orders: such a parcel waits for a person (a buyer who asked to
    cancel after it was printed), out of the bag; it joins a later handover once released."""
    holds = rt.ledger.holds_of([p.order_id for p in packages])
    held = [p for p in packages if p.order_id in holds]
    if held:
        log.warning("%d parcel(s) of held orders left out of the handover until released: %s", len(held),
                    ", ".join(f"{p.order_id} ({holds[p.order_id]})" for p in held))
    return [p for p in packages if p.order_id not in holds]


def _not_cancelled(rt: Runtime, packages: list[Package]) -> list[Package]:
    """``packages`` but those of orders Amazon cancelled whose labels the engine has not voided yet
    (its next step does): such a parcel must not travel, and is named to be taken out of the bag."""
    cancelled = rt.ledger.cancelled_on_amazon([p.order_id for p in packages])
    gone = [p for p in packages if p.order_id in cancelled]
    if gone:
        log.warning("%d parcel(s) of orders Amazon cancelled left out of the handover (their labels are "
                    "voided next; take them out of the bag): %s", len(gone),
                    ", ".join(f"{p.order_id} ({p.tracking_number or p.package_ref})" for p in gone))
    return [p for p in packages if p.order_id not in cancelled]


def finish_handover(rt: Runtime, handover: Handover, *, resumed: bool = False) -> HandoverResult:
    """Steps 2 to 4 for a claimed handover (each skipped when already done)."""
    if handover.closed:
        return HandoverResult(handover, resumed)
    handover, packages = _live_packages(rt, handover)
    if handover.manifest_state == "pending":
        carrier = rt.carriers.get(handover.carrier)
        if carrier is None:
            handover = rt.ledger.record_manifest(
                handover.id, "none", note=f"carrier {handover.carrier!r} is not configured: no handover call")
        else:
            try:
                ref = retry_safe(rt, handover.carrier, "close_manifest", lambda: carrier.close_manifest(
                    [shipment_of(p) for p in packages], reference=handover.reference))
            except NotSupported:
                handover = rt.ledger.record_manifest(
                    handover.id, "none", note=f"{handover.carrier} has no handover call; the list is the "
                    "record")
            except PermanentCarrierError as exc:  # kept on the handover and printed on its list
                said = orders_words(rt, (p.order_id for p in packages), exc)
                log.warning("handover %s: %s refused to close it: %s", handover.id, handover.carrier, said)
                handover = rt.ledger.record_manifest(handover.id, "refused", note=said)
            except TransientCarrierError as exc:
                said = orders_words(rt, (p.order_id for p in packages), exc)
                log.warning("handover %s: %s did not answer (%s); the next run finishes it", handover.id,
                            handover.carrier, said)
                return HandoverResult(handover, resumed, error=f"{handover.carrier}: {said}")
            except Exception as exc:  # noqa: BLE001 - the plugin's bug: it must not stop the other pickups
                said = orders_words(rt, (p.order_id for p in packages), exc)
                log.error("handover %s: %s's handover call failed (%s: %s), a bug of its plugin; the "
                          "handover stays open for the next run", handover.id, handover.carrier,
                          type(exc).__name__, said)
                return HandoverResult(handover, resumed, error=f"{handover.carrier}'s handover call failed "
                                                               f"({type(exc).__name__}: {said})")
            else:
                crashpoint(AFTER_MANIFEST_CALL)
                handover = rt.ledger.record_manifest(handover.id, "closed", ref=ref or "",
                                                     note=f"closed at {handover.carrier}")
    handover, packages = _live_packages(rt, handover)  # again: a label may be voided during the call
    try:
        pdf_path, csv_path = write_handover_list(rt, handover, packages)
    except OSError as exc:  # a full or read-only disk: left open like a carrier that did not answer
        where = exc.filename or handover_paths(rt, handover)[0].parent
        log.warning("handover %s: cannot write its list at %s (%s); the next run finishes it", handover.id,
                    where, exc.strerror or exc)
        return HandoverResult(handover, resumed, error=f"cannot write the handover list at {where}: "
                                                       f"{exc.strerror or exc}")
    crashpoint(AFTER_HANDOVER_LIST)
    handover = rt.ledger.close_handover(handover.id, pdf_path=str(pdf_path), csv_path=str(csv_path))
    log.info("handover %s closed: %s at %s, %s parcel(s), %s g; list %s", handover.id, handover.carrier,
             handover.warehouse, handover.packages, handover.weight_g, pdf_path)
    return HandoverResult(handover, resumed)


def _live_packages(rt: Runtime, handover: Handover) -> tuple[Handover, list[Package]]:
    """The handover's packages, after leaving out those whose labels were voided (or erased with
    the buyer's data) or whose orders Amazon cancelled since the claim: they are not handed over;
    nor, until released, those whose orders were held since."""
    packages = rt.ledger.handover_packages(handover.id)
    dead = [p for p in packages if p.state in DEAD_LABEL_STATES or p.label_erased_at is not None]
    if dead:
        handover = rt.ledger.leave_out_of_handover(handover.id, [p.id for p in dead],
                                                   "its label was voided or erased after the claim")
        log.warning("handover %s: %d parcel(s) left out, their labels voided or erased since the claim: %s",
                    handover.id, len(dead), ", ".join(p.tracking_number or p.package_ref for p in dead))
    packages = [p for p in packages if p not in dead]
    cancelled = rt.ledger.cancelled_on_amazon([p.order_id for p in packages])
    gone = [p for p in packages if p.order_id in cancelled]
    if gone:
        handover = rt.ledger.leave_out_of_handover(handover.id, [p.id for p in gone],
                                                   "Amazon cancelled its order after the claim")
        log.warning("handover %s: %d parcel(s) left out, their orders cancelled by Amazon since the claim "
                    "(take them out of the bag): %s", handover.id, len(gone),
                    ", ".join(f"{p.order_id} ({p.tracking_number or p.package_ref})" for p in gone))
    packages = [p for p in packages if p not in gone]
    holds = rt.ledger.holds_of([p.order_id for p in packages])
    held = [p for p in packages if p.order_id in holds]
    if held:  # like a held order's parcel at the claim: it waits, and joins a later handover once released
        handover = rt.ledger.leave_out_of_handover(handover.id, [p.id for p in held],
                                                   "its order was held after the claim")
        log.warning("handover %s: %d parcel(s) of orders held since the claim left out until released "
                    "(take them out of the bag): %s", handover.id, len(held),
                    ", ".join(f"{p.order_id} ({holds[p.order_id]})" for p in held))
    return handover, [p for p in packages if p not in held]


def handover_paths(rt: Runtime, handover: Handover) -> tuple[Path, Path]:
    folder = rt.config.state_dir / "handover" / handover.pickup_date
    stem = f"{handover.carrier}-{handover.warehouse}-{handover.id}"
    return folder / f"{stem}.pdf", folder / f"{stem}.csv"


def write_handover_list(rt: Runtime, handover: Handover, packages: Sequence[Package]) -> tuple[Path, Path]:
    """The handover list as PDF and CSV (written again, identically, when a run is repeated)."""
    marks = rt.ledger.label_marks(p.id for p in packages)
    pdf_path, csv_path = handover_paths(rt, handover)
    write_atomically(csv_path, handover_csv(handover, packages, marks).encode("utf-8"))
    write_atomically(pdf_path, handover_pdf(rt, handover, packages))
    return pdf_path, csv_path


def handover_csv(handover: Handover, packages: Sequence[Package], marks: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for n, package in enumerate(packages, start=1):
        printed = marks.get(package.id)
        writer.writerow((n, package.tracking_number, package.order_id, package.package_ref, package.carrier,
                         package.service, package_weight_g(package),
                         printed.printed_at.isoformat() if printed and printed.printed_at else "",
                         handover.id, handover.warehouse, handover.pickup_date))
    return out.getvalue()


def handover_pdf(rt: Runtime, handover: Handover, packages: Sequence[Package]) -> bytes:
    """An A4 list to sign at the pickup: header, one line per parcel, counts and weights."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    from .printing import BOLD, FONT, register_fonts

    register_fonts()
    spec = rt.carrier_specs.get(handover.carrier)
    label = spec.label if spec is not None else handover.carrier
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    width, height = A4
    left, right = 15 * mm, width - 15 * mm
    columns = (left, left + 10 * mm, left + 62 * mm, left + 112 * mm, left + 150 * mm)
    page = 0

    def header() -> float:
        nonlocal page
        page += 1
        y = height - 20 * mm
        canvas.setFont(BOLD, 14)
        canvas.drawString(left, y, f"HANDOVER LIST  {label}" + (f"  ({page})" if page > 1 else ""))
        canvas.setFont(FONT, 9)
        y -= 7 * mm
        canvas.drawString(left, y, f"Handover {handover.id}   carrier {handover.carrier}   pickup "
                                   f"{handover.warehouse}   date {handover.pickup_date}")
        y -= 5 * mm
        manifest = {"closed": f"closed at the carrier, reference {handover.manifest_ref or '-'}",
                    "none": "no handover call at this carrier: this list is the record",
                    "refused": f"the carrier refused the handover call: {handover.manifest_note}",
                    "pending": "the carrier's handover call is pending"}.get(handover.manifest_state, "")
        canvas.drawString(left, y, manifest[:110])
        y -= 8 * mm
        canvas.setFont(BOLD, 9)
        for x, title in zip(columns, ("#", "TRACKING NUMBER", "ORDER / PACKAGE", "SERVICE", "WEIGHT g"),
                            strict=True):
            canvas.drawString(x, y, title)
        canvas.line(left, y - 2 * mm, right, y - 2 * mm)
        return y - 7 * mm

    y = header()
    total = 0
    for n, package in enumerate(packages, start=1):
        if y < 40 * mm:
            canvas.showPage()
            y = header()
        weight = package_weight_g(package)
        total += weight
        canvas.setFont(FONT, 9)
        cells = (str(n), package.tracking_number, f"{package.order_id} #{package.package_ref}",
                 package.service, str(weight or ""))
        for x, text in zip(columns, cells, strict=True):
            canvas.drawString(x, y, text)
        y -= 6 * mm
    canvas.line(left, y + 3 * mm, right, y + 3 * mm)
    canvas.setFont(BOLD, 10)
    y -= 2 * mm
    canvas.drawString(left, y, f"PARCELS: {len(packages)}    TOTAL WEIGHT: {total} g ({total / 1000:.3f} kg)")
    y -= 14 * mm
    canvas.setFont(FONT, 9)
    canvas.drawString(left, y, "Handed over by: ____________________    "
                               "Received by (carrier): ____________________")
    y -= 8 * mm
    canvas.drawString(left, y, "Date / time: ____________________      Parcels counted: ________")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
