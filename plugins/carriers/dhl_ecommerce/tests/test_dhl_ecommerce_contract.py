"""The carrier contract (``connector.kit.testing``) run against DHL eCommerce and its emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier

from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import CarrierContract


@pytest.fixture
def emulator(sandbox: Callable[..., EmulatorServer]) -> EmulatorServer:
    return sandbox()


@pytest.fixture
def carrier(emulator: EmulatorServer, connect: Callable[..., DhlEcommerceCarrier]) -> DhlEcommerceCarrier:
    carrier = connect(emulator, timeout_seconds=1.0, connect_timeout_seconds=1)
    # The token is fetched before the contract turns faults on, so the fault lands on the business
    # call under test (a faulted token request would fail before anything is bought).
    carrier.access_token()
    return carrier


class TestDhlEcommerceContract(CarrierContract):
    carrier_code = "dhl_ecommerce"
    service = "PPM"
