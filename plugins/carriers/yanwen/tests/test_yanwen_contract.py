"""The carrier contract (``connector.kit.testing``) run against Yanwen and its emulator."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from mfn_carrier_yanwen.client import YanwenCarrier

from connector.kit import Address
from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import CarrierContract


@pytest.fixture
def emulator(sandbox: Callable[..., EmulatorServer]) -> EmulatorServer:
    return sandbox()


@pytest.fixture
def carrier(emulator: EmulatorServer, connect: Callable[..., YanwenCarrier]) -> YanwenCarrier:
    # quote_source "api": quotes go to the emulator's calc.list, so the contract's malformed-answer
    # check covers quote too (the rate-card path sends no request).
    return connect(emulator, timeout_seconds=1.0, connect_timeout_seconds=1, quote_source="api")


class TestYanwenContract(CarrierContract):
    carrier_code = "yanwen"
    service = "481"


class TestYanwenContractOnAnEuSite(CarrierContract):
    """The same contract for a UK order: Amazon's code there is ``YANWEN``."""

    carrier_code = "yanwen"
    site = "UK"
    service = "481"
    destination = Address(
        name="Sam Sample", line1="10 Example Street", city="London", postal_code="SW1A 1AA",
        country_code="GB", phone="+44 20 7946 0000")
