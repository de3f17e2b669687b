"""Fixtures for the DHL eCommerce plugin tests: a fresh emulator on a free port and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from mfn_carrier_dhl_ecommerce.sandbox import DhlEcommerceEmulator

from connector.sandbox.framework import EmulatorServer


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], EmulatorServer]) -> Callable[..., EmulatorServer]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""
    return lambda **options: mfn_emulator(DhlEcommerceEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Iterator[Callable[..., DhlEcommerceCarrier]]:
    """``connect(server, **settings)``: a client for the emulator with the sandbox credentials."""
    sessions: list[requests.Session] = []

    def make(server: EmulatorServer, **overrides: Any) -> DhlEcommerceCarrier:
        session = requests.Session()
        sessions.append(session)
        return DhlEcommerceCarrier({"base_url": server.url, "timeout_seconds": 5, **overrides}, session)

    yield make
    for session in sessions:
        session.close()
