"""A third-party carrier, the way a user gets one: `pip install`, configure, ship, uninstall.

The example distribution in ``examples/carrier-plugin`` is built and installed with pip into the
running environment. Everything that must see it -- the CLI, the sandbox emulators, the daemon,
the example's own contract tests -- runs in subprocesses started after the install, so this test
process never imports the plugin. The fixture always uninstalls it, leaving the venv as it was.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pypdf import PdfReader

from connector.ledger import ACTIVE_ORDER_STATES

from .helpers import SEEDED_HOLDS

# alone: while the example is installed, every other test's plugin loading would see it too
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.alone]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "carrier-plugin"
DISTRIBUTION = "mfn-carrier-acmepost"
ENTRY_POINT = "carrier_acmepost"
ACTIVE = {state.value for state in ACTIVE_ORDER_STATES}

ACMEPOST_CONFIG = {
    "sandbox": {"orders": 12},  # per seller account: enough for several shippable US orders
    "carriers": {"acmepost": {"base_url": "${MFN_SANDBOX_ACMEPOST:-http://127.0.0.1:8710}",
                              "api_key": "sandbox-key", "timeout_seconds": 2}},
    "routing": {"sites": {"US": ["acmepost:STD"]}},
}
WITHOUT_ACMEPOST = {"sandbox": {"orders": 12}}


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300)


def pip_has(distribution: str) -> bool:
    return pip("show", distribution).returncode == 0


@pytest.fixture
def installed_example(tmp_path: Path) -> Iterator[Path]:
    """The example built from a copy (so the checkout gets no build/ or egg-info) and installed
    non-editable; uninstalled afterwards whatever happened."""
    if pip_has(DISTRIBUTION):  # e.g. `pip install -e examples/carrier-plugin` by a developer
        pytest.skip(f"{DISTRIBUTION} is already installed here; this test installs and uninstalls it")
    source = tmp_path / "carrier-plugin"
    shutil.copytree(EXAMPLE, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    try:
        # --no-deps: mfn-connector and requests are here already. The build itself runs in pip's
        # isolated build environment, as it does for a user.
        result = pip("install", "--no-deps", str(source))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield source
    finally:
        pip("uninstall", "-y", DISTRIBUTION)


class Cli:
    """`mfn-connector` in a subprocess (so it sees what pip installed after this process started)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, config: Path | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        options = ["--config", str(config)] if config else []
        result = subprocess.run([sys.executable, "-m", "connector.cli", *options, *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"mfn-connector {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result

    def json(self, config: Path | None, *args: str) -> Any:
        return json.loads(self(config, *args, "--json").stdout)

    def plugins(self) -> dict[str, dict[str, Any]]:
        return {report["name"]: report for report in self.json(None, "plugins")}

    def orders(self, config: Path) -> list[dict[str, Any]]:
        return self.json(config, "orders", "list")

    def run_until_quiet(self, config: Path, *, max_runs: int = 10) -> list[dict[str, Any]]:
        for _ in range(max_runs):
            self(config, "run", "--once")
            orders = self.orders(config)
            if not any(o["state"] in ACTIVE for o in orders):
                return orders
        raise AssertionError(f"orders still in flight after {max_runs} runs: "
                             f"{[o for o in orders if o['state'] in ACTIVE]}")


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[Callable[[Path], dict[str, str]]]:
    """`sandbox(config)` runs `mfn-connector sandbox serve --base-port 0` (every emulator on a free
    loopback port) and returns the URLs it exports; stopped at teardown."""
    processes: list[subprocess.Popen] = []

    def start(config: Path) -> dict[str, str]:
        out, err = tmp_path / "sandbox.out", tmp_path / "sandbox.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "connector.cli", "--config", str(config), "sandbox", "serve",
                 "--base-port", "0", "--state-dir", str(tmp_path / "emulators")],
                stdout=stdout, stderr=stderr, env=dict(os.environ))
        processes.append(process)
        deadline = time.monotonic() + 30
        while "sandbox running" not in err.read_text():
            assert process.poll() is None, f"sandbox serve exited:\n{err.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "sandbox serve did not start within 30 s"
            time.sleep(0.1)
        return dict(re.findall(r"^export (\w+)=(\S+)$", out.read_text(), re.MULTILINE))

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_pip_installed_carrier_ships_orders_and_uninstalls_cleanly(
        installed_example: Path, write_config: Callable[..., Path],
        sandbox_process: Callable[[Path], dict[str, str]]) -> None:
    cli = Cli(dict(os.environ))

    # 1. `mfn-connector plugins` lists it, loaded through its entry point, with its version.
    report = cli.plugins()[ENTRY_POINT]
    assert (report["status"], report["distribution"], report["version"]) == ("loaded", DISTRIBUTION, "0.1.0")
    # Its emulator is registered too, but collected only by the sandbox commands (the daemon never
    # imports emulator code): step 3 shows `sandbox serve` running it.
    assert report["registered"] == ["carrier:acmepost"]
    assert {"mfn_register_carriers", "mfn_register_sandbox_emulators"} <= set(report["hooks"])

    # 2. Its own contract tests pass against the installed distribution.
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                           cwd=installed_example, env=dict(os.environ), capture_output=True, text=True,
                           timeout=120)
    assert tests.returncode == 0, tests.stdout[-4000:]
    assert " passed" in tests.stdout and "skipped" not in tests.stdout.splitlines()[-1], tests.stdout[-600:]

    # 3. US orders go to ACME Post and end VERIFIED, with one ACME Post label each.
    config = write_config(ACMEPOST_CONFIG)
    urls = sandbox_process(config)
    assert {"MFN_SANDBOX_SPAPI", "MFN_SANDBOX_ACMEPOST"} <= set(urls), urls
    cli.env.update(urls)
    orders = cli.run_until_quiet(config)
    acme = [o for o in orders if o["carrier"] == "acmepost"]
    verified = [o for o in acme if o["state"] == "VERIFIED"]
    assert verified, f"no order shipped with ACME Post: {orders}"
    assert verified == acme and {o["site"] for o in acme} == {"US"}, acme
    for order in orders:  # every other US order is one the seed makes unshippable on purpose
        if order["site"] == "US" and order not in verified:
            assert order["state"] == "CANCELLED" or order["hold_reason"] in SEEDED_HOLDS, order
    assert all(re.fullmatch(r"9400\d{18}", o["tracking_number"]) for o in verified), verified
    state = requests.get(urls["MFN_SANDBOX_ACMEPOST"] + "/_sandbox/state", timeout=10).json()
    labels = {label["tracking_number"]: label for label in state["labels"].values()}
    for order in verified:
        assert labels[order["tracking_number"]]["created"] == 1, order
    assert len(state["labels"]) == len(verified), "a label was bought for an order that did not ship"
    spapi = requests.get(urls["MFN_SANDBOX_SPAPI"] + "/_sandbox/state", timeout=10).json()
    first = verified[0]
    confirmation = next(iter(spapi["confirmations"][first["order_id"]].values()))
    assert (confirmation["accepted"], confirmation["carrierCode"], confirmation["trackingNumber"]) == \
        (1, "USPS", first["tracking_number"])
    assert spapi.get("schema_violations", []) == []
    shown = json.loads(cli(config, "orders", "show", "--json", first["order_id"]).stdout)
    (package,) = [p for p in shown["packages"] if p["state"] == "VERIFIED"]
    assert len(PdfReader(package["label_path"]).pages) == 1

    # 4. Uninstalled: the CLI and the daemon still work, and what it shipped stays shipped.
    result = pip("uninstall", "-y", DISTRIBUTION)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ENTRY_POINT not in cli.plugins()
    without = write_config(WITHOUT_ACMEPOST, name="config-without-acmepost.yaml")
    cli(without, "run", "--once")
    after = {o["order_id"]: o for o in cli.orders(without)}
    assert all(after[o["order_id"]]["state"] == "VERIFIED" for o in verified)
    assert not pip_has(DISTRIBUTION)
