"""A retention longer than Amazon's Data Protection Policy allows (30 days after delivery) is the
seller's to answer for, not refused; the daemon says so when it starts."""
from __future__ import annotations

import logging

import pytest

from connector.engine.loop import Engine

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("days, warned", [(30, False), (45, True)])
def test_a_retention_beyond_amazon_s_30_days_is_warned_at_start(world, caplog, days, warned):
    w = world({"sandbox": {"orders": 1}, "ledger": {"pii_retention_days": days}})
    rt = w.runtime()
    try:
        with caplog.at_level(logging.WARNING, logger="connector.engine"):
            Engine(rt)
    finally:
        rt.close()
    said = [r.getMessage() for r in caplog.records if "pii_retention_days" in r.getMessage()]
    assert bool(said) is warned, said
    if warned:
        assert "45" in said[0] and "at most 30 days after delivery" in said[0]
