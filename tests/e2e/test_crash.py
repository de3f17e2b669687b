"""SIGKILL the daemon at its most dangerous lines, restart it, and audit the emulators.

``MFN_CONNECTOR_CRASH_AT=<point>:<n>`` kills the process with SIGKILL the n-th time it reaches
the point, so every order in flight at that moment is caught between two commits. Each carrier
gets its own world, forced onto it by routing, and is killed at every point in flow order.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from connector.engine.crashpoints import POINTS

from .helpers import CARRIERS, SEEDED_HOLDS, assert_exactly_once, run_cli, run_once_until_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A carrier forced on every order cannot take some of them (weight, battery, tracking level):
# those are held with their reasons, which is correct, not a crash artefact.
FORCED_HOLDS = SEEDED_HOLDS | {"no_eligible_service"}


@pytest.mark.parametrize("carrier", CARRIERS)
def test_sigkill_at_every_point_then_restart(world, carrier):
    w = world({"sandbox": {"orders": 8}, "engine": {"workers": 3},
               "routing": {"default": [f"{carrier}:*"]}})
    kills = 0
    for point in POINTS:
        result = run_cli(w, "run", "--once", extra_env={"MFN_CONNECTOR_CRASH_AT": f"{point}:1"})
        assert result.returncode in (0, -signal.SIGKILL), result.stderr[-2000:]
        kills += result.returncode == -signal.SIGKILL
    assert kills >= 4, f"only {kills} of the kill points were reached"
    run_once_until_quiet(w)
    result = assert_exactly_once(w, allowed_holds=FORCED_HOLDS)
    assert result["orders"] == result["expected"] and result["verified"] >= 3
    assert result["carriers"] == 1


def test_sigkill_at_random_moments(world):
    w = world({"sandbox": {"orders": 8}, "engine": {"workers": 4}})
    rng = random.Random(1234)
    env = dict(os.environ)
    env.update(w.sandbox.env)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "--config", str(w.config_path),
                                 "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    run_once_until_quiet(w)
    assert_exactly_once(w)


def test_sigterm_finishes_the_step_in_flight_and_exits_zero(world):
    w = world({"sandbox": {"orders": 8}})
    env = dict(os.environ)
    env.update(w.sandbox.env)
    proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "--config", str(w.config_path), "run"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "finishing the steps in flight" in err
    run_once_until_quiet(w)
    assert_exactly_once(w)
