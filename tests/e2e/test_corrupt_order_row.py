"""An order row the code cannot read (a hand edit, a restore gone wrong): that order is held
ledger_inconsistent, the others ship, and the commands say which row instead of a traceback. It
used to end the daemon with a KeyError."""
from __future__ import annotations

import pytest

from connector.engine.loop import Engine
from connector.ledger import OrderState

from .helpers import SEEDED_HOLDS, assert_exactly_once, ingest_all, run_cli

pytestmark = pytest.mark.e2e


def test_an_unreadable_order_row_is_held_and_the_others_ship(world):
    w = world()
    rt = w.runtime()
    try:
        ingest_all(rt)
        broken = sorted(r.order_id for r in rt.ledger.orders([OrderState.NEW]))[0]
        with rt.ledger._write() as conn:  # what a hand edit may leave
            saved = conn.execute("SELECT data FROM orders WHERE order_id = ?", (broken,)).fetchone()[0]
            conn.execute("UPDATE orders SET data = ? WHERE order_id = ?", ("{}", broken))
        Engine(rt).run_until_quiet()
    finally:
        rt.close()
    shown = run_cli(w, "orders", "show", broken)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert f"Error: order {broken}: its stored data cannot be read (KeyError: 'order_id')" in shown.stderr
    listed = run_cli(w, "orders", "list", "--state", "HELD")
    assert broken in listed.stdout and "ledger_inconsistent" in listed.stdout
    rt = w.runtime()
    try:
        with rt.ledger._write() as conn:  # restored from a backup: the audit reads every order
            conn.execute("UPDATE orders SET data = ? WHERE order_id = ?", (saved, broken))
        assert rt.ledger.get_order(broken).hold_reason == "ledger_inconsistent"
    finally:
        rt.close()
    assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"ledger_inconsistent", "no_eligible_service"})
