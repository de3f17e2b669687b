"""Fixtures for the Amazon Buy Shipping plugin tests: a fresh SP-API emulator and carriers for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from amazon_shipping_testkit import emulator_client
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier

from connector.sandbox.framework import EmulatorServer
from connector.sandbox.spapi import SpApiEmulator


@pytest.fixture
def spapi_server() -> Iterator[Callable[..., EmulatorServer]]:
    """``spapi_server(**options)`` serves a fresh SP-API emulator on a free loopback port."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> EmulatorServer:
        server = EmulatorServer(SpApiEmulator({"orders_per_seller": 120, **options}), port=0).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


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
        return AmazonShippingCarrier(settings, None, amazon=clients)

    return make
