"""Batch printing: the labels not printed yet (or the ones asked for) merged into one PDF.

The batch is one file for the label printer, every page 100 x 150 mm (4 x 6 in):

1. the **pick list** first -- each label's order, package, SKU, quantity and customs names in
   English and Chinese, in the order the labels follow;
2. the **labels**, sorted by carrier and service (then order id), each page scaled to fit
   100 x 150 mm and centred when the carrier sent another size (a landscape page is turned first);
3. optionally a **packing slip** after each label (the package's items; never the buyer's address,
   which is on the label only).

Crash safety: the merged PDF is written atomically (a temporary file renamed into place), then the
labels are marked printed, with the batch, in one ledger transaction. Killed between the two, the
labels are still unprinted and the next batch prints them again: a label may come out twice, never
be marked printed without a file. A label printed again on purpose (``reprint``) counts a reprint in
the package's history and in the batch.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..files import write_atomically
from ..ledger import CorruptRecordError, Package, StaleStateError
from ..ledger.warehouse import DEAD_LABEL_STATES, PrintBatch
from ..model import Order, utcnow
from .crashpoints import crashpoint
from .runtime import Runtime

MM = 72 / 25.4
LABEL_WIDTH = 100 * MM   # 283.46 pt
LABEL_HEIGHT = 150 * MM  # 425.20 pt
SIZE_TOLERANCE = 2.0     # pt: a page this close to 100 x 150 mm is kept as it is
FONT = "STSong-Light"    # reportlab's built-in CID font: Latin and Chinese, no font file shipped
BOLD = "Helvetica-Bold"

# Crash points of this module (connector/engine/crashpoints.py: MFN_CONNECTOR_CRASH_AT=<name>).
AFTER_PRINT_FILE = "after_print_file"  # the merged PDF is on disk, the labels not marked printed yet


class PrintError(Exception):
    """Nothing can be printed as asked; the message says why."""


class BatchNotWritten(PrintError):
    """The batch's file cannot be written (a full or read-only disk): nothing is marked printed."""


class UnknownOrder(PrintError):
    def __init__(self, order_ids: Sequence[str]) -> None:
        super().__init__(f"no order {', '.join(order_ids)} in the ledger")
        self.order_ids = list(order_ids)


class NothingToPrint(PrintError):
    def __init__(self, message: str, skipped: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.skipped = list(skipped)


class LabelsErased(NothingToPrint):
    """Every order asked for had its buyer data purged (connector/engine/purge.py): its labels were
    erased with the address they show, and are never printed again."""


@dataclass(frozen=True)
class PickLine:
    """One line of the pick list: what goes into one package."""

    order_id: str
    package_ref: str
    carrier: str
    service: str
    tracking_number: str
    sku: str
    quantity: int
    name_en: str
    name_cn: str


@dataclass
class PrintResult:
    path: Path
    batch: PrintBatch
    labels: list[Package]                 # in print order
    pages: int                            # every page of the file
    pick_list_pages: int
    packing_slips: int
    reprints: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    resized: int = 0                      # label pages scaled to 100 x 150 mm


def print_labels(rt: Runtime, *, order_ids: Sequence[str] | None = None, reprint: bool = False,
                 packing_slips: bool = False, output: str | os.PathLike[str] | None = None,
                 on_label: Callable[[Package], None] | None = None) -> PrintResult:
    """Print a batch: every label not printed yet, or the labels of ``order_ids`` (a label printed
    before only with ``reprint``). Writes the merged PDF to ``output`` (default: a new file under
    ``<state_dir>/print/``), then marks the labels printed. ``on_label`` is called as each label is
    merged (a progress bar). Raises UnknownOrder, or NothingToPrint with what was skipped and why
    (LabelsErased when every order asked for had its buyer data purged: its labels are gone)."""
    packages, skipped = select_labels(rt, order_ids, reprint=reprint)
    readable: list[tuple[Package, Any]] = []
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    for package in packages:
        path = Path(package.label_path)
        try:
            reader = PdfReader(io.BytesIO(path.read_bytes()))
            # The pages are read lazily: an encrypted or broken page tree would fail the whole batch
            # later, and a file with no page would be marked printed with nothing on paper.
            if not len(reader.pages):
                skipped.append((_name(package), f"label file {path} has no page"))
                continue
            readable.append((package, reader))
        except FileNotFoundError:
            skipped.append((_name(package), f"label file {path} is missing"))
        except (PdfReadError, ValueError, OSError) as exc:
            skipped.append((_name(package), f"label file {path} cannot be read: {exc}"))
    if not readable:
        raise NothingToPrint("no label to print" + (": " + "; ".join(f"{w}: {y}" for w, y in skipped)
                                                    if skipped else " (every label is printed)"), skipped)
    orders = {p.order_id: order_record(rt, p.order_id) for p, _ in readable}
    lines = [line for p, _ in readable for line in pick_lines(rt, p, orders[p.order_id])]
    now = utcnow()
    pick = pick_list_pdf(lines, labels=len(readable), at=now)

    from pypdf import PdfWriter

    writer = PdfWriter()
    pick_pages = _append(writer, pick)
    resized = slips = 0
    for package, reader in readable:
        for page in reader.pages:
            fitted, changed = fit_page(page)
            writer.add_page(fitted)
            resized += changed
        if packing_slips:
            record = orders[package.order_id]
            slips += _append(writer, packing_slip_pdf(package, record.order if record else None,
                                                      pick_lines(rt, package, record), at=now))
        if on_label is not None:
            on_label(package)
    buffer = io.BytesIO()
    writer.write(buffer)
    pages = len(writer.pages)
    # Recorded absolute: the purge's sweep (another process, another working directory) finds it.
    folder = rt.config.state_dir / "print"
    try:
        path = Path(output).absolute() if output else _batch_path(folder, now)
    except OSError as exc:  # the folder cannot be made or written in: no name for the batch either
        raise BatchNotWritten(f"cannot write the print batch under {folder}: {exc.strerror or exc}; "
                              "nothing was marked printed") from None
    try:
        write_atomically(path, buffer.getvalue())
    except BaseException as exc:
        if not output:  # the name reserved for this batch: no empty file left behind (a full disk)
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BatchNotWritten(f"cannot write the print batch {path}: {exc.strerror or exc}; "
                                  "nothing was marked printed") from None
        raise
    crashpoint(AFTER_PRINT_FILE)
    try:
        batch = rt.ledger.record_print_batch(str(path), [p.id for p, _ in readable], pages=pages,
                                             packing_slips=packing_slips, first_prints=not reprint)
    except StaleStateError as exc:  # another print took these labels while this one was built
        path.unlink(missing_ok=True)
        raise NothingToPrint(f"{exc}; print again for the labels still unprinted", skipped) from None
    return PrintResult(path=path, batch=batch, labels=[p for p, _ in readable], pages=pages,
                       pick_list_pages=pick_pages, packing_slips=slips, reprints=batch.reprints,
                       skipped=skipped, resized=resized)


def select_labels(rt: Runtime, order_ids: Sequence[str] | None, *,
                  reprint: bool = False) -> tuple[list[Package], list[tuple[str, str]]]:
    """The packages to print in print order (carrier, service, order, package) and what was left
    out and why. Without ``order_ids``: every label bought, not scanned yet and never printed, but
    those of held orders. A
    label erased with its order's buyer data is never chosen (LabelsErased when every order asked
    for is such); nor are the labels of an order asked for with a package row that cannot be read,
    named in what was left out (the day's batch passes such a package over, naming it in a warning)."""
    ledger = rt.ledger
    skipped: list[tuple[str, str]] = []
    if order_ids is None:
        chosen = _not_held(rt, ledger.unprinted_packages(), skipped)
    else:
        wanted = list(dict.fromkeys(order_ids))
        unknown = [o for o in wanted if order_record(rt, o) is None]
        if unknown:
            raise UnknownOrder(unknown)
        chosen, erased = [], []
        for order_id in wanted:
            try:
                every = ledger.packages(order_id)
            except CorruptRecordError as exc:  # a row gone wrong (a hand edit): it waits, the others print
                skipped.append((order_id, str(exc)))
                continue
            gone = [p.label_erased_at for p in every if p.label_erased_at is not None]
            packages = [p for p in every if p.label_path and p.state not in DEAD_LABEL_STATES
                        and p.label_erased_at is None]
            if gone and not packages:
                erased.append(order_id)
                skipped.append((order_id, erased_reason(min(gone))))
            elif not packages:
                skipped.append((order_id, "has no label to print (none bought yet, voided or failed)"))
            chosen.extend(packages)
        if erased and len(erased) == len(wanted):
            raise LabelsErased("; ".join(f"order {o}: {why}" for o, why in skipped), skipped)
        marks = ledger.label_marks(p.id for p in chosen)
        if not reprint:
            for p in [p for p in chosen if marks[p.id].printed]:
                skipped.append((_name(p), f"already printed ({marks[p.id].print_count}x); reprint to print "
                                "it again"))
            chosen = [p for p in chosen if not marks[p.id].printed]
    chosen.sort(key=print_order)
    return chosen, skipped


def _not_held(rt: Runtime, packages: list[Package], skipped: list[tuple[str, str]]) -> list[Package]:
    """``packages`` but those of held orders, each of those added to ``skipped`` with its hold. A
    held order waits for a person (a buyer who asked to cancel, a confirmation Amazon refused): its
    parcel is not packed with the day's batch, only once asked for by order id. Nor is the label
    of an order Amazon cancelled that the engine has not voided yet."""
    holds = rt.ledger.holds_of([p.order_id for p in packages])
    skipped += [(_name(p), f"its order is held ({holds[p.order_id]}): print it with --order {p.order_id} "
                           "once the hold is settled") for p in packages if p.order_id in holds]
    packages = [p for p in packages if p.order_id not in holds]
    cancelled = rt.ledger.cancelled_on_amazon([p.order_id for p in packages])
    skipped += [(_name(p), "Amazon cancelled its order: its label is voided next, not printed")
                for p in packages if p.order_id in cancelled]
    return [p for p in packages if p.order_id not in cancelled]


def erased_reason(at: datetime) -> str:
    """Why a label is refused once its order's buyer data was purged (no buyer data in it)."""
    return (f"its buyer data was purged on {at:%Y-%m-%d} (data protection) and its label erased with "
            "it: a label is never printed or served again after that")


def order_record(rt: Runtime, order_id: str) -> Any:
    """The order without decrypting its buyer data (None when unknown)."""
    found = rt.ledger.order_detail(order_id, with_pii=False)
    return found[0] if found is not None else None


def print_order(package: Package) -> tuple[str, str, str, int]:
    """Labels sort by carrier, then service, then order id and package."""
    ref = int(package.package_ref) if package.package_ref.isdigit() else 0
    return (package.carrier, package.service, package.order_id, ref)


def pick_lines(rt: Runtime, package: Package, record: Any = None) -> list[PickLine]:
    """What goes into one package: from the plan the label was bought for (its customs lines carry
    both names), else from the order's items and the item master."""
    def line(sku: str, quantity: int, name_en: str, name_cn: str) -> PickLine:
        return PickLine(package.order_id, package.package_ref, package.carrier, package.service,
                        package.tracking_number, sku, int(quantity), name_en, name_cn)

    contents = (package.plan.get("parcel") or {}).get("contents") or []
    if contents:
        return [line(c.get("sku", ""), c.get("quantity", 0), c.get("name_en", ""), c.get("name_cn", ""))
                for c in contents]
    order: Order | None = record.order if record is not None else None
    items = {i.order_item_id: i for i in order.items} if order is not None else {}
    lines = []
    for entry in package.items:
        item = items.get(str(entry.get("order_item_id", "")))
        sku = item.sku if item is not None else str(entry.get("order_item_id", ""))
        known = rt.catalog.get(sku) if item is not None else None
        name_en = known.name_en if known else (item.title if item else "")
        lines.append(line(sku, int(entry.get("quantity", 0)), name_en, known.name_cn if known else ""))
    return lines


# -- PDF pages -------------------------------------------------------------------------------------
def fit_page(page: Any) -> tuple[Any, bool]:
    """The page at 100 x 150 mm: as it is when it already is (within 2 pt), else scaled to fit and
    centred on a blank 100 x 150 mm page, a landscape page turned a quarter first. Returns the page
    and whether it was changed."""
    from pypdf import PageObject, Transformation

    if page.rotation:
        page.transfer_rotation_to_content()
    box = page.cropbox
    width, height = float(box.width), float(box.height)
    if abs(width - LABEL_WIDTH) <= SIZE_TOLERANCE and abs(height - LABEL_HEIGHT) <= SIZE_TOLERANCE:
        return page, False
    move = Transformation().translate(-float(box.left), -float(box.bottom))
    if width > height:  # a landscape label on a portrait roll: turn it a quarter (counter-clockwise)
        move = move.rotate(90).translate(height, 0)
        width, height = height, width
    scale = min(LABEL_WIDTH / width, LABEL_HEIGHT / height)
    move = move.scale(scale, scale).translate((LABEL_WIDTH - width * scale) / 2,
                                              (LABEL_HEIGHT - height * scale) / 2)
    target = PageObject.create_blank_page(width=LABEL_WIDTH, height=LABEL_HEIGHT)
    target.merge_transformed_page(page, move)
    return target, True


def pick_list_pdf(lines: Sequence[PickLine], *, labels: int, at: datetime) -> bytes:
    """The pick list on 100 x 150 mm pages, grouped like the labels (carrier, service)."""
    canvas, pdf = _canvas()
    writer = _TextPage(canvas, title=f"PICK LIST  {labels} label(s)", subtitle=f"{at:%Y-%m-%d %H:%M} UTC")
    group = None
    for line in lines:
        if (line.carrier, line.service) != group:
            group = (line.carrier, line.service)
            writer.heading(f"{line.carrier} / {line.service}")
        writer.text(f"{line.order_id} #{line.package_ref}  {line.tracking_number}", size=7)
        writer.text(f"  {line.quantity} x {line.sku}", size=8)
        writer.text(f"     {line.name_en}", size=7)
        writer.text(f"     {line.name_cn}", size=7)
    totals: dict[str, list[Any]] = {}
    for line in lines:
        entry = totals.setdefault(line.sku, [0, line.name_en, line.name_cn])
        entry[0] += line.quantity
    writer.heading("TOTAL PER SKU")
    for sku, (quantity, name_en, name_cn) in sorted(totals.items()):
        writer.text(f"{quantity:>4} x {sku}  {name_en} {name_cn}", size=7)
    writer.finish()
    return pdf()


def packing_slip_pdf(package: Package, order: Order | None, lines: Sequence[PickLine], *,
                     at: datetime) -> bytes:
    """One package's packing slip (its items; no buyer data)."""
    canvas, pdf = _canvas()
    site = f"Amazon {order.site}" if order is not None else ""
    writer = _TextPage(canvas, title="PACKING SLIP",
                       subtitle=f"{package.order_id}  #{package.package_ref}  {site}")
    titles = {i.sku: i.title for i in order.items} if order is not None else {}
    writer.text(f"{package.carrier} / {package.service}  {package.tracking_number}", size=7)
    writer.heading("QTY  ITEM")
    for line in lines:
        writer.text(f"{line.quantity:>3} x {line.sku}", size=9)
        for text in dict.fromkeys((titles.get(line.sku) or "", line.name_en, line.name_cn)):
            if text:
                writer.text(f"      {text}", size=7)
    writer.text("")
    writer.text(f"Printed {at:%Y-%m-%d %H:%M} UTC", size=6)
    writer.finish()
    return pdf()


def _canvas() -> tuple[Any, Callable[[], bytes]]:
    from reportlab.pdfgen.canvas import Canvas

    register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(LABEL_WIDTH, LABEL_HEIGHT), pageCompression=1)

    def done() -> bytes:
        canvas.save()
        return buffer.getvalue()

    return canvas, done


_registered = False


def register_fonts() -> None:
    """Register the CID font once (a process-wide reportlab registry)."""
    global _registered
    if not _registered:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True


class _TextPage:
    """Lines of text down 100 x 150 mm pages, wrapped to the width, a new page when one is full."""

    MARGIN = 5 * MM

    def __init__(self, canvas: Any, *, title: str, subtitle: str = "") -> None:
        self.canvas, self.title, self.subtitle = canvas, title, subtitle
        self.width = LABEL_WIDTH - 2 * self.MARGIN
        self.page = 0
        self._new_page()

    def _new_page(self) -> None:
        if self.page:
            self.canvas.showPage()
        self.page += 1
        self.y = LABEL_HEIGHT - self.MARGIN - 12
        self.canvas.setFont(BOLD, 12)
        title = self.title + (f"  ({self.page})" if self.page > 1 else "")
        self.canvas.drawString(self.MARGIN, self.y, title)
        self.y -= 11
        if self.subtitle:
            self.canvas.setFont(FONT, 7)
            self.canvas.drawString(self.MARGIN, self.y, self.subtitle)
            self.y -= 9
        self.canvas.line(self.MARGIN, self.y + 4, LABEL_WIDTH - self.MARGIN, self.y + 4)
        self.y -= 6

    def _room(self, height: float) -> None:
        if self.y - height < self.MARGIN:
            self._new_page()

    def heading(self, text: str) -> None:
        self._room(22)
        self.y -= 3
        self.canvas.setFont(BOLD, 8)
        self.canvas.drawString(self.MARGIN, self.y, text)
        self.y -= 10

    def text(self, text: str, *, size: float = 8) -> None:
        from reportlab.lib.utils import simpleSplit

        for part in simpleSplit(text, FONT, size, self.width) or [""]:
            self._room(size + 2)
            self.canvas.setFont(FONT, size)
            self.canvas.drawString(self.MARGIN, self.y, part)
            self.y -= size + 2

    def finish(self) -> None:
        self.canvas.showPage()


def _append(writer: Any, pdf: bytes) -> int:
    from pypdf import PdfReader

    pages = PdfReader(io.BytesIO(pdf)).pages
    for page in pages:
        writer.add_page(page)
    return len(pages)


def _name(package: Package) -> str:
    return f"{package.order_id} package {package.package_ref}"


def _batch_path(folder: Path, at: datetime) -> Path:
    """A new file for the batch, its name reserved (created empty) so that two batches printed in
    the same second never write, or remove, the same file."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"labels-{at:%Y%m%d-%H%M%S}"
    path, n = folder / f"{stem}.pdf", 2
    while True:
        try:
            with open(path, "x"):
                return path
        except FileExistsError:
            path, n = folder / f"{stem}-{n}.pdf", n + 1

