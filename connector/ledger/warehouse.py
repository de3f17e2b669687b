"""What happens to a label in the warehouse: printed (in batches), then handed over to its carrier.

Both are facts about the paper and the parcel, not steps of the package's state machine: the
confirmation, verification and tracking go on whether or not a label has been printed or the
parcel handed over. So they are columns of the package (``printed_at``, ``print_count``,
``handover_id``, ``handed_over_at``), shown as flags (``PRINTED``, ``HANDED_OVER``), and every
change writes a note into the package's history (a ``transitions`` row whose state does not move,
so no outbox event), in the same transaction.

* **Printing.** :meth:`WarehouseStore.record_print_batch` marks a batch's labels printed (a label
  printed again counts a reprint) and records the batch, in one transaction, after the merged PDF
  is on disk (connector/engine/printing.py).
* **Handover.** A handover is one carrier's printed parcels at one pickup (a warehouse).
  :meth:`~WarehouseStore.claim_handover` writes it and attaches its packages in one transaction
  before the carrier is asked to close anything; :meth:`~WarehouseStore.record_manifest` keeps the
  carrier's answer; :meth:`~WarehouseStore.close_handover` marks the packages handed over. A
  handover that is claimed and not closed is finished by the next run, never claimed again
  (connector/engine/handover.py).

Mixed into the SQL ledger stores; uses their ``_conn``/``_write``/``_now``/``_package``/``_transition``,
and ``_read_rows``/``_page``: a package whose JSON cannot be read is left out of the labels to print,
to list and to hand over, named in a warning.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..model import parse_iso
from .base import Package, PackageState, StaleStateError
from .timestamps import from_text as _dt
from .timestamps import to_text as _ts

DEFAULT_WAREHOUSE = "main"
_SQL_CHUNK = 500

# A label that was bought and not yet scanned by its carrier: what "labels print" prints by default
# and what the ship-by guard waits on.
UNSCANNED_LABEL_STATES = (PackageState.LABELED, PackageState.CONFIRMING, PackageState.CONFIRMED,
                          PackageState.VERIFIED, PackageState.ISSUED)
# No label, or a label that must not travel: never printed, never handed over.
DEAD_LABEL_STATES = (PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED,
                     PackageState.VOIDING, PackageState.VOIDED, PackageState.FAILED)
_DEAD = tuple(s.value for s in DEAD_LABEL_STATES)
_DEAD_MARKS = ", ".join("?" * len(_DEAD))
_UNSCANNED = tuple(s.value for s in UNSCANNED_LABEL_STATES)
_UNSCANNED_MARKS = ", ".join("?" * len(_UNSCANNED))

MANIFEST_STATES = ("pending", "closed", "none", "refused")
"""pending: the carrier not asked yet (or no answer); closed: its handover call answered; none: it
has no handover call; refused: it refused (the list is still made, the parcels still go)."""


class HandoverOpen(Exception):
    """A handover of this carrier and pickup is claimed and not closed yet: finish it first."""

    def __init__(self, handover: Handover) -> None:
        super().__init__(f"handover {handover.id} ({handover.carrier}, {handover.warehouse}) is claimed and "
                         "not closed yet")
        self.handover = handover


def package_warehouse(package: Package, default: str = DEFAULT_WAREHOUSE) -> str:
    """The pickup a package leaves from: its plan's ``warehouse``, else ``default`` (a package
    planned before warehouses were recorded left from the default warehouse)."""
    return str(package.plan.get("warehouse") or default)


def _handover_row(conn: Any, handover_id: int) -> Any:
    row = conn.execute("SELECT * FROM handovers WHERE id = ?", (handover_id,)).fetchone()
    if row is None:
        raise KeyError(f"unknown handover {handover_id}")
    return row


def package_weight_g(package: Package) -> int:
    """The parcel weight the label was bought for (0 when the plan has none, e.g. an ERP's label)."""
    parcel = package.plan.get("parcel") or {}
    try:
        return int(parcel.get("weight_g") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class LabelMarks:
    """Where a package's label is in the warehouse."""

    package_id: int
    printed_at: datetime | None = None       # first print
    last_printed_at: datetime | None = None
    print_count: int = 0                     # 2 and more: reprinted
    handover_id: int | None = None           # claimed for this handover
    handed_over_at: datetime | None = None   # that handover closed

    @property
    def printed(self) -> bool:
        return self.printed_at is not None

    @property
    def handed_over(self) -> bool:
        return self.handed_over_at is not None

    @property
    def flag(self) -> str:
        """HANDED_OVER, PRINTED or UNPRINTED: the label's place beside the package state."""
        return "HANDED_OVER" if self.handed_over else "PRINTED" if self.printed else "UNPRINTED"


@dataclass(frozen=True)
class PrintBatch:
    id: int
    created_at: datetime
    path: str
    labels: int
    reprints: int
    pages: int
    packing_slips: bool
    package_ids: tuple[int, ...]


@dataclass(frozen=True)
class Handover:
    """One carrier's printed parcels at one pickup, handed over together."""

    id: int
    carrier: str
    warehouse: str
    pickup_date: str                 # YYYY-MM-DD
    created_at: datetime
    manifest_state: str              # MANIFEST_STATES
    manifest_ref: str
    manifest_note: str
    manifest_at: datetime | None
    pdf_path: str
    csv_path: str
    packages: int
    weight_g: int
    closed_at: datetime | None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def reference(self) -> str:
        """The idempotency key sent with the carrier's handover call: stable across re-runs of this
        handover, and unlike any other ledger's (the claim time is part of it)."""
        return f"handover-{self.id}-{self.created_at:%Y%m%d%H%M%S}"


def _marks(row: Any) -> LabelMarks:
    return LabelMarks(package_id=int(row["id"]), printed_at=_dt(row["printed_at"]),
                      last_printed_at=_dt(row["last_printed_at"]), print_count=int(row["print_count"]),
                      handover_id=row["handover_id"], handed_over_at=_dt(row["handed_over_at"]))


def _batch(row: Any) -> PrintBatch:
    return PrintBatch(id=int(row["id"]), created_at=parse_iso(row["created_at"]), path=row["path"],
                      labels=int(row["labels"]), reprints=int(row["reprints"]), pages=int(row["pages"]),
                      packing_slips=bool(row["packing_slips"]),
                      package_ids=tuple(json.loads(row["package_ids"])))


def _handover(row: Any) -> Handover:
    return Handover(id=int(row["id"]), carrier=row["carrier"], warehouse=row["warehouse"],
                    pickup_date=row["pickup_date"], created_at=parse_iso(row["created_at"]),
                    manifest_state=row["manifest_state"], manifest_ref=row["manifest_ref"],
                    manifest_note=row["manifest_note"], manifest_at=_dt(row["manifest_at"]),
                    pdf_path=row["pdf_path"], csv_path=row["csv_path"], packages=int(row["packages"]),
                    weight_g=int(row["weight_g"]), closed_at=_dt(row["closed_at"]))


class WarehouseStore:
    """Print marks, print batches and handovers."""

    # -- reading --------------------------------------------------------------------------------
    def label_marks(self, package_ids: Iterable[int]) -> dict[int, LabelMarks]:
        """The print and handover marks of these packages (a package never printed has defaults)."""
        ids = list(dict.fromkeys(int(i) for i in package_ids))
        found: dict[int, LabelMarks] = {}
        for start in range(0, len(ids), _SQL_CHUNK):
            chunk = ids[start:start + _SQL_CHUNK]
            rows = self._conn().execute(
                "SELECT id, printed_at, last_printed_at, print_count, handover_id, handed_over_at"
                f" FROM packages WHERE id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
            found.update((int(r["id"]), _marks(r)) for r in rows)
        return found

    def unprinted_packages(self, *, carrier: str | None = None, limit: int | None = None) -> list[Package]:
        """Packages with a label on file (not erased), not scanned yet, never printed; by carrier,
        service, id."""
        sql = (f"SELECT * FROM packages WHERE printed_at IS NULL AND label_path != ''"
               f" AND label_erased_at IS NULL AND state IN ({_UNSCANNED_MARKS})")
        params: list[Any] = list(_UNSCANNED)
        if carrier is not None:
            sql += " AND carrier = ?"
            params.append(carrier)
        sql += " ORDER BY carrier, service, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._read_rows(self._conn().execute(sql, params).fetchall(), self._package)

    def label_page(self, *, order_id: str | None = None, carrier: str | None = None, flag: str | None = None,
                   after_id: int | None = None, limit: int = 50) -> list[tuple[Package, LabelMarks]]:
        """Packages with a live label (bought, not voided) and their marks, by id after
        ``after_id``; ``flag`` keeps only UNPRINTED, PRINTED (not handed over) or HANDED_OVER."""
        where = ["label_path != ''", f"state NOT IN ({_DEAD_MARKS})"]
        params: list[Any] = list(_DEAD)
        flags = {"UNPRINTED": "printed_at IS NULL",
                 "PRINTED": "printed_at IS NOT NULL AND handed_over_at IS NULL",
                 "HANDED_OVER": "handed_over_at IS NOT NULL"}
        if flag is not None:
            if flag not in flags:
                raise ValueError(f"flag must be one of {', '.join(flags)}, got {flag!r}")
            where.append(flags[flag])
        for column, value in (("order_id", order_id), ("carrier", carrier)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM packages WHERE {' AND '.join([*where, 'id > ?'])} ORDER BY id LIMIT ?"

        def fetch(after: int, n: int) -> list[Any]:
            return self._conn().execute(sql, (*params, after, n)).fetchall()

        return self._page(fetch, self._package_and_marks, lambda r: r["id"], int(after_id or 0), int(limit))

    def _package_and_marks(self, row: Any) -> tuple[Package, LabelMarks]:
        return self._package(row), _marks(row)

    def printing_in_use(self) -> bool:
        """Whether any label was ever printed here (the ship-by guard then waits on paper too)."""
        row = self._conn().execute("SELECT 1 FROM packages WHERE printed_at IS NOT NULL LIMIT 1").fetchone()
        return row is not None

    def print_batches(self, *, limit: int = 50) -> list[PrintBatch]:
        """The newest print batches first."""
        rows = self._conn().execute("SELECT * FROM print_batches ORDER BY id DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [_batch(r) for r in rows]

    def get_print_batch(self, batch_id: int) -> PrintBatch | None:
        row = self._conn().execute("SELECT * FROM print_batches WHERE id = ?", (int(batch_id),)).fetchone()
        return _batch(row) if row is not None else None

    def print_batch_paths(self) -> list[tuple[int, str]]:
        """Every print batch's id and the file it was written to, oldest first (their label lists
        are not read)."""
        return [(int(r[0]), r[1]) for r in
                self._conn().execute("SELECT id, path FROM print_batches ORDER BY id").fetchall()]

    def print_batches_with_erased_labels(self, batch_ids: Iterable[int]) -> set[int]:
        """Which of these print batches hold at least one erased label (its order's buyer data
        purged: connector/engine/purge.py)."""
        ids = list(dict.fromkeys(int(i) for i in batch_ids))
        members: dict[int, set[int]] = {}
        for start in range(0, len(ids), _SQL_CHUNK):
            chunk = ids[start:start + _SQL_CHUNK]
            for r in self._conn().execute(f"SELECT id, package_ids FROM print_batches WHERE id IN"
                                          f" ({', '.join('?' * len(chunk))})", chunk).fetchall():
                members[int(r["id"])] = {int(p) for p in json.loads(r["package_ids"])}
        every = sorted(set().union(*members.values())) if members else []
        erased: set[int] = set()
        for start in range(0, len(every), _SQL_CHUNK):
            chunk = every[start:start + _SQL_CHUNK]
            erased.update(int(r[0]) for r in self._conn().execute(
                f"SELECT id FROM packages WHERE id IN ({', '.join('?' * len(chunk))})"
                " AND label_erased_at IS NOT NULL", chunk).fetchall())
        return {batch for batch, packages in members.items() if packages & erased}

    def handover_backlog(self, *, ship_by_before: datetime | None = None,
                         order_id: str | None = None) -> dict[str, list[tuple[Package, LabelMarks]]]:
        """Order id -> its packages whose label exists, is not scanned and is not handed over
        (unprinted, or printed and waiting for the handover); with ``ship_by_before``, only orders
        whose ship-by is before it."""
        sql = ("SELECT p.* FROM packages p JOIN orders o ON o.order_id = p.order_id"
               f" WHERE p.handed_over_at IS NULL AND p.label_path != '' AND p.state IN ({_UNSCANNED_MARKS})")
        params: list[Any] = list(_UNSCANNED)
        if ship_by_before is not None:
            # orders.ship_by is model.iso() text (milliseconds); the same width compares as time
            sql += " AND o.ship_by IS NOT NULL AND o.ship_by < ?"
            moment = ship_by_before.astimezone(timezone.utc)
            params.append(moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z")
        if order_id is not None:
            sql += " AND p.order_id = ?"
            params.append(order_id)
        backlog: dict[str, list[tuple[Package, LabelMarks]]] = {}
        rows = self._conn().execute(sql + " ORDER BY p.id", params).fetchall()
        for package, marks in self._read_rows(rows, self._package_and_marks):
            backlog.setdefault(package.order_id, []).append((package, marks))
        return backlog

    # -- printing -------------------------------------------------------------------------------
    def record_print_batch(self, path: str, package_ids: Sequence[int], *, pages: int,
                           packing_slips: bool = False, first_prints: bool = False) -> PrintBatch:
        """Mark these packages' labels printed (again: a reprint) and record the batch written to
        ``path``, in one transaction. Each package's history gets a note. ``first_prints``: every
        label must still be unprinted -- else StaleStateError and nothing is recorded (another batch
        took them meanwhile). A label voided or erased since it was chosen is StaleStateError too."""
        ids = list(dict.fromkeys(int(i) for i in package_ids))
        if not ids:
            raise ValueError("a print batch needs at least one label")
        with self._write() as conn:
            now = self._now()
            cur = conn.execute("INSERT INTO print_batches (created_at, path, labels, reprints, pages,"
                               " packing_slips, package_ids) VALUES (?, ?, ?, 0, ?, ?, ?) RETURNING id",
                               (now, str(path), len(ids), int(pages), int(bool(packing_slips)),
                                json.dumps(ids)))
            batch_id = int(cur.fetchone()[0])
            reprints = 0
            for package_id in ids:
                row = conn.execute("SELECT order_id, package_ref, state, print_count, label_erased_at"
                                   " FROM packages WHERE id = ?", (package_id,)).fetchone()
                if row is None:
                    raise KeyError(f"unknown package {package_id}")
                # voided or erased while the batch was merged: it must not go out marked printed
                if row["state"] in _DEAD or row["label_erased_at"] is not None:
                    raise StaleStateError(f"the label of package {row['package_ref']} of order "
                                          f"{row['order_id']} was voided or erased meanwhile")
                count = int(row["print_count"]) + 1
                # compare-and-set: a batch that marked it first (PostgreSQL: concurrently) wins
                moved = conn.execute("UPDATE packages SET printed_at = COALESCE(printed_at, ?),"
                                     " last_printed_at = ?, print_count = ? WHERE id = ? AND print_count = ?",
                                     (now, now, count, package_id, count - 1))
                if moved.rowcount != 1 or (first_prints and count > 1):
                    raise StaleStateError(f"package {row['package_ref']} of order {row['order_id']} was "
                                          "printed by another batch meanwhile")
                reprints += count > 1
                what = "label printed" if count == 1 else f"label reprinted (print {count})"
                self._transition(conn, row["order_id"], package_id, now, row["state"], row["state"],
                                 f"package {row['package_ref']}: {what} in print batch {batch_id}")
            conn.execute("UPDATE print_batches SET reprints = ? WHERE id = ?", (reprints, batch_id))
            batch = conn.execute("SELECT * FROM print_batches WHERE id = ?", (batch_id,)).fetchone()
        return _batch(batch)

    # -- handover -------------------------------------------------------------------------------
    def handover_candidates(self, *, carrier: str | None = None,
                            printed_before: datetime | None = None) -> list[Package]:
        """Packages printed (before ``printed_before``), with a live label (not voided, not erased
        with its buyer's data), not claimed by any handover; by carrier, id."""
        sql = (f"SELECT * FROM packages WHERE printed_at IS NOT NULL AND handover_id IS NULL"
               f" AND label_path != '' AND label_erased_at IS NULL AND state NOT IN ({_DEAD_MARKS})")
        params: list[Any] = list(_DEAD)
        if carrier is not None:
            sql += " AND carrier = ?"
            params.append(carrier)
        if printed_before is not None:
            sql += " AND printed_at < ?"
            params.append(_ts(printed_before))
        rows = self._conn().execute(sql + " ORDER BY carrier, id", params).fetchall()
        return self._read_rows(rows, self._package)

    def open_handovers(self, *, carrier: str | None = None) -> list[Handover]:
        """Handovers claimed and not closed (a run was interrupted), oldest first."""
        sql, params = "SELECT * FROM handovers WHERE closed_at IS NULL", []
        if carrier is not None:
            sql += " AND carrier = ?"
            params.append(carrier)
        return [_handover(r) for r in self._conn().execute(sql + " ORDER BY id", params).fetchall()]

    def get_handover(self, handover_id: int) -> Handover | None:
        row = self._conn().execute("SELECT * FROM handovers WHERE id = ?", (handover_id,)).fetchone()
        return _handover(row) if row is not None else None

    def handovers(self, *, carrier: str | None = None, limit: int = 50,
                  before_id: int | None = None) -> list[Handover]:
        """Handovers newest first (ids below ``before_id``: the next page)."""
        where, params = [], []
        if carrier is not None:
            where.append("carrier = ?")
            params.append(carrier)
        if before_id is not None:
            where.append("id < ?")
            params.append(int(before_id))
        sql = "SELECT * FROM handovers" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._conn().execute(sql + " ORDER BY id DESC LIMIT ?", (*params, int(limit))).fetchall()
        return [_handover(r) for r in rows]

    def handover_packages(self, handover_id: int) -> list[Package]:
        """The packages a handover claimed, by service, id."""
        rows = self._conn().execute("SELECT * FROM packages WHERE handover_id = ? ORDER BY service, id",
                                    (handover_id,)).fetchall()
        return [self._package(r) for r in rows]

    def claim_handover(self, carrier: str, warehouse: str, pickup_date: str,
                       package_ids: Sequence[int], *, default_warehouse: str = DEFAULT_WAREHOUSE) -> Handover:
        """Write a handover and attach these packages to it, in one transaction, before anyone
        asks the carrier. Only packages of ``carrier`` at ``warehouse`` that are printed, live and
        not claimed yet are attached; ValueError when none is. HandoverOpen when this carrier and
        pickup already has an unclosed handover (finish that one first)."""
        ids = list(dict.fromkeys(int(i) for i in package_ids))
        with self._write() as conn:
            row = conn.execute("SELECT * FROM handovers WHERE carrier = ? AND warehouse = ?"
                               " AND closed_at IS NULL ORDER BY id LIMIT 1", (carrier, warehouse)).fetchone()
            if row is not None:
                raise HandoverOpen(_handover(row))
            now = self._now()
            eligible = []
            for start in range(0, len(ids), _SQL_CHUNK):
                chunk = ids[start:start + _SQL_CHUNK]
                rows = conn.execute(
                    f"SELECT * FROM packages WHERE id IN ({', '.join('?' * len(chunk))}) AND carrier = ?"
                    " AND printed_at IS NOT NULL AND handover_id IS NULL AND label_path != ''"
                    f" AND label_erased_at IS NULL AND state NOT IN ({_DEAD_MARKS})",
                    (*chunk, carrier, *_DEAD)).fetchall()
                eligible.extend(p for p in map(self._package, rows)
                                if package_warehouse(p, default_warehouse) == warehouse)
            if not eligible:
                raise ValueError(f"no printed {carrier} parcel at {warehouse} is waiting for a handover")
            weight = sum(package_weight_g(p) for p in eligible)
            cur = conn.execute("INSERT INTO handovers (carrier, warehouse, pickup_date, created_at, packages,"
                               " weight_g) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                               (carrier, warehouse, pickup_date, now, len(eligible), weight))
            handover_id = int(cur.fetchone()[0])
            for package in eligible:
                conn.execute("UPDATE packages SET handover_id = ? WHERE id = ?", (handover_id, package.id))
                self._transition(conn, package.order_id, package.id, now, package.state.value,
                                 package.state.value, f"package {package.package_ref}: claimed by handover "
                                 f"{handover_id} ({carrier}, {warehouse}, pickup {pickup_date})")
            row = conn.execute("SELECT * FROM handovers WHERE id = ?", (handover_id,)).fetchone()
        return _handover(row)

    def leave_out_of_handover(self, handover_id: int, package_ids: Sequence[int], why: str) -> Handover:
        """Detach these packages from an open handover (their labels were voided or erased after
        the claim: they must not be handed over) and count its parcels and weight again."""
        with self._write() as conn:
            row = _handover_row(conn, handover_id)
            if row["closed_at"] is not None:
                return _handover(row)
            self._leave_out(conn, handover_id, package_ids, why, self._now())
            row = conn.execute("SELECT * FROM handovers WHERE id = ?", (handover_id,)).fetchone()
        return _handover(row)

    def _leave_out(self, conn: Any, handover_id: int, package_ids: Sequence[int], why: str, now: str) -> None:
        for package_id in dict.fromkeys(int(i) for i in package_ids):
            found = conn.execute("SELECT id, order_id, package_ref, state FROM packages WHERE id = ?"
                                 " AND handover_id = ? AND handed_over_at IS NULL",
                                 (package_id, handover_id)).fetchone()
            if found is None:
                continue
            conn.execute("UPDATE packages SET handover_id = NULL WHERE id = ?", (package_id,))
            self._transition(conn, found["order_id"], package_id, now, found["state"], found["state"],
                             f"package {found['package_ref']}: left out of handover {handover_id} ({why})")
        remaining = [self._package(r) for r in conn.execute(
            "SELECT * FROM packages WHERE handover_id = ?", (handover_id,)).fetchall()]
        conn.execute("UPDATE handovers SET packages = ?, weight_g = ? WHERE id = ?",
                     (len(remaining), sum(package_weight_g(p) for p in remaining), handover_id))

    def record_manifest(self, handover_id: int, state: str, *, ref: str = "", note: str = "") -> Handover:
        """Keep the carrier's answer to the handover call (``state``: MANIFEST_STATES) on an open
        handover; a closed one is left as it is."""
        if state not in MANIFEST_STATES:
            raise ValueError(f"manifest state must be one of {', '.join(MANIFEST_STATES)}, got {state!r}")
        with self._write() as conn:
            conn.execute("UPDATE handovers SET manifest_state = ?, manifest_ref = ?, manifest_note = ?,"
                         " manifest_at = ? WHERE id = ? AND closed_at IS NULL",
                         (state, ref or "", note[:500], self._now(), handover_id))
            row = conn.execute("SELECT * FROM handovers WHERE id = ?", (handover_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown handover {handover_id}")
        return _handover(row)

    def close_handover(self, handover_id: int, *, pdf_path: str, csv_path: str) -> Handover:
        """Close the handover with its list's files and mark its packages handed over (one
        transaction); one whose label was voided or erased meanwhile is left out, never marked.
        Closing a closed handover changes nothing."""
        with self._write() as conn:
            row = _handover_row(conn, handover_id)
            if row["closed_at"] is not None:
                return _handover(row)
            now = self._now()
            dead = [r["id"] for r in conn.execute(
                "SELECT id FROM packages WHERE handover_id = ? AND handed_over_at IS NULL AND"
                f" (label_erased_at IS NOT NULL OR state IN ({_DEAD_MARKS}))",
                (handover_id, *_DEAD)).fetchall()]
            if dead:
                self._leave_out(conn, handover_id, dead, "its label was voided or erased as the handover "
                                "closed", now)
            conn.execute("UPDATE handovers SET closed_at = ?, pdf_path = ?, csv_path = ? WHERE id = ?",
                         (now, str(pdf_path), str(csv_path), handover_id))
            rows = conn.execute("SELECT id, order_id, package_ref, state FROM packages WHERE handover_id = ?"
                                " AND handed_over_at IS NULL", (handover_id,)).fetchall()
            conn.execute("UPDATE packages SET handed_over_at = ? WHERE handover_id = ?"
                         " AND handed_over_at IS NULL", (now, handover_id))
            for r in rows:
                self._transition(conn, r["order_id"], int(r["id"]), now, r["state"], r["state"],
                                 f"package {r['package_ref']}: HANDED_OVER to {row['carrier']} (handover "
                                 f"{handover_id}, {row['warehouse']}, pickup {row['pickup_date']})")
            row = conn.execute("SELECT * FROM handovers WHERE id = ?", (handover_id,)).fetchone()
        return _handover(row)
