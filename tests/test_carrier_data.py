"""The carrier data every built-in plugin declares (issue 9): each service's weight limit, size
limits and destinations, each carrier's pickup coverage, and the same line carrying the same limits
whether it is bought directly or through Amazon Buy Shipping."""
from __future__ import annotations

import functools
import re

import pytest

from connector.kit import CarrierSpec
from connector.plugins import load_plugins

BUILTIN = ("yunexpress", "chinapost", "yanwen", "dhl_ecommerce", "amazon_shipping")
PICKUP_KINDS = {"yunexpress": "listed", "yanwen": "listed", "dhl_ecommerce": "listed",
                "chinapost": "unknown", "amazon_shipping": "by_quote"}
# Buy Shipping serviceId -> the same line in its carrier's own plugin
SAME_LINE = {
    "YUNEXPRESS_AYPZXR": ("yunexpress", "AYPZXR"),
    "YUNEXPRESS_ZXR": ("yunexpress", "ZXR"),
    "CHINAPOST_EPACKET": ("chinapost", "EUB"),
    "CHINAPOST_REGISTERED": ("chinapost", "REGISTERED"),
    "YANWEN_SPECIAL_LINE": ("yanwen", "481"),
}
# Every Amazon site's country (ISO 3166: GB for the UK site): a service's list names them all.
AMAZON_COUNTRIES = {"US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR",
                    "AE", "SA", "EG", "IN", "ZA", "JP", "AU", "SG"}


@functools.cache
def specs() -> dict[str, CarrierSpec]:
    return load_plugins().carriers()


def services():
    return [(code, s.code) for code in BUILTIN for s in specs()[code].services]


@pytest.mark.parametrize("carrier, service", services())
def test_every_service_declares_its_limits_and_destinations(carrier, service):
    spec = specs()[carrier].service(service)
    assert isinstance(spec.max_weight_g, int) and spec.max_weight_g > 0
    assert spec.max_length_cm is not None and spec.max_length_cm > 0
    assert spec.max_dimensions_sum_cm is not None and spec.max_dimensions_sum_cm >= spec.max_length_cm
    assert spec.destinations, "an empty destinations tuple would mean 'anywhere'"
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in spec.destinations)
    assert len(set(spec.destinations)) == len(spec.destinations)
    assert "UK" not in spec.destinations  # ISO codes: GB
    assert AMAZON_COUNTRIES <= set(spec.destinations)


@pytest.mark.parametrize("carrier", BUILTIN)
def test_pickup_coverage_is_declared(carrier):
    pickup = specs()[carrier].pickup
    assert pickup.kind == PICKUP_KINDS[carrier]
    if pickup.kind == "listed":
        assert pickup.cities and pickup.provinces and pickup.source
    if pickup.kind == "by_quote":
        assert pickup.source


@pytest.mark.parametrize("buy_shipping, line", SAME_LINE.items())
def test_a_line_carries_the_same_limits_through_buy_shipping(buy_shipping, line):
    def limits(carrier, code):
        s = specs()[carrier].service(code)
        return s.max_weight_g, s.max_length_cm, s.max_dimensions_sum_cm, s.destinations

    assert limits("amazon_shipping", buy_shipping) == limits(*line)
