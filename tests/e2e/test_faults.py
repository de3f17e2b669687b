"""20% injected faults on every emulator (5xx, timeouts, resets, malformed bodies): repeated
`run --once` ends with the same result as a run without faults -- the same orders shipped, each
with one label and one confirmation -- for each carrier and for the rate-shopped mix."""
from __future__ import annotations

import pytest

from connector.engine.loop import Engine
from connector.ledger import OrderState

from .helpers import (
    CARRIERS,
    SEEDED_HOLDS,
    assert_every_confirmation_told,
    assert_exactly_once,
    ledger_of,
    run_once_until_quiet,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def verified_orders(w) -> set[str]:
    ledger = ledger_of(w)
    try:
        return {r.order_id for r in ledger.orders([OrderState.VERIFIED])}
    finally:
        ledger.close()


@pytest.mark.parametrize("carrier", [*CARRIERS, "rate-shopped"])
def test_twenty_percent_faults_everywhere(world, carrier):
    overrides = {"sandbox": {"orders": 6, "timeout_seconds": 2.5}, "engine": {"workers": 6}}
    if carrier != "rate-shopped":
        overrides["routing"] = {"default": [f"{carrier}:*"]}
    baseline = world(overrides)
    rt = baseline.runtime()
    try:
        Engine(rt).run_until_quiet()
    finally:
        rt.close()
    shipped_without_faults = verified_orders(baseline)
    assert shipped_without_faults, "nothing ships even without faults: the test would prove nothing"

    w = world(overrides, faults=0.2)
    run_once_until_quiet(w, max_runs=25)
    result = assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})
    assert result["orders"] == result["expected"]
    assert verified_orders(w) == shipped_without_faults
    injected = sum(sum(w.state(name)["faults_injected"].values()) for name in w.sandbox.servers)
    assert injected >= 5, "the faults were not actually injected"
    assert_every_confirmation_told(w)

