"""The plugin's own data against its limits: the rate card within the service limits, the pickup
coverage it declares (the emulator enforcing the limits is a contract test: connector.kit.testing)."""
from __future__ import annotations

from mfn_carrier_yunexpress.settings import PICKUP


def test_pickup_is_listed_by_city_and_province():
    assert PICKUP.kind == "listed" and "UNVERIFIED" in PICKUP.source
    assert PICKUP.covers("Shenzhen") and PICKUP.covers("Zhuhai", "Guangdong")  # anywhere in Guangdong
    assert PICKUP.covers("Chengdu", "Sichuan") is False
