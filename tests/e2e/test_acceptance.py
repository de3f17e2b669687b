"""Issue-level acceptance: the demo command, and a broken plugin next to the good ones."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_plugins import install_fake

from .helpers import run_cli

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def sandbox_cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MFN_STATE_DIR=str(state_dir))
    return subprocess.run([sys.executable, "-m", "connector.cli", "--config",
                           str(ROOT / "config" / "sandbox.yaml"), *args],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def demo(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return sandbox_cli(state_dir, "demo", *args)


def test_demo_runs_the_main_job_and_a_second_run_buys_nothing(tmp_path):
    first = demo(tmp_path / "state")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "each exactly once" in first.stdout
    # the ledger as it names itself (a PostgreSQL URL's password left out), not the configured URL
    assert f"; ledger: {tmp_path / 'state' / 'ledger.db'}\n" in first.stdout
    bought = next(line for line in first.stdout.splitlines() if line.startswith("This run:"))
    assert " 0 label(s) bought" not in bought
    labels = list((tmp_path / "state" / "labels").glob("*.pdf"))
    assert len(labels) >= 50 and all(p.read_bytes().startswith(b"%PDF-") for p in labels)
    sites = next(line for line in first.stdout.splitlines() if line.startswith("Orders by site:"))
    assert sites.count(",") >= 2  # at least three sites
    assert "It answers (sent just now): HTTP 200" in first.stdout  # the printed token worked meanwhile
    listed = sandbox_cli(tmp_path / "state", "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    demo_tokens = [t for t in json.loads(listed.stdout) if t["name"] == "demo"]
    assert demo_tokens and all(t["revoked_at"] for t in demo_tokens)  # and is dead once the demo ended
    second = demo(tmp_path / "state")
    assert second.returncode == 0, second.stdout[-3000:]
    assert "This run: 0 new order(s), 0 label(s) bought, 0 recovered by reference, " \
           "0 confirmation(s) sent" in second.stdout


# The command line as a terminal's foreground job gets it: Ctrl-C heard. A process started from a
# background job of a non-interactive shell (CI running `make test &`) inherits SIGINT ignored,
# and Python then leaves it ignored: the demo rightly went on serving, and this test hung.
AS_AT_A_TERMINAL = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                    "runpy.run_module('connector.cli', run_name='__main__', alter_sys=True)")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_serving_demo_stopped_revokes_its_token(tmp_path, stop):
    """`demo --serve` stopped as a CI job or a terminal stops it (SIGTERM) or by Ctrl-C (SIGINT):
    the token it printed is revoked, and the API stops without a traceback."""
    env = dict(os.environ, MFN_STATE_DIR=str(tmp_path / "state"), PYTHONFAULTHANDLER="1")
    errors = tmp_path / "stderr.txt"
    command = [sys.executable, "-c", AS_AT_A_TERMINAL, "--config", str(ROOT / "config" / "sandbox.yaml"),
               "demo", "--serve"]
    with errors.open("w") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)
        try:
            for line in proc.stdout:
                if "stay up until Ctrl-C" in line:
                    break
            else:
                raise AssertionError(f"the demo ended before serving: {errors.read_text()[-3000:]}")
            proc.send_signal(stop)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # where it hangs: every thread's stack (faulthandler)
                proc.send_signal(signal.SIGABRT)
                proc.wait(timeout=10)
                raise AssertionError(f"the demo did not stop:\n{errors.read_text()[-6000:]}") from None
        finally:
            proc.kill()
            proc.wait()
    assert "Traceback" not in errors.read_text(), errors.read_text()[-3000:]
    listed = sandbox_cli(tmp_path / "state", "tokens", "list", "--json")
    demo_tokens = [t for t in json.loads(listed.stdout) if t["name"] == "demo"]
    assert demo_tokens and all(t["revoked_at"] for t in demo_tokens), demo_tokens


def test_broken_plugin_beside_the_good_ones(world, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_fake(site, "broken-carrier", "carrier_broken", "broken_carrier_mod",
                 "raise RuntimeError('this plugin is broken')\n")
    w = world({"sandbox": {"orders": 4}})
    env = {"PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    listed = run_cli(w, "plugins", "--json", extra_env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["carrier_broken"]["status"] == "failed"
    assert "this plugin is broken" in rows["carrier_broken"]["error"]
    assert rows["carrier_yunexpress"]["status"] == "loaded"
    ran = run_cli(w, "run", "--once", extra_env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "VERIFIED" in ran.stdout


def test_the_demo_refuses_a_configuration_that_names_real_endpoints(tmp_path):
    """`demo` on a production file passed by mistake would run the real daemon against Amazon and
    the carriers: it is refused before the daemon starts, naming each setting."""
    data = yaml.safe_load((ROOT / "config" / "sandbox.yaml").read_text(encoding="utf-8"))
    data["state_dir"] = str(tmp_path / "state")
    data["catalog"] = str(ROOT / "config" / "catalog.sandbox.csv")
    for account in data["accounts"][1:]:
        account.pop("endpoint")  # Amazon's own
    config = tmp_path / "production-by-mistake.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "connector.cli", "--config", str(config), "demo"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Error: the demo runs against the loopback emulators only" in result.stderr
    assert "accounts[1].endpoint = (Amazon's own)" in result.stderr
    assert "sandbox:" not in result.stdout  # refused before any emulator started
    assert not (tmp_path / "state").exists()  # nothing ran, nothing was written: not even emulator state
