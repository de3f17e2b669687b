"""Fixtures for the DHL eCommerce plugin tests: a fresh emulator on a free port and clients for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dhl_ecommerce_testkit import carrier_for
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from mfn_carrier_dhl_ecommerce.sandbox import DhlEcommerceEmulator


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], Any]) -> Callable[..., Any]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""
    return lambda **options: mfn_emulator(DhlEcommerceEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Callable[..., DhlEcommerceCarrier]:
    """``connect(server, context=None, **settings)``: a client for the emulator with the sandbox
    credentials (the settings' defaults)."""

    def make(server: Any, context: Any = None, **overrides: Any) -> DhlEcommerceCarrier:
        return carrier_for({"base_url": server.url, "timeout_seconds": 5, **overrides}, context)

    return make
