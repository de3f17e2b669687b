"""`mfn-connector orders list` reads the ledger a page at a time (light rows, the newest package
joined in SQL, no buyer data): what it prints is what reading every record would print."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.ledger import ACTIVE_ORDER_STATES, OrderState
from connector.model import utcnow

pytestmark = pytest.mark.e2e


def slow_rows(ledger, states=None):
    """The listing as it was computed from full records, in the listing's order (oldest first)."""
    now = utcnow()
    rows = []
    for record, _ in ledger.order_page(states=states, limit=10_000):
        ship_by = record.order.ship_by
        package = (ledger.packages(record.order_id) or [None])[-1]
        rows.append({"order_id": record.order_id, "site": record.order.site, "state": record.state.value,
                     "ship_by": ship_by.isoformat() if ship_by else None,
                     "hours_to_ship_by": round((ship_by - now).total_seconds() / 3600, 1) if ship_by
                     else None,
                     "carrier": package.carrier if package else "",
                     "tracking_number": package.tracking_number if package else "",
                     "hold_reason": record.hold_reason})
    return rows


def test_the_listing_pages_and_prints_what_the_records_say(world, monkeypatch):
    from connector.engine.loop import Engine

    monkeypatch.setattr("connector.cli.orders._PAGE", 2)  # several pages, a partial last one
    w = world({"sandbox": {"orders": 7}})
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_pass()
        some = rt.ledger.order_page(limit=3)
        rt.ledger.hold(some[0][0].order_id, "manual", "held by an operator")
        expected = slow_rows(rt.ledger)
        expected_held = slow_rows(rt.ledger, [OrderState.HELD])
        absent = next(s for s in OrderState if not rt.ledger.counts().get(s.value))
    finally:
        rt.close()
    assert len(expected) >= 7 and any(r["tracking_number"] for r in expected)

    def run(*args: str):
        result = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "list", *args])
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(run("--json"))
    for got, want in zip(listed, expected, strict=True):  # hours differ by the time between the reads
        assert abs(got.pop("hours_to_ship_by") - want.pop("hours_to_ship_by")) <= 0.1
        assert got == want
    assert json.loads(run("--state", "HELD", "--json"))[0]["order_id"] == expected_held[0]["order_id"]
    assert run("--state", absent.value, "--json") == "[]\n"
    text = run().splitlines()
    assert text[0].split() == ["ORDER", "SITE", "STATE", "SHIP-BY", "IN", "CARRIER", "TRACKING", "HOLD"]
    assert [line.split()[0] for line in text[1:]] == [r["order_id"] for r in expected]
    for size in (len(expected), 1):  # pages that end exactly at the last order: then an empty page
        monkeypatch.setattr("connector.cli.orders._PAGE", size)
        again = run().splitlines()  # no blank line for the empty page (hours move with the clock)
        assert [line.split()[0] for line in again] == [line.split()[0] for line in text]
        assert len(json.loads(run("--json"))) == len(expected)
    held = next(line for line in text if line.startswith(expected_held[0]["order_id"]))
    assert held.rstrip().endswith("manual")
    due = json.loads(run("--due-within", "30d", "--json"))
    assert [r["hours_to_ship_by"] for r in due] == sorted(r["hours_to_ship_by"] for r in due)
    assert {r["state"] for r in due} <= {s.value for s in (*ACTIVE_ORDER_STATES, OrderState.HELD)
                                         if s is not OrderState.CONFIRMED}
