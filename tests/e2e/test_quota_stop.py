"""SIGTERM while the daemon waits for Amazon quota: it exits 0 within seconds, with every step in
flight committed, and the drained buckets are still drained at the next start."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from connector.ledger import OrderState, PackageState

from .helpers import SEEDED_HOLDS, ledger_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Quotas so small that a second call waits minutes (the emulator enforces the same numbers).
SLOW_QUOTAS = {"searchOrders": {"rate": 0.005, "burst": 1}, "confirmShipment": {"rate": 0.005, "burst": 2}}


class Daemon:
    """``mfn-connector run`` in a child process, its log lines read as they come."""

    def __init__(self, world) -> None:
        env = dict(os.environ)
        env.update(world.sandbox.env)
        command = [sys.executable, "-m", "connector.cli", "--config", str(world.config_path), "run"]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "the daemon exited:\n" + "".join(self.log[-40:])
                continue
            self.log.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r} in {timeout} s:\n" + "".join(self.log[-40:]))

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return code, time.monotonic() - started


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])  # (HUP: a terminal closed, a reload)
def test_sigterm_during_quota_waits_exits_at_once_with_every_step_committed(world, stop):
    w = world({"sandbox": {"orders": 20}, "amazon": {"quotas": SLOW_QUOTAS},
               "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []},
               "engine": {"workers": 6, "poll_interval_seconds": 1}})

    # 1. Workers wait minutes for confirmShipment tokens (two per account, then one per 200 s).
    daemon = Daemon(w)
    waiting: set[str] = set()
    while len(waiting) < len(w.config().accounts):  # each account's third confirmation waits
        line = daemon.wait_for("for a quota token of confirmShipment")
        waiting.add(line.rsplit("account", 1)[-1].strip())
    time.sleep(0.5)
    code, took = daemon.stop(stop)
    assert code == 0, "".join(daemon.log[-40:])
    assert took < 5, f"the daemon took {took:.1f} s to stop"

    spapi = w.state("spapi")
    ledger = ledger_of(w)
    try:
        packages = [p for r in ledger.orders() for p in ledger.packages(r.order_id)]
        by_state = {s: [p for p in packages if p.state == s] for s in PackageState}
        # a confirmation that waited for quota handed its claim back: nothing is left CONFIRMING
        assert by_state[PackageState.CONFIRMING] == [] and by_state[PackageState.LABEL_CLAIMED] == []
        assert by_state[PackageState.LABELED], "no confirmation was waiting for quota"
        # exactly the confirmations Amazon accepted are recorded as sent, and no more
        sent = {(p.order_id, p.package_ref) for p in packages
                if p.state in (PackageState.CONFIRMED, PackageState.VERIFIED)}
        accepted = {(oid, ref) for oid, pkgs in spapi["confirmations"].items() for ref in pkgs}
        assert sent == accepted and len(accepted) == 2 * len(w.config().accounts)
        for p in by_state[PackageState.LABELED]:  # the stop was no failure: nothing counted, deferred
            record = ledger.get_order(p.order_id)
            assert p.confirm_attempts == 0 and record.attempts == 0, p.order_id
            assert record.next_attempt_at is None, p.order_id
        for record in ledger.orders():
            error = ledger.last_error(record.order_id)
            assert "internal error" not in error and "stop" not in error, (record.order_id, error)
            if record.state == OrderState.HELD:
                assert record.hold_reason in SEEDED_HOLDS | {"no_eligible_service"}, record.hold_message
        saved = ledger.load_quota_state("demo-na")  # the shutdown saved the drained buckets
        assert saved["confirmShipment"]["tokens"] < 1 and saved["searchOrders"]["tokens"] < 1
    finally:
        ledger.close()
    assert spapi["operation_calls"]["confirmShipment"]["throttled"] == 0

    # 2. A restart finds the searchOrders bucket still drained: its first poll waits, and stops.
    daemon = Daemon(w)
    line = daemon.wait_for("for a quota token of searchOrders")
    waited = re.search(r"waiting (\d+) s", line)
    assert waited and int(waited.group(1)) > 100, line  # the bucket is still drained: no fresh burst
    code, took = daemon.stop(stop)
    assert code == 0, "".join(daemon.log[-40:])
    assert took < 5, f"the daemon took {took:.1f} s to stop"
    assert w.state("spapi")["operation_calls"]["searchOrders"]["throttled"] == 0  # no storm
