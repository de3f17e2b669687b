"""What ACME Post declares -- each service's limits and destinations, its pickup coverage -- and
its emulator refusing a parcel over the limit it reads from the same ServiceSpec."""
from __future__ import annotations

import pytest
from mfn_carrier_acmepost.client import AcmePostCarrier
from mfn_carrier_acmepost.sandbox import AcmePostEmulator
from mfn_carrier_acmepost.settings import PICKUP, SERVICE_SPECS, SERVICES, AcmePostSettings

from connector.kit import PermanentCarrierError
from connector.kit.testing import connect, sample_request, sandbox_state


def test_every_service_declares_its_limits_and_destinations() -> None:
    for service in SERVICES:
        assert service.max_weight_g and service.max_length_cm and service.max_dimensions_sum_cm
        assert service.destinations == ("US",)


def test_pickup_coverage_is_data() -> None:
    assert PICKUP.kind == "listed" and PICKUP.source
    assert PICKUP.covers("Shenzhen") and PICKUP.covers("Foshan", "Guangdong")
    assert PICKUP.covers("Chengdu", "Sichuan") is False


def test_the_emulator_refuses_an_overweight_parcel(mfn_emulator) -> None:
    server = mfn_emulator(AcmePostEmulator())
    carrier = connect(AcmePostCarrier, AcmePostSettings, {"base_url": server.url, "api_key": "sandbox-key"})
    limit = SERVICE_SPECS["STD"].max_weight_g
    with pytest.raises(PermanentCarrierError, match=f"over the {limit} g limit of STD"):
        carrier.create_shipment(sample_request(service="STD", weight_g=limit + 1))
    assert sandbox_state(server)["labels"] == {}
    assert carrier.create_shipment(sample_request(service="STD", weight_g=limit)).tracking_number
