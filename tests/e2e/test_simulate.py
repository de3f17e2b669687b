"""`mfn-connector sandbox simulate`: the real daemon against the emulators on a simulated clock."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def simulate(config, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connector.cli", "--config", str(config), "sandbox",
                           "simulate", "--state-dir", str(tmp_path / "sim"), *args],
                          capture_output=True, text=True, timeout=600)


def test_a_short_simulation_reports_the_figures(write_config, tmp_path):
    result = simulate(write_config(), tmp_path, "--days", "3", "--settle-days", "2", "--orders-per-day", "4",
                      "--buyer-cancels", "0.3", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    f = json.loads(result.stdout)
    # the daily stream and nothing else (less the orders Amazon fulfils itself, which are never ingested)
    streamed = 3 * 4 * f["settings"]["accounts"]
    assert 0.8 * streamed <= f["orders"]["total"] <= streamed
    assert f["labels"]["bought"] > 0 and sum(f["labels"]["by_carrier"].values()) == f["labels"]["bought"]
    assert f["labels"]["comparable_cost"] >= f["labels"]["cheapest_eligible_cost"] > 0
    assert f["vtr"]["confirmations_after_ship_by"] == 0
    assert f["vtr"]["packages"] > 0 and f["vtr"]["vtr"] and f["vtr"]["services"]
    cancels = f["voids"]["buyer_cancels"]
    assert sum(cancels.values()) > 0
    # every buyer cancel Amazon accepted ended in a voided label, or a void the carrier refused
    assert cancels.get("cancelled", 0) == f["voids"]["voided"] + f["voids"]["void_refused"]
    assert set(f["pii"]) == {"due", "on_time", "late", "kept_past_due", "not_due_yet"}
    assert f["pii"]["late"] == f["pii"]["kept_past_due"] == 0
    assert (tmp_path / "sim" / "ledger.db").exists() and not (tmp_path / "state" / "ledger.db").exists()
    copy = tmp_path / "sim" / "simulation.yaml"  # the configuration, credentials and all
    assert copy.stat().st_mode & 0o077 == 0, oct(copy.stat().st_mode)


def test_the_simulation_refuses_an_endpoint_off_loopback(write_config, tmp_path):
    """A production file passed by mistake: no invented orders to a real carrier, no invented
    events to a real ERP (signed with its real secret)."""
    erp = {"name": "erp", "url": "https://erp.example.com/hooks",
           "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    config = write_config({"carriers": {"yunexpress": {"base_url": "https://openapi.example.com"}},
                           "webhooks": {"endpoints": [erp]}})
    result = simulate(config, tmp_path, "--days", "1", "--settle-days", "0")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "carriers.yunexpress.base_url = https://openapi.example.com" in result.stderr
    assert "webhooks.endpoints[0].url = https://erp.example.com/hooks" in result.stderr
    assert "Error: the simulation runs against the loopback emulators only" in result.stderr
    assert not (tmp_path / "sim").exists()  # refused before it made its directory or started an emulator


@pytest.mark.parametrize("where", ["a daemon's state", "the configured state_dir"])
def test_the_simulation_never_empties_a_directory_it_did_not_make(write_config, tmp_path, where):
    """It empties its directory first: given a live state directory by mistake, it deleted the
    ledger, the PII key and the labels, and only then refused (a production file)."""
    config = write_config()
    live = tmp_path / ("sim" if where == "a daemon's state" else "state")
    live.mkdir(exist_ok=True)
    for name in ("ledger.db", "pii.key"):
        (live / name).write_text("kept", encoding="utf-8")
    command = [sys.executable, "-m", "connector.cli", "--config", str(config), "sandbox", "simulate",
               "--state-dir", str(live), "--days", "1", "--settle-days", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    expected = "holds files no simulation made" if live.name == "sim" else "the configuration's state_dir"
    assert expected in result.stderr, result.stderr[-3000:]
    assert (live / "ledger.db").read_text(encoding="utf-8") == "kept" and (live / "pii.key").exists()


def test_a_second_simulation_empties_the_first_ones_directory(write_config, tmp_path):
    config = write_config()
    for _ in range(2):
        result = simulate(config, tmp_path, "--days", "1", "--settle-days", "0", "--orders-per-day", "1")
        assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sim" / ".mfn-simulation").exists()
