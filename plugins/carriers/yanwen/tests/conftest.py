"""Fixtures for the Yanwen plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from mfn_carrier_yanwen.client import YanwenCarrier
from mfn_carrier_yanwen.sandbox import YanwenEmulator

from connector.sandbox.framework import EmulatorServer


@pytest.fixture(scope="session")
def _emulator_servers() -> Iterator[list[EmulatorServer]]:
    """Every server the session started; stopped together at the end (each stop waits for the
    server loop's poll, so stopping them in parallel keeps the suite fast)."""
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
        server = EmulatorServer(YanwenEmulator({"seed": 7, **options}), port=0).start()
        _emulator_servers.append(server)
        return server

    return start


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
