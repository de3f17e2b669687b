"""Fixtures for the Yanwen plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from mfn_carrier_yanwen.client import YanwenCarrier
from mfn_carrier_yanwen.sandbox import YanwenEmulator

from connector.sandbox.framework import EmulatorServer


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], EmulatorServer]) -> Callable[..., EmulatorServer]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""
    return lambda **options: mfn_emulator(YanwenEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Iterator[Callable[..., YanwenCarrier]]:
    """``connect(server, **settings)``: a client for the emulator, with the emulator's credentials."""
    sessions: list[requests.Session] = []

    def make(server: EmulatorServer, **overrides: Any) -> YanwenCarrier:
        session = requests.Session()
        sessions.append(session)
        settings = {"base_url": server.url, "user_id": "100000", "api_token": "sandbox-token",
                    "timeout_seconds": 5, **overrides}
        return YanwenCarrier(settings, session)

    yield make
    for session in sessions:
        session.close()
