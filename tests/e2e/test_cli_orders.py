"""`mfn-connector orders hold|release|retry|list|show` against a real ledger."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from connector.cli import cli

from .helpers import ingest_all

pytestmark = pytest.mark.e2e


def test_an_operator_holds_releases_and_retries_an_order(world):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        order_id = rt.ledger.orders()[0].order_id
    finally:
        rt.close()

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", *args])

    held = run("hold", order_id)
    assert held.exit_code == 0 and held.output.strip() == f"{order_id}: HELD (manual)", held.output
    listed = json.loads(run("list", "--state", "HELD", "--json").output)
    assert [(r["order_id"], r["hold_reason"]) for r in listed] == [(order_id, "manual")]
    shown = json.loads(run("show", order_id).output)
    assert shown["hold"]["reason"] == "manual" and "ship_to" not in json.dumps(shown)
    bad = run("hold", order_id, "--reason", "carrier_on_fire")
    assert bad.exit_code == 2 and "carrier_on_fire" in bad.output  # only documented reasons
    released = run("release", order_id)
    assert released.exit_code == 0 and released.output.strip() == f"{order_id}: released to NEW"
    retried = run("retry", order_id)
    assert retried.exit_code == 0 and retried.output.strip() == f"{order_id}: due now"
    unknown = run("release", "999-0000000-0000000")
    assert unknown.exit_code == 1 and "999-0000000-0000000" in unknown.output
