"""The plugin's own data against its limits: the rate card within the service limits, the pickup
coverage it declares (the emulator enforcing the limits is a contract test: connector.kit.testing)."""
from __future__ import annotations

from mfn_carrier_chinapost.settings import PICKUP, SERVICE_SPECS

from connector.kit import packaged_rows


def test_the_example_rate_card_stays_within_the_limits():
    for row in packaged_rows("mfn_carrier_chinapost", "data/example_rate_card.csv"):
        assert int(row["max_weight_g"]) <= SERVICE_SPECS[row["service"]].max_weight_g, row


def test_pickup_coverage_is_declared_unknown():
    assert PICKUP.kind == "unknown" and PICKUP.covers("Shenzhen", "Guangdong") is None
