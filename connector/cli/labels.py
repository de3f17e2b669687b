"""``mfn-connector labels ...`` and ``mfn-connector handover ...``: the warehouse's day -- print the
labels in one batch (pick list first), then hand each carrier its parcels with a signed list
(connector/engine/printing.py, connector/engine/handover.py; docs/printing-and-handover.md)."""
from __future__ import annotations

import json
import sys
from datetime import date, datetime
from typing import Any

import click

from .app import State, cli, pass_state

PROGRESS_FROM = 20  # labels; a smaller batch merges in a blink
EARLIEST_PICKUP, LATEST_PICKUP = date(2000, 1, 1), date(9000, 1, 1)  # as POST /v1/handovers takes


@cli.group("labels")
def labels_group() -> None:
    """Print labels in batches (pick list first, sorted by carrier and service)."""


@labels_group.command("print")
@click.option("--all-unprinted", "all_unprinted", is_flag=True, default=False,
              help="Every label bought, not scanned yet and never printed (the default without --order).")
@click.option("--order", "order_ids", multiple=True, metavar="ORDER_ID",
              help="Only these orders' labels (repeatable).")
@click.option("--reprint", is_flag=True, help="With --order: print labels printed before again (logged).")
@click.option("--packing-slips", is_flag=True, help="A packing slip after each label.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Where to write the merged PDF (default: a new file under <state_dir>/print/).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def labels_print(state: State, all_unprinted: bool, order_ids: tuple[str, ...], reprint: bool,
                 packing_slips: bool, output: str | None, as_json: bool) -> None:
    """Merge labels into one PDF and mark them printed."""
    from ..engine.printing import PrintError, print_labels, select_labels

    if all_unprinted and order_ids:
        raise click.UsageError("--all-unprinted and --order exclude each other")
    if reprint and not order_ids:
        raise click.UsageError("--reprint needs --order: say which labels to print again")
    rt = state.runtime()
    try:
        wanted = list(order_ids) or None
        try:
            chosen, left_out = select_labels(rt, wanted, reprint=reprint)
        except PrintError as exc:
            raise click.ClickException(str(exc)) from None
        count = len(chosen)
        if count == 0 and wanted is None:  # a routine run with nothing new is not an error
            click.echo("nothing to print: every label is printed"
                       + (" but those left out below" if left_out else ""), err=True)
            for what, why in left_out:
                click.echo(f"skipped {what}: {why}", err=True)
            if as_json:  # a batch of none, with the keys of a batch: stdout stays JSON for a script
                click.echo(json.dumps({
                    "path": None, "batch": None, "labels": 0, "reprints": 0, "pages": 0, "pick_list_pages": 0,
                    "packing_slips": 0, "resized": 0, "carriers": {},
                    "skipped": [{"what": w, "why": y} for w, y in left_out]}, indent=2))
            return
        show = count >= PROGRESS_FROM and not as_json
        with click.progressbar(length=count, label="merging labels", show_pos=True,
                               file=sys.stderr if show else _Null()) as bar:
            try:
                result = print_labels(rt, order_ids=wanted, reprint=reprint, packing_slips=packing_slips,
                                      output=output, on_label=lambda _p: bar.update(1))
            except PrintError as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        rt.close()
    carriers: dict[str, int] = {}
    for package in result.labels:
        carriers[package.carrier] = carriers.get(package.carrier, 0) + 1
    if as_json:
        click.echo(json.dumps({
            "path": str(result.path), "batch": result.batch.id, "labels": len(result.labels),
            "reprints": result.reprints, "pages": result.pages, "pick_list_pages": result.pick_list_pages,
            "packing_slips": result.packing_slips, "resized": result.resized, "carriers": carriers,
            "skipped": [{"what": w, "why": y} for w, y in result.skipped]}, indent=2))
        return
    click.echo(f"{result.path}")
    click.echo(f"print batch {result.batch.id}: {len(result.labels)} label(s)"
               + (f", {result.reprints} reprint(s)" if result.reprints else "")
               + f", {result.pages} page(s): pick list {result.pick_list_pages}"
               + (f", packing slips {result.packing_slips}" if result.packing_slips else "")
               + (f"; {result.resized} page(s) scaled to 100x150 mm" if result.resized else ""))
    for code, n in sorted(carriers.items()):
        click.echo(f"  {code:<18} {n:>4}")
    for what, why in result.skipped:
        click.echo(f"skipped {what}: {why}", err=True)


@labels_group.command("list")
@click.option("--flag", type=click.Choice(["UNPRINTED", "PRINTED", "HANDED_OVER"]), default=None,
              help="Only labels with this flag.")
@click.option("--order", "order_id", default=None, metavar="ORDER_ID")
@click.option("--carrier", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def labels_list(state: State, flag: str | None, order_id: str | None, carrier: str | None, limit: int,
                as_json: bool) -> None:
    """Labels bought (not voided) with their flag: UNPRINTED, PRINTED or HANDED_OVER, oldest first
    (at most --limit; stderr says when more match)."""
    from ..ledger.warehouse import package_warehouse

    default = state.config().default_warehouse.name
    ledger = state.ledger()
    try:
        rows = ledger.label_page(order_id=order_id, carrier=carrier, flag=flag, limit=limit + 1)
    finally:
        ledger.close()
    if len(rows) > limit:  # oldest first: without this, the newest labels would seem missing
        rows = rows[:limit]
        click.echo(f"showing the oldest {limit} labels; more labels match: raise --limit, or narrow with "
                   "--flag, --carrier or --order", err=True)
    out = [{"package_id": p.id, "order_id": p.order_id, "package_ref": p.package_ref, "carrier": p.carrier,
            "service": p.service, "state": p.state.value, "tracking_number": p.tracking_number,
            "label": m.flag, "print_count": m.print_count, "handover_id": m.handover_id,
            "warehouse": package_warehouse(p, default)} for p, m in rows]
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{'ORDER':<21} {'PKG':>3} {'CARRIER':<16} {'SERVICE':<20} {'STATE':<12} {'TRACKING':<22} "
               f"{'LABEL':<11} PRINTS")
    for r in out:
        click.echo(f"{r['order_id']:<21} {r['package_ref']:>3} {r['carrier']:<16} {r['service']:<20} "
                   f"{r['state']:<12} {r['tracking_number']:<22} {r['label']:<11} {r['print_count']}")


@labels_group.command("batches")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def labels_batches(state: State, limit: int, as_json: bool) -> None:
    """The print batches, newest first."""
    ledger = state.ledger()
    try:
        batches = ledger.print_batches(limit=limit)
    finally:
        ledger.close()
    rows = [{"id": b.id, "created_at": b.created_at.isoformat(), "labels": b.labels, "reprints": b.reprints,
             "pages": b.pages, "packing_slips": b.packing_slips, "path": b.path} for b in batches]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'BATCH':>5} {'PRINTED AT':<20} {'LABELS':>6} {'REPRINTS':>8} {'PAGES':>5}  FILE")
    for r in rows:
        click.echo(f"{r['id']:>5} {r['created_at'][:19]:<20} {r['labels']:>6} {r['reprints']:>8} "
                   f"{r['pages']:>5}  {r['path']}")


@cli.group("handover")
def handover_group() -> None:
    """Hand each carrier its printed parcels: close at the carrier, list as PDF and CSV."""


@handover_group.command("close")
@click.option("--carrier", default=None, help="Only this carrier (default: every carrier with parcels).")
@click.option("--date", "pickup_date", default=None, metavar="YYYY-MM-DD",
              help="The pickup date: parcels printed up to its end (UTC) go (default: today).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def handover_close(state: State, carrier: str | None, pickup_date: str | None, as_json: bool) -> None:
    """Close today's handovers: one per carrier and pickup; an interrupted one is finished first."""
    from ..engine.handover import close_handovers

    day = _date(pickup_date) if pickup_date else None
    rt = state.runtime()
    try:
        if carrier is not None and carrier not in rt.carriers and carrier not in rt.carrier_specs:
            raise click.BadParameter(f"unknown carrier {carrier!r}", param_hint="--carrier")
        results = close_handovers(rt, carrier=carrier, pickup_date=day)
    finally:
        rt.close()
    failed = [r for r in results if r.error]
    if as_json:
        click.echo(json.dumps([{**_handover_row(r.handover), "resumed": r.resumed, "error": r.error}
                               for r in results], indent=2))
    elif not results:
        click.echo("nothing to hand over: no printed parcel is waiting")
    for r in results if not as_json else ():
        h = r.handover
        status = "closed" if h.closed else f"OPEN ({r.error})"
        resumed = " (finished a run that was interrupted)" if r.resumed else ""
        click.echo(f"handover {h.id} {h.carrier} at {h.warehouse}, pickup {h.pickup_date}: "
                   f"{h.packages} parcel(s), {h.weight_g} g; {_manifest(h)}; {status}{resumed}")
        if h.closed:
            click.echo(f"  {h.pdf_path}")
            click.echo(f"  {h.csv_path}")
    if failed:
        raise click.ClickException(f"{len(failed)} handover(s) still open: run `handover close` again")


@handover_group.command("list")
@click.option("--carrier", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def handover_list(state: State, carrier: str | None, limit: int, as_json: bool) -> None:
    """Handovers, newest first."""
    ledger = state.ledger()
    try:
        handovers = ledger.handovers(carrier=carrier, limit=limit)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps([_handover_row(h) for h in handovers], indent=2))
        return
    click.echo(f"{'ID':>4} {'CARRIER':<16} {'PICKUP':<10} {'DATE':<10} {'PARCELS':>7} {'WEIGHT g':>8} "
               f"{'MANIFEST':<8} STATUS")
    for h in handovers:
        click.echo(f"{h.id:>4} {h.carrier:<16} {h.warehouse:<10} {h.pickup_date:<10} {h.packages:>7} "
                   f"{h.weight_g:>8} {h.manifest_state:<8} {'closed' if h.closed else 'OPEN'}"
                   + (f"  {h.pdf_path}" if h.pdf_path else ""))


def _handover_row(h: Any) -> dict[str, Any]:
    return {"id": h.id, "carrier": h.carrier, "warehouse": h.warehouse, "pickup_date": h.pickup_date,
            "packages": h.packages, "weight_g": h.weight_g, "manifest_state": h.manifest_state,
            "manifest_ref": h.manifest_ref, "manifest_note": h.manifest_note,
            "created_at": h.created_at.isoformat(),
            "closed_at": h.closed_at.isoformat() if h.closed_at else None,
            "pdf_path": h.pdf_path, "csv_path": h.csv_path}


def _manifest(h: Any) -> str:
    return {"closed": f"closed at the carrier ({h.manifest_ref or 'no reference'})",
            "none": "no handover call at this carrier",
            "refused": f"the carrier refused: {h.manifest_note}",
            "pending": "carrier not asked yet"}.get(h.manifest_state, h.manifest_state)


def _date(text: str) -> date:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint="--date") from None
    if not EARLIEST_PICKUP <= day <= LATEST_PICKUP:  # 9999-12-31 has no end of day: the API's bounds
        raise click.BadParameter(f"{text!r} is not a pickup date between {EARLIEST_PICKUP} and "
                                 f"{LATEST_PICKUP}", param_hint="--date")
    return day


class _Null:
    """A file that swallows the progress bar of a small batch."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
