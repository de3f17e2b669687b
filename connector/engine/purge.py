"""Data protection: erase buyer PII once Amazon's retention window has passed.

Amazon's Data Protection Policy allows buyer PII for 30 days after delivery
(docs/amazon-sp-api.md#data-protection). The address goes ``ledger.pii_retention_days`` after the
parcel's life ended: its delivery, or its return to the sender. Only a parcel that never reaches
such an end (lost, or not followed any more) falls back to the ship date +
``ledger.max_transit_days`` + the retention. A cancelled or voided order keeps nothing, and neither
does a held order Amazon has cancelled: nothing of it can ship any more (Amazon confirms no shipment
of a cancelled order), and a hold no one settles must not keep the address for good. A held order
Amazon shows shipped by someone else (held ``shipped_elsewhere`` or ``already_shipped``, no parcel
of it followed here) is a parcel never followed to an end: its address goes at the same fallback,
counted from Amazon's last update of the order (which shows it shipped, so it is not before the
shipment). Any other held order with no parcel followed here goes at its ship-by (or its arrival
in the ledger, when later or without one) + ``max_transit_days`` + the retention: nobody ships it any
more. (An order that arrives long past its ship-by -- an ERP's may lie a year back -- came to be
shipped now: its clock starts there.)

An order nobody ships that is not held -- NEW or PLANNED for ever, say deferred for carrier
credentials nobody fixes -- goes at the same clock, as long as no label was claimed or bought
for it (every package of it planned, failed or voided): a claim in flight, a label bought and not
confirmed yet (LABELED, in a feed or not) or anything later keeps the address, and the order is
purged by the rule of the state it reaches. Such an order is held ``address_purged`` and its address
erased in one transaction, which asks the rule again under its lock, taken while the order's own
lock (the one it is driven under) is held: an order a step is working on is left to the next
sweep. Its planned package is given up (FAILED), so even a label claim racing the purge would fail
its compare-and-set and buy nothing; a release plans it again, and planning holds it again (no
address). Order ids, tracking numbers and
totals stay.

A label shows the buyer's name and address, so it goes with them: the purge marks the order's labels
erased in the same transaction (``label_erased_at``: never served or printed again), and
:func:`delete_erased_files` deletes from disk the label files of every purged order (voided labels
too) and every print batch holding one of their labels. That sweep reads the disk, not what the
last pass did: run after each purge and by every worker (each deletes what is on its own disk), it
also deletes what a crash between the purge and the deletion left, and the files of orders purged
before labels were erased. A file nothing records -- a half-written leftover of a crash, a print
batch written but not recorded -- is never used again, and goes once it is an hour old.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..holds import HoldReason
from ..ledger import (
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    TRACKED_PACKAGE_STATES,
    OrderState,
    Package,
    PackageState,
)
from ..ledger.base import unstorable_text
from ..model import utcnow
from .runtime import Runtime

log = logging.getLogger("connector.engine")

_CONFIRMED = frozenset({PackageState.CONFIRMED, *TRACKED_PACKAGE_STATES})
# Orders on their way to a label, and the packages that leave the address unneeded: none claimed
# or bought (a planned one is given up at the purge). Any other package state keeps the address.
UNSHIPPED_ORDER_STATES = (OrderState.NEW, OrderState.PLANNED)
UNBOUGHT_PACKAGE_STATES = (PackageState.PLANNED, PackageState.FAILED, PackageState.VOIDED)
LEFTOVER_SECONDS = 3600.0  # a file nothing records (a crash's leftover) goes once this old


def purge_expired_pii(rt: Runtime, *, now: datetime | None = None) -> int:
    """Erase the addresses past the retention window; returns how many. The ledger selects them in
    SQL by the rule :func:`life_end` states (and, for orders nobody shipped, by their ship-by),
    reading only the orders whose address is still there and decrypting nothing, so an hourly sweep
    with nothing due costs next to nothing however long the history. An unshipped NEW or PLANNED
    order is held ``address_purged`` in the same transaction as its address goes."""
    settings = rt.config.ledger
    retention = timedelta(days=settings.pii_retention_days)
    fallback = timedelta(days=settings.max_transit_days)
    now = now or utcnow()
    shipped = [*SHIPPED_ORDER_STATES, OrderState.HELD, OrderState.ISSUED]
    expired = rt.ledger.pii_expired(
        gone=NOTHING_TO_SHIP_STATES,  # nothing to ship: no reason to keep the address
        shipped=shipped,
        confirmed=_CONFIRMED, ended_before=now - retention, shipped_before=now - retention - fallback,
        cancelled=[OrderState.HELD],  # what else Amazon cancelled settles soon: void or cancel
        shipped_elsewhere=[OrderState.HELD],  # shipped by someone else: held, never followed
        abandoned=[OrderState.HELD])  # held past ship-by + the fallback: nobody will ship it now
    # An order that left these states since it was selected (a held one released) is left as it is
    purged = rt.ledger.purge_pii(expired, states=[*NOTHING_TO_SHIP_STATES, *shipped]) if expired else 0
    if purged:
        log.info("purged buyer PII of %d order(s) past the retention window", purged)
    held = _purge_unshipped(rt, due_before=now - retention - fallback, message=(
        f"nobody shipped it within ledger.max_transit_days ({settings.max_transit_days}) + "
        f"ledger.pii_retention_days ({settings.pii_retention_days}) days of its ship-by (of its arrival "
        "in the ledger, when later), so its buyer's address was erased (data protection) before any label "
        "was bought, and nothing can be bought for it any more. Ship it outside the daemon, or cancel it "
        "in Seller Central"))
    if held:
        rt.counters.add("held", len(held))
        for order_id in held:
            log.warning("order %s held: %s: nobody shipped it within the retention window; its "
                        "buyer's address was erased before any label was bought", order_id,
                        HoldReason.ADDRESS_PURGED.value)
        log.info("purged buyer PII of %d unshipped order(s) past the retention window, and held them",
                 len(held))
    return purged + len(held)


def _purge_unshipped(rt: Runtime, *, due_before: datetime, message: str) -> list[str]:
    """Hold ``address_purged`` and erase the address of each NEW or PLANNED order past
    ``due_before`` with no label claimed or bought; returns their ids. Each is done under the lock
    its order is driven under (:meth:`Runtime.driving`, never waited for): an order a step is
    working on now (shopping for a plan, about to claim a label) is left to the next sweep. The
    ledger asks the rule again inside its write, so an order that moved on since it was selected
    keeps its address."""
    due = rt.ledger.pii_unshipped_expired(unshipped=UNSHIPPED_ORDER_STATES, unbought=UNBOUGHT_PACKAGE_STATES,
                                          due_before=due_before)
    held: list[str] = []
    for order_id in due:
        with rt.driving(order_id) as mine:
            if not mine:
                log.info("order %s: its buyer's address is due for erasure, but a step is working on it; "
                         "the next sweep erases it", order_id)
                continue
            held += rt.ledger.purge_unshipped_pii(
                [order_id], unshipped=UNSHIPPED_ORDER_STATES, unbought=UNBOUGHT_PACKAGE_STATES,
                due_before=due_before, reason=HoldReason.ADDRESS_PURGED.value, message=message)
    return held


def life_end(package: Package, fallback: timedelta) -> datetime | None:
    """When the parcel's life ended (delivered, returned), or its ship date + ``fallback`` when it
    never reached an end; None for a package not confirmed on Amazon (a held order's PII stays
    while it may still ship). An order's address goes once its packages with an end all ended
    ``pii_retention_days`` ago (and at least one has an end): the rule the ledger's
    ``pii_expired`` applies in SQL. A DELIVERED package stored without a delivery time (the
    carrier's overall status said delivered, no event did: tracking now takes the newest scan)
    ended at its last scan, else when it was last updated."""
    if package.state is PackageState.DELIVERED:
        return package.delivered_at or package.last_scan_at or package.updated_at
    if package.state is PackageState.RETURNED and package.last_scan_at:
        return package.last_scan_at
    if package.shipped_at and package.state in _CONFIRMED:
        return package.shipped_at + fallback
    return None


@dataclass
class Deleted:
    """What one sweep of :func:`delete_erased_files` deleted (and failed to)."""

    labels: int = 0
    batches: int = 0
    leftovers: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.labels + self.batches + self.leftovers


def delete_erased_files(rt: Runtime) -> Deleted:
    """Delete from this host's disk what shows an address the ledger no longer keeps:

    * a label file under ``labels_dir`` (``<order id>-<package>.pdf``) whose order's buyer data is
      purged;
    * a print batch (its recorded file, wherever it was written) holding a label of such an order:
      the batch goes whole, the other orders' labels stay on file and can be printed again;
    * an hour-old file nobody records: a half-written leftover (``.<name>.<random>``) in either
      folder, or a file in ``<state_dir>/print/`` that no batch recorded (a crash between writing a
      batch and recording it; its labels stayed unprinted and print again).

    Idempotent, and reads the folders and the batch records only, not the history of purged
    orders. A file that cannot be deleted is logged and tried again at the next sweep."""
    done = Deleted()
    _delete_labels(rt, rt.labels_dir, done)
    _delete_batches(rt, rt.config.state_dir / "print", done)
    if done.total:
        log.info("deleted %d label file(s), %d print batch(es) and %d leftover(s) of purged buyer data",
                 done.labels, done.batches, done.leftovers)
    return done


def _delete_labels(rt: Runtime, folder: Path, done: Deleted) -> None:
    files: dict[str, list[Path]] = {}
    old: list[Path] = []
    for path in _files(folder):
        name = path.name
        if _leftover(name):  # write_atomically's temporary file: .<name>.<random>
            if _old(path):
                old.append(path)
                continue
            name = name[1:name.find(".pdf.") + 4]
        order_id, _, ref = name[:-4].rpartition("-") if name.endswith(".pdf") else ("", "", "")
        if order_id and ref.isdigit() and not unstorable_text(order_id):  # else it names no order
            files.setdefault(order_id, []).append(path)
    purged = rt.ledger.purged_orders(list(files)) if files else set()
    for order_id in sorted(purged):
        for path in files[order_id]:
            done.labels += _delete(path, done)
    for path in old:
        done.leftovers += _delete(path, done)


def _delete_batches(rt: Runtime, folder: Path, done: Deleted) -> None:
    recorded = rt.ledger.print_batch_paths()  # oldest first
    # A file written again by a later batch (`labels print -o same.pdf`) holds that batch's labels
    # only: each file is judged by the newest batch recorded at it. A path recorded relative (by
    # an older version) would resolve against this process's directory, not the printer's: left.
    newest = {os.path.realpath(path): (batch, path) for batch, path in recorded
              if path and os.path.isabs(path)}
    on_disk = {batch: path for batch, path in newest.values() if os.path.isfile(path)}
    for batch in sorted(rt.ledger.print_batches_with_erased_labels(on_disk) if on_disk else ()):
        done.batches += _delete(Path(on_disk[batch]), done)
    known = {os.path.realpath(path) for _, path in recorded if path}
    for path in _files(folder):
        ours = path.suffix == ".pdf" or _leftover(path.name)
        if ours and os.path.realpath(path) not in known and _old(path):
            done.leftovers += _delete(path, done)


def _files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file())
    except FileNotFoundError:
        return []


def _leftover(name: str) -> bool:
    return name.startswith(".") and name.find(".pdf.") > 0


def _old(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > LEFTOVER_SECONDS
    except FileNotFoundError:
        return False


def _delete(path: Path, done: Deleted) -> bool:
    """Delete one file; True when it is gone by this call (False: gone already, or it failed)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        done.failed += 1
        log.warning("cannot delete %s (buyer data purged): %s; trying again at the next sweep",
                    path, exc.strerror or exc)
        return False
    return True
