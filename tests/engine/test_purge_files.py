"""A label shows the buyer's name and address, so it goes with them: once an order's buyer data is
purged, its label files and every print batch holding one of its labels are deleted from disk --
also when the process died between the purge and the deletion (the next pass's sweep deletes
them) -- and the label is refused from then on (``labels print``; the API answers 410, see
tests/api/test_api_orders.py). Runs on both ledger stores (tests/conftest.py, BOTH_STORES)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.engine import steer
from connector.engine.loop import Engine
from connector.engine.printing import LabelsErased, print_labels
from connector.engine.purge import delete_erased_files
from connector.ledger import OrderState

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


@pytest.fixture
def worked(world):
    """A runtime whose daemon bought and confirmed labels (files under labels_dir)."""
    w = world({"sandbox": {"orders": 8}})
    rt = w.runtime()
    Engine(rt).run_until_quiet()
    yield w, rt
    rt.close()


def label_files(rt, order_id: str) -> list[Path]:
    return [Path(p.label_path) for p in rt.ledger.packages(order_id) if p.label_path]


def labelled(rt) -> list[str]:
    """Orders whose labels are all on disk, not erased, the newest one live (VERIFIED)."""
    return sorted(r.order_id for r in rt.ledger.orders([OrderState.VERIFIED])
                  if label_files(rt, r.order_id) and all(f.is_file() for f in label_files(rt, r.order_id)))


def test_a_purged_orders_labels_and_batches_are_deleted_by_the_next_pass_even_after_a_crash(worked):
    _w, rt = worked
    x, y, *others = labelled(rt)
    assert others
    whole = print_labels(rt).path  # every label: x's and y's among them
    only_y = print_labels(rt, order_ids=[y], reprint=True).path
    assert whole.is_file() and only_y.is_file()

    # The ledger's purge committed, then the process died before any file was deleted.
    assert rt.ledger.purge_pii([x]) == 1
    assert all(f.is_file() for f in label_files(rt, x))
    assert all(p.label_erased_at is not None for p in rt.ledger.packages(x))

    Engine(rt).run_pass(ingest=False)  # the first pass after the restart sweeps

    assert not any(f.exists() for f in label_files(rt, x))
    assert not whole.exists()  # it held x's label: the batch goes whole ...
    assert only_y.is_file()  # ... one without it stays
    for order_id in (y, *others):  # and every other order's labels stay, to print again
        assert all(f.is_file() for f in label_files(rt, order_id)), order_id
    assert delete_erased_files(rt).total == 0  # idempotent: nothing left to delete


def test_a_file_printed_again_is_judged_by_its_newest_batch_and_recorded_absolute(worked, tmp_path,
                                                                                 monkeypatch):
    """`labels print -o same.pdf` twice: the file now holds the second batch's labels only, so the
    purge of an order of the first batch must not delete it; and `-o` relative to the printing
    shell's directory is recorded absolute, so a sweep in another directory finds the right file."""
    _w, rt = worked
    x, y, *_ = labelled(rt)
    monkeypatch.chdir(tmp_path)
    first = print_labels(rt, order_ids=[x], reprint=True, output="again.pdf")
    second = print_labels(rt, order_ids=[y], reprint=True, output="again.pdf")
    assert first.path == second.path == tmp_path / "again.pdf"
    assert {path for _, path in rt.ledger.print_batch_paths()} >= {str(tmp_path / "again.pdf")}
    rt.ledger.purge_pii([x])
    monkeypatch.chdir(rt.config.state_dir)  # the daemon's own directory
    delete_erased_files(rt)
    assert (tmp_path / "again.pdf").is_file()  # y's labels, not x's: kept
    rt.ledger.purge_pii([y])
    delete_erased_files(rt)
    assert not (tmp_path / "again.pdf").exists()


def test_the_daemon_sweeps_too_not_only_run_once(worked):
    """run_forever (the daemon's own loops, not passes) deletes a purged order's label files."""
    import threading

    _w, rt = worked
    x = labelled(rt)[0]
    files = label_files(rt, x)
    assert rt.ledger.purge_pii([x]) == 1 and all(f.is_file() for f in files)
    engine = Engine(rt)
    threading.Timer(1.5, engine.stop_event.set).start()
    engine.run_forever(tick_seconds=0.2)
    assert not any(f.exists() for f in files)


def test_a_voided_orders_label_goes_at_the_purge_after_the_void(worked):
    _w, rt = worked
    order_id = labelled(rt)[0]
    files = label_files(rt, order_id)
    assert steer.void_order(rt, order_id).complete
    assert rt.ledger.get_order(order_id).state is OrderState.VOIDED and all(f.is_file() for f in files)
    Engine(rt).run_pass(ingest=False)  # a voided order keeps nothing: purged, its label deleted
    assert rt.ledger.get_order(order_id).pii_purged
    assert not any(f.exists() for f in files)


def test_the_daemons_purge_deletes_the_label_files_right_after_not_at_the_next_hourly_sweep(worked):
    """In the daemon the hourly sweep (every worker's periodic thread) and the purge (the leader's
    thread) run on clocks of their own: a sweep that ran just before the purge left the files of
    the orders it purged on disk for up to an hour. The purge sweeps right after it erases."""
    _w, rt = worked
    order_id = labelled(rt)[0]
    files = label_files(rt, order_id)
    assert steer.void_order(rt, order_id).complete  # a voided order keeps nothing: purged at once
    engine = Engine(rt)
    engine.erase_files()  # this hour's sweep ran first: the next is an hour away
    engine._leader_jobs()
    assert rt.ledger.get_order(order_id).pii_purged
    assert not any(f.exists() for f in files)


def test_leftovers_nothing_records_go_once_an_hour_old(worked):
    _w, rt = worked
    order_id = labelled(rt)[0]
    label = label_files(rt, order_id)[0]
    folder = rt.config.state_dir / "print"
    folder.mkdir(parents=True, exist_ok=True)
    old_tmp, young_tmp = label.parent / f".{label.name}.k1x2", label.parent / f".{label.name}.k3y4"
    old_batch, young_batch = folder / "labels-20200101-000000.pdf", folder / "labels-20200101-000001.pdf"
    old_other, old_dotfile = folder / "notes.txt", label.parent / ".keep"
    an_hour_ago = time.time() - 3700
    for path in (old_tmp, young_tmp, old_batch, young_batch, old_other, old_dotfile):
        path.write_bytes(b"%PDF-1.4 half written")
        if path not in (young_tmp, young_batch):
            os.utime(path, (an_hour_ago, an_hour_ago))

    done = delete_erased_files(rt)

    assert (done.labels, done.batches, done.leftovers) == (0, 0, 2)
    assert not old_tmp.exists() and not old_batch.exists()
    assert young_tmp.exists() and young_batch.exists()  # may be a write or a print under way
    assert old_other.exists() and old_dotfile.exists()  # not files the daemon writes
    assert label.is_file()  # its order's buyer data is kept

    rt.ledger.purge_pii([order_id])  # a young leftover of a purged order's label goes at once
    assert delete_erased_files(rt).labels == 1 + len(label_files(rt, order_id))
    assert not young_tmp.exists() and not label.exists()


def test_labels_print_refuses_a_purged_orders_label_and_prints_the_others(worked):
    w, rt = worked
    gone, kept = labelled(rt)[:2]
    rt.ledger.purge_pii([gone])
    with pytest.raises(LabelsErased, match=f"order {gone}: its buyer data was purged on .* label erased"):
        print_labels(rt, order_ids=[gone])

    refused = CliRunner().invoke(cli, ["--config", str(w.config_path), "labels", "print", "--order", gone])
    assert refused.exit_code == 1 and "its buyer data was purged on" in refused.output, refused.output
    assert "never printed or served again" in refused.output

    both = CliRunner().invoke(cli, ["--config", str(w.config_path), "labels", "print", "--order", gone,
                                    "--order", kept, "--json"])
    assert both.exit_code == 0, both.output
    answer = json.loads(both.output)
    assert answer["labels"] == 1 and [s["what"] for s in answer["skipped"]] == [gone]
    assert answer["skipped"][0]["why"].startswith("its buyer data was purged on")


def test_a_stray_file_whose_name_is_not_utf8_stops_no_sweep(worked):
    """A file nobody here wrote, its name in another encoding (a Latin-1 'Lieferschein-1.pdf' copied
    in over a share, say), shaped like a label: it names no order of the ledger and is left alone,
    and the purged orders' labels go all the same. Asked of the ledger as it was, its name (with
    a surrogate for each byte UTF-8 cannot read) failed every sweep of that disk, hour after hour."""
    _w, rt = worked
    order_id = labelled(rt)[0]
    files = label_files(rt, order_id)
    stray = os.path.join(os.fsencode(rt.labels_dir), b"Lieferschein-f\xfcr-1.pdf")
    with open(stray, "wb") as fh:
        fh.write(b"%PDF-1.4 not ours")
    rt.ledger.purge_pii([order_id])

    assert delete_erased_files(rt).labels == len(files)
    assert not any(f.exists() for f in files) and os.path.exists(stray)
