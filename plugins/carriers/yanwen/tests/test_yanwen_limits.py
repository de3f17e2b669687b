"""The plugin's own data against its limits: the rate card within the service limits, the pickup
coverage it declares (the emulator enforcing the limits is a contract test: connector.kit.testing)."""
from __future__ import annotations

from mfn_carrier_yanwen.settings import EXAMPLE_RATE_CARD, PICKUP, SERVICE_SPECS


def test_the_example_rate_card_stays_within_the_limits():
    for row in EXAMPLE_RATE_CARD:
        assert row["max_weight_g"] <= SERVICE_SPECS[row["service"]].max_weight_g, row


def test_pickup_is_listed_by_city_and_province():
    assert PICKUP.kind == "listed" and "UNVERIFIED" in PICKUP.source
    assert PICKUP.covers("Yiwu") and PICKUP.covers("Shantou", "Guangdong")  # anywhere in Guangdong
    assert PICKUP.covers("Chengdu", "Sichuan") is False
