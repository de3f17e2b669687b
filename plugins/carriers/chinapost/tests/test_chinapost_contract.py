"""The carrier contract (``connector.kit.testing``) run against China Post and its emulator."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from mfn_carrier_chinapost.client import ChinaPostCarrier

from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import CarrierContract


@pytest.fixture
def emulator(sandbox: Callable[..., EmulatorServer]) -> EmulatorServer:
    return sandbox(customs_rate=0.5)


@pytest.fixture
def carrier(emulator: EmulatorServer, connect: Callable[..., ChinaPostCarrier]) -> ChinaPostCarrier:
    return connect(emulator, timeout_seconds=1.0, connect_timeout_seconds=1)


class TestChinaPostContract(CarrierContract):
    carrier_code = "chinapost"
    service = "EUB"


class TestChinaPostContractDuplicatesRefused(CarrierContract):
    """The same contract when China Post refuses a repeated logistics_order_no (UNVERIFIED which
    behaviour the real API has: both must keep one label per package)."""

    carrier_code = "chinapost"
    service = "REGISTERED"

    @pytest.fixture
    def emulator(self, sandbox: Callable[..., EmulatorServer]) -> EmulatorServer:
        return sandbox(duplicate_mode="error")
