"""The limits the Buy Shipping services declare (the same as the carriers' own plugins give the
same lines), pickup decided by Amazon's quote, and the emulator enforcing the declared limits (it
reads them from the plugin's ServiceSpecs, not a copy)."""
from __future__ import annotations

from mfn_carrier_amazon_shipping import sandbox_data as bs
from mfn_carrier_amazon_shipping.settings import CHEAPEST, PICKUP, SERVICE_SPECS, SERVICES


def test_cheapest_takes_what_the_loosest_service_takes():
    sold = [s for s in SERVICES if s.code != CHEAPEST]
    cheapest = SERVICE_SPECS[CHEAPEST]
    assert cheapest.max_weight_g == max(s.max_weight_g for s in sold)
    assert cheapest.max_dimensions_sum_cm == max(s.max_dimensions_sum_cm for s in sold)
    assert set(cheapest.destinations) == {c for s in sold for c in s.destinations}


def test_the_emulator_reads_the_declared_limits():
    for service in bs.SERVICES.values():
        spec = SERVICE_SPECS[service.service_id]
        assert (service.max_weight_g, service.destinations) == (spec.max_weight_g, spec.destinations)


def test_pickup_is_decided_by_the_quote():
    assert PICKUP.kind == "by_quote" and PICKUP.source.startswith("https://")
    assert PICKUP.covers("Chengdu", "Sichuan") is None
