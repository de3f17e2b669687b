"""Fixtures for the YunExpress plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from mfn_carrier_yunexpress.client import YunExpressCarrier
from mfn_carrier_yunexpress.sandbox import YunExpressEmulator

from connector.sandbox.framework import EmulatorServer


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], EmulatorServer]) -> Callable[..., EmulatorServer]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""
    return lambda **options: mfn_emulator(YunExpressEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Iterator[Callable[..., YunExpressCarrier]]:
    """``connect(server, **settings)``: a client for the emulator, with the emulator's credentials."""
    sessions: list[requests.Session] = []

    def make(server: EmulatorServer, **overrides: Any) -> YunExpressCarrier:
        session = requests.Session()
        sessions.append(session)
        settings = {"base_url": server.url, "customer_code": "C88888", "api_secret": "sandbox-secret",
                    "timeout_seconds": 5, **overrides}
        return YunExpressCarrier(settings, session)

    yield make
    for session in sessions:
        session.close()
