"""The carrier contract (``connector.kit.testing``) run against YunExpress and its emulator."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from mfn_carrier_yunexpress.client import YunExpressCarrier

from connector.kit.sandbox import EmulatorServer
from connector.kit.testing import CarrierContract


@pytest.fixture
def emulator(sandbox: Callable[..., EmulatorServer]) -> EmulatorServer:
    # Half the orders get their tracking number late (TrackType 2), so the contract's
    # find_by_reference path is exercised too.
    return sandbox(track_type2_rate=0.5)


@pytest.fixture
def carrier(emulator: EmulatorServer, connect: Callable[..., YunExpressCarrier]) -> YunExpressCarrier:
    return connect(emulator, timeout_seconds=1.0, connect_timeout_seconds=1)


class TestYunExpressContract(CarrierContract):
    carrier_code = "yunexpress"
    service = "AYPZXR"
