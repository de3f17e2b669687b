"""Fixtures for the Amazon Buy Shipping plugin tests: a fresh SP-API emulator with Buy Shipping
mounted, a raw HTTP driver for it, and carriers for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from amazon_shipping_testkit import SpApiDriver, carrier_for, emulator_client
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier
from mfn_carrier_amazon_shipping.sandbox import spapi_emulator

from connector.kit.sandbox import EmulatorServer


@pytest.fixture
def spapi_server(mfn_emulator: Callable[[Any], Any]) -> Callable[..., EmulatorServer]:
    """``spapi_server(**options)`` serves a fresh SP-API emulator, Buy Shipping mounted, on a free
    loopback port (120 seed orders per seller)."""
    return lambda **options: mfn_emulator(spapi_emulator({"orders_per_seller": 120, **options}))


@pytest.fixture
def start_spapi(mfn_emulator: Callable[[Any], Any]) -> Callable[..., SpApiDriver]:
    """``start_spapi(seller=None, **options)``: a fresh emulator (the SP-API's own defaults,
    Buy Shipping mounted) and a raw HTTP driver for one of its sellers."""

    def start(seller: dict[str, Any] | None = None, **options: Any) -> SpApiDriver:
        return SpApiDriver(mfn_emulator(spapi_emulator(options)), seller)

    return start


@pytest.fixture
def spapi(start_spapi: Callable[..., SpApiDriver]) -> SpApiDriver:
    return start_spapi()


@pytest.fixture
def connect() -> Callable[..., AmazonShippingCarrier]:
    """``connect(server, sellers=None, **settings)``: the carrier with one SP-API client per seller."""

    def make(
        server: EmulatorServer,
        sellers: list[dict[str, Any]] | None = None,
        read_timeout: float = 5,
        **settings: Any,
    ) -> AmazonShippingCarrier:
        clients = {}
        for seller in sellers or [None]:
            client = emulator_client(server, seller, read_timeout=read_timeout)
            clients[client.account] = client
        return carrier_for(clients, **settings)

    return make
