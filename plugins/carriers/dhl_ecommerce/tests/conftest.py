"""Fixtures for the DHL eCommerce plugin tests: a fresh emulator on a free port and clients for it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from mfn_carrier_dhl_ecommerce.sandbox import DhlEcommerceEmulator

from connector.sandbox.framework import EmulatorServer

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def _emulator_servers() -> Iterator[list[EmulatorServer]]:
    servers: list[EmulatorServer] = []
    yield servers
    stoppers = [threading.Thread(target=server.stop) for server in servers]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()


@pytest.fixture
def sandbox(_emulator_servers: list[EmulatorServer]) -> Callable[..., EmulatorServer]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""

    def start(**options: Any) -> EmulatorServer:
        server = EmulatorServer(DhlEcommerceEmulator({"seed": 7, **options}), port=0).start()
        _emulator_servers.append(server)
        return server

    return start


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
