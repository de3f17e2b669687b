"""20% injected faults on every emulator (5xx, timeouts, resets, malformed bodies): repeated
`run --once` still ends exactly-once."""
from __future__ import annotations

import pytest

from .helpers import assert_exactly_once, run_once_until_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_twenty_percent_faults_everywhere(world):
    w = world({"sandbox": {"orders": 10, "timeout_seconds": 2.5}, "engine": {"workers": 6}},
              faults=0.2)
    runs = run_once_until_quiet(w, max_runs=25)
    result = assert_exactly_once(w)
    assert result["orders"] == result["expected"] and result["verified"] >= 10
    injected = sum(w.state("yunexpress")["faults_injected"].values()) + \
        sum(w.state("spapi")["faults_injected"].values())
    assert injected >= 10, "the faults were not actually injected"
    assert runs >= 1
