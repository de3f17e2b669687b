"""Batch printing and handover against the sandbox: labels from all five carriers merged into one
PDF (pick list first, sorted by carrier and service, 100 x 150 mm pages), marked printed, reprinted
on purpose; then one handover per carrier whose list is exactly the labels printed; a kill at each
step of a handover finished by the next run without a second handover; and the ship-by alert
waiting on paper (docs/printing-and-handover.md)."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from connector.cli import cli
from connector.engine import handover as handover_engine
from connector.engine.handover import AFTER_HANDOVER_CLAIM, AFTER_HANDOVER_LIST, AFTER_MANIFEST_CALL
from connector.engine.loop import Engine
from connector.engine.printing import (
    AFTER_PRINT_FILE,
    LABEL_HEIGHT,
    LABEL_WIDTH,
    BatchNotWritten,
    NothingToPrint,
    UnknownOrder,
    fit_page,
    print_labels,
)
from connector.engine.steer import void_order
from connector.engine.watch import ship_by_guard
from connector.kit.carrier import TransientCarrierError
from connector.ledger import PackageState
from connector.model import FulfillmentStatus
from tests.e2e.helpers import CARRIERS, ledger_of, run_cli, run_once_until_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

MM = 72 / 25.4
ORDERS = {"sandbox": {"orders": 30}}  # enough for every carrier to get some labels


@pytest.fixture
def shipped(world):
    """A runtime whose daemon has bought, confirmed and verified labels from all five carriers."""
    w = world(ORDERS)
    rt = w.runtime()
    Engine(rt).run_until_quiet()
    assert {p.carrier for p in rt.ledger.unprinted_packages()} == set(CARRIERS)
    yield w, rt
    rt.close()


def page_texts(path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]


def is_label_size(page) -> bool:
    box = page.mediabox
    return abs(float(box.width) - 100 * MM) <= 2 and abs(float(box.height) - 150 * MM) <= 2


def test_a_batch_from_every_carrier_in_one_pdf(shipped):
    _w, rt = shipped
    ledger = rt.ledger
    waiting = ledger.unprinted_packages()
    label_pages = sum(len(PdfReader(p.label_path).pages) for p in waiting)

    result = print_labels(rt)

    reader = PdfReader(str(result.path))
    assert len(reader.pages) == result.pages == result.pick_list_pages + label_pages
    assert result.pick_list_pages >= 1 and len(result.labels) == len(waiting) and result.reprints == 0
    assert all(is_label_size(page) for page in reader.pages)
    # the labels follow the pick list, sorted by carrier and service; each page is that label
    order = [(p.carrier, p.service) for p in result.labels]
    assert order == sorted(order) and {c for c, _ in order} == set(CARRIERS)
    texts = page_texts(result.path)
    for n, package in enumerate(result.labels):
        assert package.tracking_number in texts[result.pick_list_pages + n], (n, package.carrier)
    # the pick list: order, SKU, quantity, customs names in English and Chinese
    pick = "\n".join(texts[:result.pick_list_pages])
    assert pick.startswith("PICK LIST")
    chinese = set()
    for package in result.labels:
        assert package.order_id in pick and package.tracking_number in pick
        for line in package.plan["parcel"]["contents"]:
            assert f"{line['quantity']} x {line['sku']}" in pick
            assert line["name_en"] in pick and line["name_cn"] in pick
            chinese.add(line["name_cn"])
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in chinese)
    # in the pick list the orders come in the labels' order
    positions = [pick.index(f"{p.order_id} #{p.package_ref}") for p in result.labels]
    assert positions == sorted(positions)

    # marked printed, once, with the batch; nothing left to print
    marks = ledger.label_marks(p.id for p in result.labels)
    assert all(m.printed and m.print_count == 1 and m.flag == "PRINTED" for m in marks.values())
    assert ledger.unprinted_packages() == []
    assert ledger.print_batches()[0].id == result.batch.id and result.batch.labels == len(waiting)
    with pytest.raises(NothingToPrint):
        print_labels(rt)


def test_a_reprint_is_asked_for_and_logged(shipped):
    _w, rt = shipped
    first = print_labels(rt)
    package = first.labels[0]
    with pytest.raises(NothingToPrint, match="already printed"):
        print_labels(rt, order_ids=[package.order_id])
    with pytest.raises(UnknownOrder):
        print_labels(rt, order_ids=["999-0000000-0000000"])

    again = print_labels(rt, order_ids=[package.order_id], reprint=True, packing_slips=True)

    assert [p.id for p in again.labels] == [package.id] and again.reprints == 1
    assert again.pages == again.pick_list_pages + 1 + again.packing_slips and again.packing_slips == 1
    texts = page_texts(again.path)
    slip = texts[-1]
    assert slip.startswith("PACKING SLIP") and package.order_id in slip
    assert all(is_label_size(page) for page in PdfReader(str(again.path)).pages)
    marks = rt.ledger.label_marks([package.id])[package.id]
    assert marks.print_count == 2 and marks.printed_at < marks.last_printed_at
    notes = [h["note"] for h in rt.ledger.history(package.order_id) if h["package_id"] == package.id]
    assert any(f"label printed in print batch {first.batch.id}" in n for n in notes)
    assert any(f"label reprinted (print 2) in print batch {again.batch.id}" in n for n in notes)


def test_a_held_orders_label_waits_for_its_order_id(shipped):
    """A held order waits for a person (a buyer asked to cancel after its label was bought): the
    day's batch leaves its label out, saying why, and it prints when asked for by order id."""
    _w, rt = shipped
    package = rt.ledger.unprinted_packages()[0]
    rt.ledger.hold(package.order_id, "buyer_cancel_requested", "the buyer asked to cancel")

    result = print_labels(rt)

    assert package.id not in {p.id for p in result.labels} and result.labels
    assert [why for what, why in result.skipped if package.order_id in what] == [
        f"its order is held (buyer_cancel_requested): print it with --order {package.order_id} once the "
        "hold is settled"]
    assert [p.id for p in rt.ledger.unprinted_packages()] == [package.id]  # still to print
    cli_run = CliRunner().invoke(cli, ["--config", str(_w.config_path), "labels", "print", "--json"])
    assert cli_run.exit_code == 0, cli_run.output
    assert json.loads(cli_run.stdout)["skipped"][0]["what"].startswith(package.order_id)
    assert [p.id for p in print_labels(rt, order_ids=[package.order_id]).labels] == [package.id]


def test_two_prints_at_once_print_each_label_once(shipped):
    """A second batch that takes the same labels while the first is being built (two clerks, two
    API calls) records it, and the first is refused: no label is marked printed twice."""
    _w, rt = shipped
    inner = []

    def meanwhile(package):
        if not inner:  # the other clerk's print runs while this batch is merged
            inner.append(print_labels(rt))

    with pytest.raises(NothingToPrint, match="printed by another batch meanwhile"):
        print_labels(rt, on_label=meanwhile)
    (winner,) = inner
    marks = rt.ledger.label_marks(p.id for p in winner.labels)
    assert {m.print_count for m in marks.values()} == {1}
    batches = sorted((rt.config.state_dir / "print").glob("*.pdf"))
    assert batches == [winner.path]  # the refused batch's file is not left behind
    with pytest.raises(NothingToPrint, match="every label is printed"):
        print_labels(rt)


def test_a_batch_whose_file_cannot_be_written_leaves_no_empty_file_and_marks_nothing(shipped, monkeypatch):
    _w, rt = shipped

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("connector.engine.printing.write_atomically", disk_full)
    with pytest.raises(BatchNotWritten, match="cannot write the print batch .*: No space left on device; "
                       "nothing was marked printed"):
        print_labels(rt)
    assert list((rt.config.state_dir / "print").glob("*")) == []
    monkeypatch.undo()
    assert print_labels(rt).labels  # nothing was marked printed: the next batch takes them all


def test_a_batch_whose_folder_cannot_be_made_says_so_and_marks_nothing(shipped):
    """<state_dir>/print cannot be made or written (here: a file in its place): the name of the
    batch cannot be reserved either, and that is the same 'cannot write the print batch'."""
    w, rt = shipped
    folder = rt.config.state_dir / "print"
    folder.write_text("not a folder", encoding="utf-8")
    with pytest.raises(BatchNotWritten, match=f"cannot write the print batch under {folder}: .*nothing was "
                       "marked printed"):
        print_labels(rt)
    result = CliRunner().invoke(cli, ["--config", str(w.config_path), "labels", "print"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "cannot write the print batch" in result.output
    folder.unlink()
    assert print_labels(rt).labels  # nothing was marked printed: the next batch takes them all


def test_pages_of_other_sizes_are_scaled_to_100x150_mm():
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas

    def pdf(size) -> bytes:
        out = io.BytesIO()
        canvas = Canvas(out, pagesize=size)
        canvas.drawString(40, 40, "TRACKING ZZ123456789CN")
        canvas.save()
        return out.getvalue()

    for size in (A4, landscape(A4), (4 * 72, 6 * 72), (150 * MM, 100 * MM)):
        page = PdfReader(io.BytesIO(pdf(size))).pages[0]
        fitted, changed = fit_page(page)
        assert changed
        assert (float(fitted.mediabox.width), float(fitted.mediabox.height)) == pytest.approx(
            (LABEL_WIDTH, LABEL_HEIGHT))
        assert "ZZ123456789CN" in fitted.extract_text()
    same = PdfReader(io.BytesIO(pdf((100 * MM, 150 * MM)))).pages[0]
    assert fit_page(same) == (same, False)


def test_one_handover_per_carrier_matches_the_labels_printed(shipped):
    _w, rt = shipped
    ledger = rt.ledger
    printed = print_labels(rt).labels
    late = ledger.label_page(flag="UNPRINTED")  # none: everything was printed
    assert late == []

    results = handover_engine.close_handovers(rt)

    assert sorted(r.handover.carrier for r in results) == sorted(CARRIERS)
    for r in results:
        h = r.handover
        assert h.closed and not r.resumed and not r.error and h.warehouse == "main"
        assert h.manifest_state == "none"  # no built-in carrier has a handover call (plugin READMEs)
        mine = {p.tracking_number for p in printed if p.carrier == h.carrier}
        rows = list(csv.DictReader(open(h.csv_path, encoding="utf-8")))
        assert {row["tracking_number"] for row in rows} == mine and len(rows) == h.packages == len(mine)
        assert all(row["carrier"] == h.carrier for row in rows)
        assert sum(int(row["weight_g"]) for row in rows) == h.weight_g > 0
        text = "\n".join(page_texts(h.pdf_path))
        assert "HANDOVER LIST" in text and f"PARCELS: {len(mine)}" in text
        assert f"TOTAL WEIGHT: {h.weight_g} g" in text
        assert all(number in text for number in mine)
    marks = ledger.label_marks(p.id for p in printed)
    assert all(m.flag == "HANDED_OVER" for m in marks.values())
    assert ledger.handover_backlog() == {}
    # nothing more to hand over; the package states went on untouched
    assert handover_engine.close_handovers(rt) == []
    assert {ledger.get_package(p.id).state for p in printed} == {PackageState.VERIFIED}


def test_a_held_orders_parcel_waits_out_of_the_handover_until_released(shipped, caplog):
    """Printed, then held (the buyer asked to cancel): the parcel is not handed over with the others;
    once released it joins the next handover."""
    _w, rt = shipped
    printed = print_labels(rt).labels
    package = printed[0]
    rt.ledger.hold(package.order_id, "buyer_cancel_requested", "the buyer asked to cancel")

    first = handover_engine.close_handovers(rt)

    assert sum(r.handover.packages for r in first) == len(printed) - 1
    assert rt.ledger.label_marks([package.id])[package.id].flag == "PRINTED"
    assert f"{package.order_id} (buyer_cancel_requested)" in caplog.text
    rt.ledger.release(package.order_id)
    again = handover_engine.close_handovers(rt)
    assert [(r.handover.carrier, r.handover.packages) for r in again] == [(package.carrier, 1)]
    assert rt.ledger.label_marks([package.id])[package.id].flag == "HANDED_OVER"


def test_a_carrier_handover_call_is_made_once_per_handover_even_across_a_crash(shipped, monkeypatch):
    """A carrier with a handover call: a kill right after its answer (before the answer is recorded)
    makes the next run ask again under the same reference, which the carrier recognises."""
    _w, rt = shipped
    print_labels(rt)
    calls: list[tuple[str, tuple[str, ...]]] = []
    manifests: dict[str, str] = {}

    def close_manifest(shipments, *, reference):
        calls.append((reference, tuple(sorted(s.tracking_number for s in shipments))))
        return manifests.setdefault(reference, f"M-{len(manifests) + 1}")  # the carrier deduplicates

    monkeypatch.setattr(rt.carriers["yunexpress"], "close_manifest", close_manifest, raising=False)

    class Killed(BaseException):
        pass

    def kill_at(name):
        if name == AFTER_MANIFEST_CALL:
            raise Killed

    monkeypatch.setattr(handover_engine, "crashpoint", kill_at)
    with pytest.raises(Killed):
        handover_engine.close_handovers(rt, carrier="yunexpress")
    (open_one,) = rt.ledger.open_handovers()
    assert open_one.manifest_state == "pending" and len(calls) == 1

    monkeypatch.setattr(handover_engine, "crashpoint", lambda name: None)
    (result,) = handover_engine.close_handovers(rt, carrier="yunexpress")
    assert result.resumed and result.handover.id == open_one.id and result.closed
    assert result.handover.manifest_state == "closed" and result.handover.manifest_ref == "M-1"
    assert [c[0] for c in calls] == [open_one.reference] * 2 and calls[0][1] == calls[1][1]
    assert len(rt.ledger.handovers(carrier="yunexpress")) == 1

    # a carrier that does not answer leaves the handover open; the next run closes it
    def down(shipments, *, reference):
        raise TransientCarrierError("timeout")

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", down, raising=False)
    (failed,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert failed.error and not failed.closed
    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", close_manifest, raising=False)
    (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert done.resumed and done.closed and done.handover.id == failed.handover.id
    assert len(rt.ledger.handovers(carrier="yanwen")) == 1


def test_sigkill_while_printing_and_handing_over_then_rerun(world):
    """The real CLI killed at each step: printing (file written, not marked) prints again; a
    handover killed after its claim, or after its list, is finished by the next run -- one
    handover per carrier, its list the labels printed."""
    w = world(ORDERS)
    run_once_until_quiet(w)

    killed = run_cli(w, "labels", "print", extra_env={"MFN_CONNECTOR_CRASH_AT": AFTER_PRINT_FILE})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    ledger = ledger_of(w)
    try:
        assert len(ledger.unprinted_packages()) > 0 and ledger.print_batches() == []
    finally:
        ledger.close()
    done = run_cli(w, "labels", "print")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0].endswith(".pdf")

    for carrier, point in (("yunexpress", AFTER_HANDOVER_CLAIM), ("chinapost", AFTER_HANDOVER_LIST)):
        killed = run_cli(w, "handover", "close", "--carrier", carrier,
                         extra_env={"MFN_CONNECTOR_CRASH_AT": point})
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        again = run_cli(w, "handover", "close", "--carrier", carrier)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "finished a run that was interrupted" in again.stdout, again.stdout
    rest = run_cli(w, "handover", "close")
    assert rest.returncode == 0, rest.stderr[-2000:]

    ledger = ledger_of(w)
    try:
        handovers = ledger.handovers()
        assert sorted(h.carrier for h in handovers) == sorted(CARRIERS)  # one each, none twice
        assert all(h.closed for h in handovers) and ledger.open_handovers() == []
        printed = [p for p, m in ledger.label_page(limit=1000) if m.printed]
        for h in handovers:
            listed = [row["tracking_number"] for row in csv.DictReader(open(h.csv_path, encoding="utf-8"))]
            assert sorted(listed) == sorted(p.tracking_number for p in printed if p.carrier == h.carrier)
        assert all(m.print_count == 1 and m.handed_over for _, m in ledger.label_page(limit=1000))
    finally:
        ledger.close()
    listing = run_cli(w, "handover", "list")
    assert listing.returncode == 0 and listing.stdout.count("closed") == len(CARRIERS)


def test_labels_not_printed_or_not_handed_over_near_ship_by_raise_the_ship_by_alert(shipped):
    _w, rt = shipped
    ledger = rt.ledger
    package = ledger.unprinted_packages()[0]
    order = ledger.get_order(package.order_id)
    near = order.order.ship_by - timedelta(hours=5)

    def alert():
        found = [a for a in ledger.alerts() if a.kind == "ship_by_near" and a.subject == package.order_id]
        return found[0] if found else None

    ship_by_guard(rt, near)
    assert alert() is None  # no label printed here yet: the seller prints elsewhere, no paper alert

    others = [p.order_id for p in ledger.unprinted_packages() if p.order_id != package.order_id][:1]
    print_labels(rt, order_ids=others)  # labels are printed here from now on
    ship_by_guard(rt, near)
    assert "label not printed" in alert().message and alert().details["label"] == "label not printed"
    assert f"is {order.state.value}" in alert().message

    print_labels(rt, order_ids=[package.order_id])
    ship_by_guard(rt, near)
    assert "label printed, not handed over" in alert().message

    handover_engine.close_handovers(rt, carrier=package.carrier)
    ship_by_guard(rt, near)
    assert alert() is None


def test_cli_labels_and_handover(shipped):
    w, rt = shipped
    runner = CliRunner()
    base = ["--config", str(w.config_path)]
    unknown = runner.invoke(cli, [*base, "labels", "print", "--order", "999-0000000-0000000"])
    assert unknown.exit_code != 0 and "no order 999-0000000-0000000" in unknown.output
    out = str(w.config_path.parent / "batch.pdf")
    printed = runner.invoke(cli, [*base, "labels", "print", "--packing-slips", "-o", out])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.splitlines()[0] == out and "pick list" in printed.stdout
    assert all(code in printed.output for code in CARRIERS)
    reprint = runner.invoke(cli, [*base, "labels", "print", "--reprint"])
    assert reprint.exit_code != 0 and "--reprint needs --order" in reprint.output
    closed = runner.invoke(cli, [*base, "handover", "close", "--carrier", "dhl_ecommerce"])
    assert closed.exit_code == 0, closed.output
    assert "no handover call at this carrier" in closed.output and ".csv" in closed.output
    assert runner.invoke(cli, [*base, "handover", "close", "--date", "tomorrow"]).exit_code != 0
    listing = runner.invoke(cli, [*base, "handover", "list", "--json"])
    assert listing.exit_code == 0 and '"carrier": "dhl_ecommerce"' in listing.output
    labels = runner.invoke(cli, [*base, "labels", "list", "--flag", "HANDED_OVER", "--json"])
    assert labels.exit_code == 0, labels.output
    assert labels.output.count('"label": "HANDED_OVER"') == rt.ledger.handovers()[0].packages
    for listing in (["labels", "list"], ["labels", "batches"], ["handover", "list"]):
        # (SQLite took -1 for "all", PostgreSQL refuses a negative LIMIT with a traceback)
        negative = runner.invoke(cli, [*base, *listing, "--limit", "-1"])
        assert negative.exit_code == 2 and "--limit" in negative.output, negative.output


def test_a_handover_whose_list_cannot_be_written_stays_open_and_says_why(shipped):
    """A full or read-only disk where the handover list goes: the handover stays open (the next run
    finishes it, as after a carrier that did not answer) and the command says which file and why,
    exiting non-zero -- not a traceback."""
    w, rt = shipped
    yanwen = [p for p in print_labels(rt).labels if p.carrier == "yanwen"]
    blocked = rt.config.state_dir / "handover"
    blocked.write_text("not a folder", encoding="utf-8")  # mkdir of <state_dir>/handover/<date> fails
    result = CliRunner().invoke(cli, ["--config", str(w.config_path), "handover", "close",
                                      "--carrier", "yanwen"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "OPEN (cannot write the handover list" in result.output and str(blocked) in result.output
    assert "still open" in result.output
    (open_one,) = rt.ledger.open_handovers(carrier="yanwen")
    assert open_one.packages == len(yanwen)
    blocked.unlink()
    (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert done.closed and done.resumed and done.handover.id == open_one.id
    assert len(handover_rows(done)) == len(yanwen)


def test_handover_close_refuses_a_pickup_date_out_of_range_with_a_message(tmp_path, monkeypatch):
    """The last date there is (or a typo near it) has no end of day: a message, as the API's 422."""
    monkeypatch.setenv("MFN_STATE_DIR", str(tmp_path / "state"))
    config = str(Path(__file__).resolve().parents[1] / "config" / "sandbox.yaml")
    for text in ("9999-12-31", "1999-12-31"):
        result = CliRunner().invoke(cli, ["--config", config, "handover", "close", "--date", text])
        assert result.exit_code == 2 and not isinstance(result.exception, OverflowError), result.output
        assert f"'{text}' is not a pickup date between 2000-01-01 and 9000-01-01" in result.output


def test_labels_print_json_with_nothing_to_print_is_still_json(tmp_path, monkeypatch):
    """A routine `labels print --json` with nothing new exits 0: its stdout must parse, as a batch of
    none (the note goes to stderr)."""
    monkeypatch.setenv("MFN_STATE_DIR", str(tmp_path / "state"))
    config = str(Path(__file__).resolve().parents[1] / "config" / "sandbox.yaml")
    result = CliRunner().invoke(cli, ["--config", config, "labels", "print", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["labels"] == 0 and shown["path"] is None and shown["skipped"] == []
    assert "nothing to print" in result.stderr


def handover_rows(result) -> list[dict]:
    with open(result.handover.csv_path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_label_erased_with_its_buyers_data_is_never_handed_over(shipped):
    _w, rt = shipped
    printed = print_labels(rt).labels
    erased = next(p for p in printed if p.carrier == "yunexpress")
    rt.ledger.purge_pii([erased.order_id])  # e.g. a cancelled order held void_refused: purged at once
    (done,) = handover_engine.close_handovers(rt, carrier="yunexpress")
    assert done.closed and erased.tracking_number not in {r["tracking_number"] for r in handover_rows(done)}
    assert rt.ledger.label_marks([erased.id])[erased.id].handover_id is None


def open_yanwen_handover(rt, monkeypatch) -> list:
    """Print the labels, then try to close Yanwen's handover while its carrier call fails: the
    handover stays open. Yanwen's labels in it (at least two)."""
    yanwen = [p for p in print_labels(rt).labels if p.carrier == "yanwen"]
    assert len(yanwen) >= 2

    def down(shipments, *, reference):
        raise TransientCarrierError("read timed out")

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", down, raising=False)
    (open_one,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert not open_one.closed and open_one.handover.packages == len(yanwen)
    return yanwen


def test_a_label_voided_while_its_handover_is_open_is_left_out_of_it(shipped, monkeypatch):
    """The carrier's handover call failed, so the handover stayed open; meanwhile a label was
    voided (Amazon cancelled the order). The run that finishes the handover must neither send it to
    the carrier nor put it on the list the driver signs."""
    _w, rt = shipped
    yanwen = open_yanwen_handover(rt, monkeypatch)
    voided = yanwen[0]
    void_order(rt, voided.order_id)
    assert rt.ledger.get_package(voided.id).state is PackageState.VOIDED
    sent: list[str] = []

    def up(shipments, *, reference):
        sent.extend(s.tracking_number for s in shipments)
        return "M1"

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", up, raising=False)
    (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    listed = {r["tracking_number"] for r in handover_rows(done)}
    assert done.closed and done.handover.packages == len(yanwen) - 1
    assert voided.tracking_number not in listed and voided.tracking_number not in sent
    assert listed == {p.tracking_number for p in yanwen[1:]} == set(sent)
    marks = rt.ledger.label_marks([voided.id])[voided.id]
    assert marks.handover_id is None and marks.handed_over_at is None


def test_a_label_voided_during_the_carriers_handover_call_is_not_listed_nor_marked(shipped, monkeypatch):
    _w, rt = shipped
    yanwen = [p for p in print_labels(rt).labels if p.carrier == "yanwen"]
    voided = yanwen[0]

    def manifest(shipments, *, reference):
        void_order(rt, voided.order_id)  # `orders void` from another shell, meanwhile
        return "M1"

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", manifest, raising=False)
    (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    listed = {r["tracking_number"] for r in handover_rows(done)}
    assert voided.tracking_number not in listed and done.handover.packages == len(yanwen) - 1
    assert rt.ledger.label_marks([voided.id])[voided.id].handed_over_at is None


def test_closing_a_handover_never_marks_a_label_that_died_meanwhile(shipped):
    """The ledger's own guard, for a label voided between the list being written and the close."""
    _w, rt = shipped
    yanwen = [p for p in print_labels(rt).labels if p.carrier == "yanwen"]
    warehouse = rt.config.default_warehouse.name
    claimed = rt.ledger.claim_handover("yanwen", warehouse, "2026-12-06", [p.id for p in yanwen],
                                       default_warehouse=warehouse)
    void_order(rt, yanwen[0].order_id)
    closed = rt.ledger.close_handover(claimed.id, pdf_path="x.pdf", csv_path="x.csv")
    marks = rt.ledger.label_marks([p.id for p in yanwen])
    assert closed.packages == len(yanwen) - 1 and marks[yanwen[0].id].handed_over_at is None
    assert all(marks[p.id].handed_over_at is not None for p in yanwen[1:])


def test_a_label_whose_package_row_cannot_be_read_is_left_out_named_and_the_others_print(shipped):
    """A package whose plan is not JSON (a hand edit, a restore gone wrong): asked for by order id,
    its order's labels are left out with the package named, and the other orders' print. The read
    of that order's packages raised, and no label asked for was printed."""
    _w, rt = shipped
    bad, good = rt.ledger.unprinted_packages()[:2]
    with rt.ledger._write() as conn:
        conn.execute("UPDATE packages SET plan = '{\"carrier\": ' WHERE id = ?", (bad.id,))

    result = print_labels(rt, order_ids=[bad.order_id, good.order_id])

    assert [p.id for p in result.labels] == [good.id]
    assert [what for what, why in result.skipped if f"package {bad.id} of order {bad.order_id}" in why] == [
        bad.order_id]


def test_a_label_voided_while_its_batch_is_merged_is_not_marked_printed(shipped):
    """Amazon cancels an order while a big batch is being merged, and the daemon voids its label:
    the batch must not go out with that label marked printed (the parcel would be packed and
    stuck with a dead label). It is refused like a batch another print overtook, its file removed,
    and the next batch prints the live labels only."""
    _w, rt = shipped
    waiting = rt.ledger.unprinted_packages()
    doomed = waiting[-1]
    voided = []

    def meanwhile(package):
        if not voided:
            void_order(rt, doomed.order_id)
            voided.append(doomed)

    with pytest.raises(NothingToPrint, match="voided"):
        print_labels(rt, on_label=meanwhile)
    assert rt.ledger.get_package(doomed.id).state is PackageState.VOIDED
    assert not rt.ledger.label_marks([doomed.id])[doomed.id].printed
    assert list((rt.config.state_dir / "print").glob("*.pdf")) == []
    again = print_labels(rt)
    assert doomed.id not in {p.id for p in again.labels} and len(again.labels) == len(waiting) - 1


def cancel_on_amazon(rt, order_id: str) -> None:
    """Amazon's next poll says the order is cancelled; the engine has not stepped it (voided its
    label) yet: a daemon between its poll and its next step, or one whose void waits on a feed."""
    order = rt.ledger.get_order(order_id, with_pii=False).order
    rt.ledger.upsert_order(dataclasses.replace(order, status=FulfillmentStatus.CANCELLED,
                                               last_updated=order.last_updated + timedelta(minutes=1)))


def test_a_parcel_of_an_order_amazon_cancelled_is_neither_printed_nor_handed_over(shipped, caplog):
    """Amazon cancelled the order and its label is not voided yet: its label stays out of the
    day's batch, and a parcel already printed stays out of the handover with a WARNING (take it
    out of the bag), before the claim and when an open handover is finished."""
    _w, rt = shipped
    waiting = [p for p in rt.ledger.unprinted_packages() if p.carrier == "yanwen"]
    assert len(waiting) >= 3
    unprinted, printed, claimed = waiting[:3]
    cancel_on_amazon(rt, unprinted.order_id)

    batch = print_labels(rt)
    assert unprinted.id not in {p.id for p in batch.labels}
    assert [why for what, why in batch.skipped if unprinted.order_id in what] == [
        "Amazon cancelled its order: its label is voided next, not printed"]

    cancel_on_amazon(rt, printed.order_id)
    with caplog.at_level("WARNING", logger="connector.engine"):
        (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    listed = {r["tracking_number"] for r in handover_rows(done)}
    assert done.closed and printed.tracking_number not in listed and claimed.tracking_number in listed
    assert rt.ledger.label_marks([printed.id])[printed.id].handover_id is None
    assert any(printed.order_id in r.getMessage() and "cancelled" in r.getMessage() for r in caplog.records)


def test_a_parcel_whose_order_amazon_cancelled_after_the_claim_is_left_out_of_the_open_handover(
        shipped, monkeypatch, caplog):
    _w, rt = shipped
    yanwen = open_yanwen_handover(rt, monkeypatch)
    cancelled = yanwen[0]
    cancel_on_amazon(rt, cancelled.order_id)
    sent: list[str] = []

    def up(shipments, *, reference):
        sent.extend(s.tracking_number for s in shipments)
        return "M1"

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", up, raising=False)
    with caplog.at_level("WARNING", logger="connector.engine"):
        (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    listed = {r["tracking_number"] for r in handover_rows(done)}
    assert done.closed and done.handover.packages == len(yanwen) - 1
    assert cancelled.tracking_number not in listed and cancelled.tracking_number not in sent
    marks = rt.ledger.label_marks([cancelled.id])[cancelled.id]
    assert marks.handover_id is None and marks.handed_over_at is None
    assert any(cancelled.order_id in r.getMessage() and "cancelled" in r.getMessage() for r in caplog.records)


def test_a_parcel_whose_order_was_held_after_the_claim_waits_out_of_the_open_handover(shipped, monkeypatch):
    """The handover stayed open (the carrier did not answer); meanwhile the buyer asked to cancel
    and the order was held. Finishing the handover leaves that parcel out, like a held order's at
    the claim: it joins a later handover once released."""
    _w, rt = shipped
    yanwen = open_yanwen_handover(rt, monkeypatch)
    held = yanwen[0]
    rt.ledger.hold(held.order_id, "buyer_cancel_requested", "the buyer asked to cancel")
    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", lambda shipments, *, reference: "M1",
                        raising=False)
    (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert done.closed and held.tracking_number not in {r["tracking_number"] for r in handover_rows(done)}
    assert rt.ledger.label_marks([held.id])[held.id].handover_id is None
    rt.ledger.release(held.order_id)
    (later,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert [r["tracking_number"] for r in handover_rows(later)] == [held.tracking_number]


def test_a_plugin_bug_in_one_carriers_handover_call_leaves_it_open_and_the_others_close(shipped, monkeypatch):
    """A carrier plugin whose handover call raises something that is not a carrier answer (its
    bug: a KeyError reading the answer): that handover stays open, named with the error, and every
    other carrier's handover still closes -- one plugin must not stop the day's pickups."""
    _w, rt = shipped
    printed = print_labels(rt).labels

    def broken(shipments, *, reference):
        raise KeyError("manifestId")

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", broken, raising=False)
    results = handover_engine.close_handovers(rt)
    by_carrier = {r.handover.carrier: r for r in results}
    assert set(by_carrier) == {p.carrier for p in printed}
    assert not by_carrier["yanwen"].closed and "manifestId" in by_carrier["yanwen"].error
    assert all(r.closed for code, r in by_carrier.items() if code != "yanwen")
    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", lambda shipments, *, reference: "M1",
                        raising=False)
    (done,) = handover_engine.close_handovers(rt)
    assert done.closed and done.resumed and done.handover.manifest_state == "closed"


def test_labels_list_says_when_more_labels_match_than_it_shows(shipped):
    """`labels list` shows the oldest --limit labels: with more matching, the operator must be told
    (stderr; stdout stays a listing or JSON), not left to think the newest labels are missing."""
    w, rt = shipped
    base = ["--config", str(w.config_path), "labels", "list"]
    total = len(rt.ledger.unprinted_packages())
    assert total > 5
    cut = CliRunner().invoke(cli, [*base, "--limit", "5", "--json"])
    assert cut.exit_code == 0, cut.output
    assert len(json.loads(cut.stdout)) == 5
    assert "more labels match" in cut.stderr and "--limit" in cut.stderr
    whole = CliRunner().invoke(cli, [*base, "--limit", str(total + 50)])
    assert whole.exit_code == 0 and "more labels match" not in whole.stderr


def test_a_label_whose_pages_cannot_be_read_is_left_out_and_the_others_print(shipped):
    """A label file that opens but whose pages cannot be read (here: encrypted with a password the
    daemon does not have), or that has no page at all, is 'unreadable': left out with the reason
    and still unprinted, while the others print -- not a batch that fails whole, every time."""
    _w, rt = shipped
    from pypdf import PdfWriter

    locked, empty = rt.ledger.unprinted_packages()[:2]
    writer = PdfWriter(clone_from=PdfReader(locked.label_path))
    writer.encrypt(user_password="secret", owner_password="secret", algorithm="AES-128")
    with open(locked.label_path, "wb") as fh:
        writer.write(fh)
    blank = PdfWriter()
    with open(empty.label_path, "wb") as fh:
        blank.write(fh)

    result = print_labels(rt)

    assert {locked.id, empty.id}.isdisjoint(p.id for p in result.labels) and result.labels
    reasons = dict(result.skipped)
    assert "cannot be read" in reasons[f"{locked.order_id} package {locked.package_ref}"]
    assert "has no page" in reasons[f"{empty.order_id} package {empty.package_ref}"]
    marks = rt.ledger.label_marks([locked.id, empty.id])
    assert not marks[locked.id].printed and not marks[empty.id].printed


def test_a_carriers_refusal_to_close_a_handover_is_kept_and_printed_without_the_buyers_data(
        shipped, monkeypatch, caplog):
    """A carrier's refusal may quote a parcel's recipient (the name, the postcode it rejects): it is
    stored on the handover, printed on the list the driver signs and logged, so each order's address
    is taken out of it, as from any other words of a carrier's."""
    from connector.kit.carrier import PermanentCarrierError

    _w, rt = shipped
    yanwen = [p for p in print_labels(rt).labels if p.carrier == "yanwen"]
    buyer = rt.ledger.get_order(yanwen[-1].order_id).order.ship_to
    assert buyer.name and buyer.postal_code

    def refuse(shipments, *, reference):
        raise PermanentCarrierError(f"parcel for {buyer.name} ({buyer.postal_code}): not collectable")

    monkeypatch.setattr(rt.carriers["yanwen"], "close_manifest", refuse, raising=False)
    (done,) = handover_engine.close_handovers(rt, carrier="yanwen")
    assert done.closed and done.handover.manifest_state == "refused"
    assert "not collectable" in done.handover.manifest_note
    pdf = "\n".join(page_texts(done.handover.pdf_path))
    assert "not collectable" in pdf
    for said in (done.handover.manifest_note, pdf, caplog.text):
        assert buyer.name not in said and buyer.postal_code not in said
