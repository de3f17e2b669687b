"""The product limits and pickup coverage the plugin declares, and the emulator enforcing the same
coverage it declares (the emulator enforcing the limits is a contract test: connector.kit.testing)."""
from __future__ import annotations

from mfn_carrier_dhl_ecommerce.settings import EXAMPLE_RATE_CARD, PICKUP, SERVICE_SPECS

from connector.kit import packaged_rows


def test_the_example_rate_card_stays_within_the_limits():
    for row in packaged_rows("mfn_carrier_dhl_ecommerce", EXAMPLE_RATE_CARD):
        assert int(row["max_weight_g"]) <= SERVICE_SPECS[row["service"]].max_weight_g, row


def test_pickup_is_listed_by_city_and_province():
    assert PICKUP.kind == "listed" and "UNVERIFIED" in PICKUP.source
    assert PICKUP.covers("Shanghai") and PICKUP.covers("Foshan", "Guangdong")  # anywhere in Guangdong
    assert PICKUP.covers("Chengdu", "Sichuan") is False
